/**
 * The master: claims the pid file, starts the roles the service table
 * (src/global/system/service-table.ts) says it starts and keeps them
 * running; showq, the local delivery service and each smtpd service it
 * starts on demand, when a connection waits on their socket, pickup when
 * maildrop/ holds an entry, the queue manager for either a connection or a
 * queue file (./on-demand.ts); SIGHUP re-reads the configuration and passes the reload on; SIGTERM stops the
 * children gracefully, SIGQUIT at once; then the pid file goes.
 *
 * Before any child starts, the master creates the internal services'
 * sockets (private/local, public/qmgr, public/showq) and passes each on to
 * its service; a restarted service inherits the same socket, so a request
 * made meanwhile waits instead of being refused. It also binds, as root,
 * the TCP addresses of each smtpd service (./smtpd-sockets.ts) and holds
 * them the same way; a service whose sockets it cannot hold (a host name
 * in its listen) binds its own and runs from the start.
 *
 * Runs as root on a system install (children drop to mail_owner themselves,
 * local delivery stays root to deliver as each recipient) or as the invoking
 * user in unprivileged mode. Reads only its configuration.
 */
import { log } from "../util/log.ts";
import { getopt } from "../util/getopt.ts";
import { ExitError, EX_CONFIG, EX_TEMPFAIL, EX_USAGE } from "../util/sysexits.ts";
import { loadConfig } from "../global/config/config.ts";
import { setupLog } from "../global/system/log-setup.ts";
import { claimMasterPid, masterPidPath, releaseMasterPid } from "../global/system/master-pid.ts";
import { ensureQueueDirectories } from "../global/queue/directories.ts";
import { queueOwner } from "../global/system/mail-owner.ts";
import { Child } from "./children.ts";
import { childEnvironment } from "../global/system/child-environment.ts";
import { VERSION } from "../version.ts";
import { closeSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { listenUnixSocket } from "../util/unix-socket.ts";
import { daemonEntry, masterSingletons, servedSocket, SERVICE_TABLE, startedOnDemand, type DaemonRole } from "../global/system/service-table.ts";
import { OnDemandStarter } from "./on-demand.ts";
import { bindSmtpdServices, closeHeldServices, type HeldService } from "./smtpd-sockets.ts";
import { useNormalJitPolicy } from "../util/jit.ts";
import { collectStartGarbageLater } from "../util/start-gc.ts";

export async function main(args: string[]): Promise<number> {
  useNormalJitPolicy();
  collectStartGarbageLater();
  let parsed;
  try {
    parsed = getopt(args, "c:f");
  } catch (err) {
    throw new ExitError(EX_USAGE, `${(err as Error).message}; usage: postern master [-c config_dir] [-f]`);
  }
  const foreground = parsed.options.some(([o]) => o === "f");
  let config = loadConfig(parsed.options.find(([o]) => o === "c")?.[1]);
  const configDir = config.source.directory;
  // Until the children run, messages also go to stderr, so that `postern start` (which keeps the
  // detached master's stderr in pid/master.err) and start-fg can say why a start failed.
  const logOptions = { role: "master", ...(foreground ? { foreground: true } : {}) };
  const logsToTerminal = foreground && !config.raw("maillog_file");
  await setupLog(config, { ...logOptions, ...(logsToTerminal ? {} : { stderrProgram: "postern/master" }) });
  const problems = config.validate();
  if (problems.length) {
    for (const p of problems) log.error(p.message);
    throw new ExitError(EX_CONFIG, "fatal configuration errors; not starting");
  }
  ensureQueueDirectories(config.str("queue_directory"), queueOwner(config));
  // as Postfix's master: work from the queue directory, not wherever `postern start` ran
  process.chdir(config.str("queue_directory"));
  if (!claimMasterPid(config)) throw new ExitError(EX_TEMPFAIL, `the mail system is already running (${masterPidPath(config)})`);
  // every service's socket exists before any process that might connect to it starts (replacing stale ones)
  const queueDirectory = config.str("queue_directory");
  const started = (Object.keys(SERVICE_TABLE) as DaemonRole[]).filter((r) => SERVICE_TABLE[r].startedBy === "master");
  const sockets = new Map<string, { path: string; fd: number }>();
  try {
    for (const role of started) {
      const s = servedSocket(role);
      if (!s) continue;
      const path = join(queueDirectory, s.path);
      sockets.set(role, { path, fd: listenUnixSocket(path, s.mode) });
    }
  } catch (err) {
    closeSockets(sockets);
    releaseMasterPid(config);
    throw new ExitError(EX_TEMPFAIL, `cannot create the services' sockets: ${(err as Error).message}`);
  }

  const environment = (role: DaemonRole) => ({ ...childEnvironment(config, configDir, role), ...(foreground ? { POSTERN_LOG_STDOUT: "1" } : {}) });
  const children = masterSingletons().map((role) => {
    const s = sockets.get(role);
    return new Child(role, configDir, environment(role), [], s ? [s.fd] : [], startedOnDemand(role));
  });
  // "per service" (smtpd): for each enabled service of the role, smtpdProcessPlan's processes (one, serving the
  // whole process_limit), on demand on the sockets bound here, or from the start when it binds its own
  let held: HeldService[];
  try {
    held = bindSmtpdServices(config);
  } catch (err) {
    closeSockets(sockets);
    releaseMasterPid(config);
    throw new ExitError(EX_TEMPFAIL, (err as Error).message);
  }
  for (const svc of held) {
    for (let i = 0; i < svc.processes; i++) children.push(new Child("smtpd", configDir, environment("smtpd"), ["--service", svc.name], svc.fds, svc.fds.length > 0));
  }
  for (const child of children) if (!child.onDemand) child.start();
  const onDemand = new OnDemandStarter({
    // the queue manager is started by a connection on its socket too (a flush request)
    byConnection: children.filter((c) => c.onDemand && (daemonEntry(c.role).onDemand === "connection" || daemonEntry(c.role).onDemand === "queue")),
    byMaildrop: children.filter((c) => c.onDemand && daemonEntry(c.role).onDemand === "maildrop"),
    maildrop: join(queueDirectory, SERVICE_TABLE.pickup.wakeUp.watch),
    maildropPollMs: SERVICE_TABLE.pickup.wakeUp.pollSeconds * 1000,
    byQueue: children.filter((c) => c.onDemand && daemonEntry(c.role).onDemand === "queue"),
    queueDirectory,
  });
  onDemand.start();
  log.info(`daemon started -- version ${VERSION}, configuration ${configDir}`);
  if (!logsToTerminal) await setupLog(config, logOptions);

  const done = new Promise<NodeJS.Signals>((resolve) => {
    process.on("SIGTERM", () => resolve("SIGTERM"));
    process.on("SIGINT", () => resolve("SIGTERM"));
    process.on("SIGQUIT", () => resolve("SIGQUIT"));
  });
  process.on("SIGHUP", () => {
    try {
      const next = loadConfig(configDir);
      const errs = next.validate();
      if (errs.length) {
        for (const e of errs) log.error(e.message);
        log.error("reload: configuration errors; keeping the running configuration");
        return;
      }
      config = next;
      for (const child of children) {
        child.setEnvironment(environment(child.role));
        child.signal("SIGHUP");
      }
      log.info(`reload -- version ${VERSION}, configuration ${configDir}`);
    } catch (err) {
      log.error(`reload: ${(err as Error).message}`);
    }
  });
  const how = await done;
  log.info(how === "SIGQUIT" ? "terminating on signal (abort)" : "terminating on signal TERM");
  onDemand.stop();
  await Promise.all(children.map((c) => c.stop(how === "SIGQUIT" ? "SIGKILL" : "SIGTERM", 10_000)));
  closeSockets(sockets);
  closeHeldServices(held);
  releaseMasterPid(config);
  return 0;
}

/** Closes the services' sockets and removes their names (unlink never follows a symlink). */
function closeSockets(sockets: Map<string, { path: string; fd: number }>): void {
  for (const { path, fd } of sockets.values()) {
    try {
      closeSync(fd);
    } catch {}
    try {
      unlinkSync(path);
    } catch {}
  }
  sockets.clear();
}
