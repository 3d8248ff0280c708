/**
 * Starts the services the master runs on demand (the service table's
 * `onDemand: "connection"`: showq, local) when a connection waits on their
 * socket. The master holds each service's listening socket (it made it,
 * src/master/main.ts); while the service is down, a client's connection
 * waits in the socket's backlog, and a timer here asks the kernel every
 * POLL_INTERVAL_MS, with poll(2) and no waiting, whether any of the down
 * services' sockets has one. The master never accepts: the service it
 * starts gets the same socket as descriptor 3 and accepts the connection
 * itself. A running service (or one in its crash backoff) is not polled.
 *
 * Bun has no readable event for a descriptor it does not own, hence the
 * timer: a poll of two descriptors costs a few microseconds, and the first
 * request after idle waits at most POLL_INTERVAL_MS plus the service's
 * start-up.
 *
 * Runs in the master (root); reads nothing but the kernel's answer.
 */
import { log } from "../util/log.ts";
import { pendingConnections } from "../util/unix-socket.ts";
import type { Child } from "./children.ts";

/** How often the sockets of the down services are polled. */
export const POLL_INTERVAL_MS = 50;

export class OnDemandStarter {
  #timer: ReturnType<typeof setInterval> | undefined;
  #failing = false;

  constructor(private readonly children: readonly Child[]) {
    for (const c of children) if (!c.onDemand || c.listenFd === undefined) throw new Error(`postern/${c.role} is not a service started on demand by its socket`);
  }

  /** Polls from now on, until stop(). */
  start(): void {
    if (this.children.length === 0 || this.#timer) return;
    this.#timer = setInterval(() => this.poll(), POLL_INTERVAL_MS);
  }

  /** One look at the down services' sockets: starts each that has a connection waiting. */
  poll(): void {
    const down = this.children.filter((c) => c.startable);
    if (down.length === 0) return;
    let ready: number[];
    try {
      ready = pendingConnections(down.map((c) => c.listenFd!));
    } catch (err) {
      // once, not every tick
      if (!this.#failing) log.error(`cannot poll the services' sockets: ${(err as Error).message}`);
      this.#failing = true;
      return;
    }
    this.#failing = false;
    for (const c of down) if (ready.includes(c.listenFd!)) c.start();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
