/**
 * What every daemon role shares: logging to the configured destination (no
 * stderr echo), the privilege drop its service-table entry asks for,
 * SIGTERM/SIGHUP handling (a reload retires the replaced configuration:
 * src/global/config/generation.ts), and leaving when the master is gone (so a
 * `kill -9` of the master never leaves orphans that keep working on the
 * queue).
 *
 * `-s 1` (from the master, as Postfix's master passes its sockets): the
 * service's listening socket is descriptor 3, created by the master before
 * it started any process. Without it a service creates its own socket.
 *
 * `--on-demand` (from the master, for a role the service table marks
 * `onDemand`): the role is also told to stop once it has been idle
 * `max_idle` (src/daemon/idle-exit.ts); `stoppedBy` says "idle" then, and
 * the role exits with status 0, which the master takes as normal. Started
 * by hand, it runs until it is stopped.
 */
import { fstatSync } from "node:fs";
import { log } from "../util/log.ts";
import { getopt } from "../util/getopt.ts";
import { ExitError, EX_USAGE } from "../util/sysexits.ts";
import { loadConfig, type Config } from "../global/config/config.ts";
import { retireConfig } from "../global/config/generation.ts";
import { setupLog } from "../global/system/log-setup.ts";
import { dropPrivilegesFor } from "./privileges.ts";
import { startedOnDemand, type DaemonRole } from "../global/system/service-table.ts";
import { IdleExit } from "./idle-exit.ts";
import { useNormalJitPolicy, useReluctantJitPolicy } from "../util/jit.ts";
import { collectStartGarbageLater } from "../util/start-gc.ts";
import { idleTrimmer } from "../util/exe-trim.ts";
import { preloadTableFiles } from "../global/tables/db-common.ts";

function isSocket(fd: number): boolean {
  try {
    return fstatSync(fd).isSocket();
  } catch {
    return false;
  }
}

/** The master's word that it started the role on demand: it exits after max_idle without work. */
export const ON_DEMAND_FLAG = "--on-demand";

/** Where a service finds the socket the master passed on (the master's stdio entry 3; more follow at 4, 5, ...). */
export const MASTER_LISTEN_FD = 3;

/** The most listening sockets a service takes from the master (an smtpd service's addresses). */
const MAX_LISTEN_FDS = 64;

export interface DaemonContext {
  config: Config;
  configDir: string | undefined;
  /** The listening socket the master passed on (descriptor 3), if any. */
  listenFd: number | undefined;
  /** Every listening socket the master passed on (descriptors 3, 4, ...; smtpd: one per listen address). */
  listenFds: readonly number[];
  /** Resolves when the daemon is asked to stop (SIGTERM, the master left, or idle for max_idle). */
  stopped: Promise<void>;
  /** Why it stops: "idle" when it idled out (a role started on demand), "signal" otherwise; undefined while it runs. */
  stoppedBy(): "idle" | "signal" | undefined;
  /** For a role started on demand by the master: what keeps it busy (serveJsonLines counts connections and requests on it). */
  activity: IdleExit | undefined;
  isStopping(): boolean;
}

export interface DaemonOptions {
  /** Its entry of the service table says whether it keeps root or drops to mail_owner. */
  role: Exclude<DaemonRole, "master" | "local-worker">;
  /**
   * Called on SIGHUP with the re-read configuration. Throwing keeps the old one (the
   * daemon's config); else the old one is retired (src/global/config/generation.ts).
   */
  onReload?: (config: Config) => void;
  /** Runs as root before the privilege drop, after logging is set up (smtpd reads TLS keys and listens on the sockets it got, or binds its own). */
  beforeDrop?: (config: Config, listenFds: readonly number[]) => Promise<void> | void;
  /** "reluctant": keep the start-up JIT policy (src/util/jit.ts); default "normal". */
  jit?: "normal" | "reluctant";
  /** Started on demand: whether it may stop after max_idle without work (default: yes); asked each time. */
  mayStopIdle?: () => boolean;
}

/**
 * One reload: the configuration `load` reads, handed to `onReload`, becomes
 * the daemon's, and `current` is retired (what it opened is released once
 * the work that holds it has ended). When reading fails, or the role
 * throws because it cannot take the new one, `current` stays in use and
 * whatever the refused configuration opened meanwhile is released at once.
 */
export function reloadConfig(current: Config, load: () => Config, onReload?: (config: Config) => void): Config {
  let next: Config | undefined;
  try {
    next = load();
    onReload?.(next);
  } catch (err) {
    if (next) retireConfig(next);
    log.error(`reload: keeping the old configuration: ${(err as Error).message}`);
    return current;
  }
  retireConfig(current);
  log.info("reload: configuration re-read");
  return next;
}

/** Parses `-c DIR`, sets up the daemon and returns its context. */
export async function startDaemon(args: string[], opts: DaemonOptions): Promise<DaemonContext> {
  let parsed;
  const onDemand = args.includes(ON_DEMAND_FLAG);
  if (onDemand && !startedOnDemand(opts.role)) throw new ExitError(EX_USAGE, `${ON_DEMAND_FLAG}: the service table does not start ${opts.role} on demand`);
  try {
    parsed = getopt(args.filter((a) => a !== ON_DEMAND_FLAG), "c:s:");
  } catch (err) {
    throw new ExitError(EX_USAGE, `${(err as Error).message}; usage: postern ${opts.role} [-c config_dir] [-s count] [${ON_DEMAND_FLAG}]`);
  }
  const configDir = parsed.options.find(([o]) => o === "c")?.[1];
  const sockets = parsed.options.find(([o]) => o === "s")?.[1];
  const count = sockets === undefined ? 0 : /^\d{1,2}$/.test(sockets) ? Number(sockets) : -1;
  if (count < 0 || count > MAX_LISTEN_FDS) throw new ExitError(EX_USAGE, `-s ${sockets}: a service takes 0 to ${MAX_LISTEN_FDS} listening sockets; usage: postern ${opts.role} [-c config_dir] [-s count]`);
  const listenFds = Array.from({ length: count }, (_, i) => MASTER_LISTEN_FD + i);
  for (const fd of listenFds) if (!isSocket(fd)) throw new ExitError(EX_USAGE, `-s ${count}: descriptor ${fd} is not a socket; only the master passes one`);
  const listenFd = listenFds[0];
  if (opts.jit === "reluctant") useReluctantJitPolicy();
  else useNormalJitPolicy();
  collectStartGarbageLater();
  let config = loadConfig(configDir);
  // open the log first: maillog_file may be writable only by root (Postfix has postlogd for this)
  await setupLog(config, { role: opts.role });
  // database tables' files may be root-only (they hold passwords): read them while we may
  for (const problem of preloadTableFiles(config)) log.warn(problem);
  await opts.beforeDrop?.(config, listenFds);
  dropPrivilegesFor(opts.role, config);

  let stopping: "idle" | "signal" | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  const stop = (why: "idle" | "signal" = "signal") => {
    if (stopping) return;
    stopping = why;
    if (why !== "idle") activity?.cancel();
    resolveStopped();
  };
  const maxIdleMs = () => Math.max(1, config.time("max_idle")) * 1000;
  // an idle daemon gives back the executable's pages it no longer uses after max_idle without work
  idleTrimmer.setIdleTime(maxIdleMs);
  const activity = onDemand ? new IdleExit(maxIdleMs, () => stop("idle"), opts.mayStopIdle) : undefined;
  process.on("SIGTERM", () => stop());
  process.on("SIGINT", () => stop());
  process.on("SIGHUP", () => {
    // XXX: the log destination is kept; a changed maillog_file takes effect at the next start
    config = reloadConfig(config, () => loadConfig(configDir), opts.onReload);
  });
  // the master re-parents us to init (ppid 1) when it dies
  const parent = process.ppid;
  const watchParent = setInterval(() => {
    if (process.ppid !== parent) {
      log.warn("the master process is gone; exiting");
      stop();
    }
  }, 1000);
  watchParent.unref();
  return {
    get config() {
      return config;
    },
    configDir,
    listenFd,
    listenFds,
    stopped,
    stoppedBy: () => stopping,
    activity,
    isStopping: () => stopping !== undefined,
  };
}
