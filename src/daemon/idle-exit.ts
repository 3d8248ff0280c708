/**
 * When a service the master starts on demand (the service table's
 * `onDemand`) has nothing to do: it counts what keeps the service busy
 * (open connections on its socket, requests still being handled, a pickup
 * pass) and calls `onIdle` once, when nothing has been busy and no work was
 * done for `max_idle` (read each time the countdown starts, so a reload's
 * value applies from the next idle spell). The service then stops and exits
 * with status 0; what arrives after that waits for the master to start the
 * service again (src/master/on-demand.ts): a connection in the master's
 * socket, a file in maildrop/, a queue file for the queue manager.
 *
 * A role may also say it cannot stop yet (`mayStop`: the queue manager
 * while any queue file waits for it): the countdown then starts over.
 *
 * Runs in showq, pickup and the queue manager (mail_owner) and local
 * (root); trusts its own counts only.
 */
import type { Activity } from "../global/ipc/json-lines.ts";

export class IdleExit implements Activity {
  #busy = 0;
  #lastWork = Date.now();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #fired = false;

  constructor(
    private readonly idleMs: () => number,
    private readonly onIdle: () => void,
    private readonly mayStop: () => boolean = () => true,
  ) {
    this.#arm();
  }

  begin(): void {
    this.#busy++;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The end of what begin() started; `worked`: it did work (a connection, a request), so the countdown starts over. */
  end(worked = true): void {
    if (this.#busy === 0) throw new Error("IdleExit.end() without begin()");
    this.#busy--;
    if (worked) this.#lastWork = Date.now();
    if (this.#busy === 0) this.#arm();
  }

  /** Work done outside begin()/end() (a message taken from the queue): the countdown starts over. */
  worked(): void {
    this.#lastWork = Date.now();
  }

  /** Stops the countdown for good (the service stops for another reason). */
  cancel(): void {
    this.#fired = true;
    clearTimeout(this.#timer);
  }

  #arm(): void {
    if (this.#fired) return;
    clearTimeout(this.#timer);
    const left = this.#lastWork + this.idleMs() - Date.now();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#busy !== 0 || this.#fired) return;
      if (Date.now() < this.#lastWork + this.idleMs()) return this.#arm();
      if (!this.mayStop()) {
        this.#lastWork = Date.now();
        return this.#arm();
      }
      this.#fired = true;
      this.onIdle();
    }, Math.max(0, left));
  }
}
