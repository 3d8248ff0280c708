/**
 * Starts the services the master runs on demand (the service table's
 * `onDemand`) when work waits for them:
 *
 * - "connection" (showq, local, and each SMTP service's smtpd): a
 *   connection waiting on one of the service's sockets. The master holds
 *   them (it made them: the unix sockets in src/master/main.ts, the TCP
 *   ones in ./smtpd-sockets.ts); while the service is down a client's
 *   connection waits in the backlog.
 *   Bun has no readable event for a descriptor it does not own, so the
 *   master asks the kernel for SIGIO on the socket (O_ASYNC) while the
 *   service is down, and on each signal asks with poll(2), without waiting
 *   and without accepting, which sockets have a connection; it also asks
 *   once a second in case a signal was lost, and whenever a service has
 *   just gone down. It never accepts: the service gets the same socket as
 *   descriptor 3 and accepts the connection itself. The flag is turned off
 *   before the service starts, so a running service's connections never
 *   signal the master (nor, were the master killed, a process that got its
 *   pid). The first request after idle waits for the service's start-up
 *   only.
 * - "maildrop" (pickup): an entry in maildrop/. While pickup is down the
 *   master watches the directory (fs.watch: an event only says "look"),
 *   looks again every `pollSeconds` of the role's wake-up (60 s) in case an
 *   event was missed, and whenever pickup has just gone down (a file that
 *   came while it was leaving). To look, it reads at most one name from the
 *   directory: it opens nothing in it and follows nothing there. While
 *   pickup runs, the master does not watch: pickup watches maildrop/ itself
 *   (each submission's directory events would otherwise wake the master's
 *   watch thread too, for nothing). The hand-over misses no file: pickup's
 *   first pass runs after its own watch is set up, and when it exits the
 *   master sets its watch up again before it looks.
 * - "queue" (the queue manager): a connection waiting on its socket (as
 *   "connection"), or a queue file in incoming/, active/ or deferred/. While
 *   the queue manager is down the master watches incoming/ and deferred/
 *   (where smtpd, pickup and postsuper put files), looks every 60 s in case
 *   an event was missed, and whenever the queue manager has just gone down;
 *   it reads names only, with the same function the queue manager asks
 *   before it leaves (queueManagerHasWork), so the two agree on "no work".
 *   Files in active/ are a previous queue manager's (it was killed): they are
 *   work too.
 *
 * A running service, or one in its crash backoff, is not looked for.
 *
 * Runs in the master (root). maildrop/ is writable by every user (mode
 * 3733), incoming/, active/ and deferred/ by mail_owner: the master reads
 * only the names they hold, never a file; the queue directory above them
 * is root's, so none of them can be swapped for a link.
 */
import { watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import { directoryHolds, QMGR_QUEUES, queueManagerHasWork } from "../global/queue/store.ts";
import { log } from "../util/log.ts";
import { pendingConnections, signalOnConnection } from "../util/unix-socket.ts";
import type { Child } from "./children.ts";

/** How often the sockets of the down services are polled besides SIGIO (a lost signal delays at most this). */
export const SOCKET_POLL_MS = 1000;

/** How often the queue manager's queues are looked at while it is down, besides the watch's events. */
export const QUEUE_POLL_MS = 60_000;

/** The queues the master watches while the queue manager is down: the ones other programs put files in. */
const WATCHED_QUEUES = QMGR_QUEUES.filter((q) => q !== "active");

export interface OnDemandOptions {
  /** The children started by a connection on one of their sockets (each has listenFds). */
  byConnection: readonly Child[];
  /** The children started by an entry in `maildrop` (pickup). */
  byMaildrop: readonly Child[];
  /** The maildrop directory, and how often it is looked at without an event. */
  maildrop: string;
  maildropPollMs: number;
  /** The children started by a queue file (the queue manager); each is also in byConnection. */
  byQueue?: readonly Child[];
  /** The queue directory, whose incoming/, active/ and deferred/ are looked at for byQueue. */
  queueDirectory?: string;
}

/** Services started by what a directory holds: pickup by maildrop/, the queue manager by its queues. */
interface DirectoryDemand {
  /** For the log: "maildrop/", "the queue". */
  what: string;
  children: readonly Child[];
  /** Watched while every child is down. */
  dirs: readonly string[];
  /** How often the timer looks without an event. */
  pollMs: number;
  hasWork: () => boolean;
  watchers: FSWatcher[];
}

export class OnDemandStarter {
  #socketTimer: ReturnType<typeof setInterval> | undefined;
  #maildropTimer: ReturnType<typeof setInterval> | undefined;
  #queueTimer: ReturnType<typeof setInterval> | undefined;
  readonly #maildrop: DirectoryDemand;
  readonly #queue: DirectoryDemand;
  #failing = new Set<string>();
  /** The children whose socket signals SIGIO now. */
  #armed = new Set<Child>();
  #stopped = false;

  constructor(private readonly opts: OnDemandOptions) {
    this.#maildrop = { what: "maildrop/", children: opts.byMaildrop, dirs: [opts.maildrop], pollMs: opts.maildropPollMs, hasWork: () => directoryHolds(opts.maildrop), watchers: [] };
    const queueDirectory = opts.queueDirectory ?? "";
    this.#queue = {
      what: "the queue",
      children: opts.byQueue ?? [],
      dirs: WATCHED_QUEUES.map((q) => join(queueDirectory, q)),
      pollMs: QUEUE_POLL_MS,
      hasWork: () => queueManagerHasWork(queueDirectory),
      watchers: [],
    };
    for (const c of opts.byConnection) if (!c.onDemand || c.listenFds.length === 0) throw new Error(`postern/${c.role} is not a service started on demand by its socket`);
    for (const c of opts.byMaildrop) if (!c.onDemand) throw new Error(`postern/${c.role} is not started on demand`);
    for (const c of opts.byConnection) c.onStartable = () => this.pollSockets();
    for (const c of opts.byMaildrop) c.onStartable = () => this.lookAtMaildrop();
    for (const c of opts.byQueue ?? []) {
      if (!opts.byConnection.includes(c) || opts.queueDirectory === undefined) throw new Error(`postern/${c.role} is started by a queue file only with its socket and the queue directory`);
      c.onStartable = () => {
        this.pollSockets();
        this.lookAtQueue();
      };
    }
  }

  /** Looks from now on, until stop(); looks at once (mail may have waited in maildrop/ since before the start). */
  start(): void {
    if (this.#stopped) return;
    if (this.opts.byConnection.length && !this.#socketTimer) {
      // installed once and kept: without a handler, a late SIGIO would end the master
      process.on("SIGIO", () => this.pollSockets());
      this.#socketTimer = setInterval(() => this.pollSockets(), SOCKET_POLL_MS);
    }
    if (this.opts.byMaildrop.length && !this.#maildropTimer) {
      this.#maildropTimer = setInterval(() => this.lookAtMaildrop(), this.opts.maildropPollMs);
    }
    if (this.opts.byQueue?.length && !this.#queueTimer) {
      this.#queueTimer = setInterval(() => this.lookAtQueue(), QUEUE_POLL_MS);
    }
    this.pollSockets();
    this.lookAtMaildrop();
    this.lookAtQueue();
  }

  /** One look at the down services' sockets: starts each that has a connection waiting. */
  pollSockets(): void {
    const down = this.opts.byConnection.filter((c) => c.startable);
    if (this.#stopped || down.length === 0) return;
    // signal first, then look: a connection that comes in between is signalled
    for (const c of down) this.#signal(c, true);
    let ready: number[];
    try {
      ready = pendingConnections(down.flatMap((c) => c.listenFds));
    } catch (err) {
      this.#failed("poll the services' sockets", err as Error);
      return;
    }
    this.#failing.delete("poll the services' sockets");
    for (const c of down) {
      if (!c.listenFds.some((fd) => ready.includes(fd))) continue;
      this.#signal(c, false);
      c.start();
      // the queue manager started by a connection: its queues' watches end
      if (this.opts.byQueue?.includes(c)) this.lookAtQueue();
    }
  }

  /** Turns SIGIO for the child's socket on or off (each change once). */
  #signal(c: Child, on: boolean): void {
    if (this.#armed.has(c) === on) return;
    try {
      for (const fd of c.listenFds) signalOnConnection(fd, on);
      this.#failing.delete("set SIGIO on the services' sockets");
    } catch (err) {
      // the once-a-second poll still starts the service
      this.#failed("set SIGIO on the services' sockets", err as Error);
      return;
    }
    if (on) this.#armed.add(c);
    else this.#armed.delete(c);
  }

  /** Whether the master watches maildrop/ now (only while pickup is down). */
  get watchingMaildrop(): boolean {
    return this.#maildrop.watchers.length > 0;
  }

  /** Whether the master watches the queue manager's queues now (only while it is down). */
  get watchingQueue(): boolean {
    return this.#queue.watchers.length > 0;
  }

  /**
   * One look at maildrop/ when pickup is down: starts it when the directory holds an entry.
   * The watch is set up before the look (a file that comes after the look brings an event)
   * and closed once pickup runs (pickup watches from then on).
   */
  lookAtMaildrop(): void {
    this.#look(this.#maildrop);
  }

  /**
   * One look at incoming/, active/ and deferred/ when the queue manager is down: starts it when one
   * holds a queue file. The watches are set up before the look and closed once it runs.
   */
  lookAtQueue(): void {
    this.#look(this.#queue);
  }

  #look(d: DirectoryDemand): void {
    const down = d.children.filter((c) => c.startable);
    if (this.#stopped) return;
    if (down.length === 0) {
      this.#unwatch(d);
      return;
    }
    this.#watch(d);
    let waiting: boolean;
    try {
      waiting = d.hasWork();
    } catch (err) {
      this.#failed(`look at ${d.what}`, err as Error);
      return;
    }
    this.#failing.delete(`look at ${d.what}`);
    if (!waiting) return;
    for (const c of down) {
      // as pollSockets: a socket stops signalling before the service owns it
      if (c.listenFds.length) this.#signal(c, false);
      c.start();
    }
    if (!d.children.some((c) => c.startable)) this.#unwatch(d);
  }

  #watch(d: DirectoryDemand): void {
    if (d.watchers.length) return;
    try {
      for (const dir of d.dirs) {
        const w = watch(dir, () => this.#look(d));
        w.on("error", (err) => log.warn(`watching ${d.what} failed: ${err.message}; looking every ${d.pollMs / 1000}s`));
        d.watchers.push(w);
      }
      this.#failing.delete(`watch ${d.what}`);
    } catch (err) {
      this.#unwatch(d);
      // the timer still looks; said once until a watch works again
      if (!this.#failing.has(`watch ${d.what}`)) log.warn(`cannot watch ${d.what}: ${(err as Error).message}; looking every ${d.pollMs / 1000}s`);
      this.#failing.add(`watch ${d.what}`);
    }
  }

  #unwatch(d: DirectoryDemand): void {
    for (const w of d.watchers.splice(0)) w.close();
  }

  stop(): void {
    this.#stopped = true;
    for (const c of [...this.#armed]) this.#signal(c, false);
    clearInterval(this.#socketTimer);
    clearInterval(this.#maildropTimer);
    clearInterval(this.#queueTimer);
    this.#unwatch(this.#maildrop);
    this.#unwatch(this.#queue);
    this.#socketTimer = this.#maildropTimer = this.#queueTimer = undefined;
  }

  /** Logged once until it works again, not at every tick. */
  #failed(what: string, err: Error): void {
    if (!this.#failing.has(what)) log.error(`cannot ${what}: ${err.message}`);
    this.#failing.add(what);
  }
}
