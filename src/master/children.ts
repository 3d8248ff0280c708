/**
 * The master's children: each role is the same executable re-executed as
 * `postern ROLE -c DIR` with a clean environment (import_environment, and
 * the runtime's settings for its role: global/system/child-environment.ts).
 * A child that exits while the system runs is restarted after a backoff that
 * doubles from 1 s up to 60 s and resets once a child has run a minute.
 * A service's listening socket (made by the master) is passed on to every
 * incarnation as descriptor 3 with `-s 1`; requests that arrive while the
 * service is down wait in the socket's backlog.
 *
 * A child started on demand (the service table's `onDemand`) is started by
 * the master's OnDemandStarter (./on-demand.ts) when a connection waits on
 * its socket (pickup: when maildrop/ has an entry), not at boot; its exit with status 0 (it idled out after
 * max_idle) is normal: no warning, no backoff, and it waits for the next
 * connection. Any other exit is logged as a crash, and the next start waits
 * for the backoff as for any other child.
 */
import type { Subprocess } from "bun";
import type { DaemonRole } from "../global/system/service-table.ts";
import { log } from "../util/log.ts";
import { ON_DEMAND_FLAG } from "../daemon/skeleton.ts";

export class Child {
  #proc: Subprocess | undefined;
  #failures = 0;
  #startedAt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopping = false;

  constructor(
    readonly role: DaemonRole,
    private readonly configDir: string,
    private env: Record<string, string>,
    /** Arguments after `-c DIR` (smtpd: --service NAME). */
    private readonly extraArgs: readonly string[] = [],
    /** The service's listening sockets, owned by the master: the child's descriptors 3, 4, ... in this order. */
    readonly listenFds: readonly number[] = [],
    /** Started when work waits for it (by OnDemandStarter), not at boot and not after an exit. */
    readonly onDemand = false,
  ) {}

  /** Called when an on-demand child becomes startable again (it exited, or its backoff is over). */
  onStartable: (() => void) | undefined;

  /** An on-demand child that is down, past any backoff, and may be started for a waiting connection. */
  get startable(): boolean {
    return this.onDemand && this.#proc === undefined && this.#timer === undefined && !this.#stopping;
  }

  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  setEnvironment(env: Record<string, string>): void {
    this.env = env;
  }

  start(): void {
    this.#startedAt = Date.now();
    const socketArgs = this.listenFds.length === 0 ? [] : ["-s", String(this.listenFds.length)];
    // after stdin, stdout and stderr, stdio's entries become the child's descriptors 3, 4, ... (skeleton.ts: MASTER_LISTEN_FD);
    // nothing else is inherited
    const stdio = ["ignore", "inherit", "inherit", ...this.listenFds];
    this.#proc = Bun.spawn([process.execPath, this.role, "-c", this.configDir, ...socketArgs, ...(this.onDemand ? [ON_DEMAND_FLAG] : []), ...this.extraArgs], {
      argv0: "postern",
      env: this.env,
      stdio: stdio as ["ignore", "inherit", "inherit"],
      onExit: (p, code, signal) => this.#exited(p.pid, code, signal),
    });
  }

  #exited(pid: number, code: number | null, signal: number | string | null): void {
    this.#proc = undefined;
    if (this.#stopping) return;
    if (this.onDemand && code === 0 && !signal) {
      // idled out: it started fine, so a later crash starts its backoff over
      this.#failures = 0;
      this.onStartable?.();
      return;
    }
    if (Date.now() - this.#startedAt > 60_000) this.#failures = 0;
    const delay = Math.min(60_000, 1000 * 2 ** this.#failures);
    this.#failures++;
    log.warn(`process postern/${this.role} pid ${pid} exit ${signal ? `signal ${signal}` : `status ${code}`}; restarting in ${delay / 1000}s`);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      // an on-demand child waits for the next piece of work instead (OnDemandStarter)
      if (this.#stopping) return;
      if (this.onDemand) this.onStartable?.();
      else this.start();
    }, delay);
  }

  signal(sig: NodeJS.Signals): void {
    try {
      this.#proc?.kill(sig);
    } catch {}
  }

  /** Asks the child to stop; resolves when it has exited (SIGKILL after `graceMs`). */
  async stop(sig: NodeJS.Signals, graceMs: number): Promise<void> {
    this.#stopping = true;
    if (this.#timer) clearTimeout(this.#timer);
    const proc = this.#proc;
    if (!proc) return;
    this.signal(sig);
    const killer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
    await proc.exited;
    clearTimeout(killer);
  }
}
