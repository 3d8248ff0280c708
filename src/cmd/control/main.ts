/**
 * Mail system control: `postern start|start-fg|stop|abort|reload|status|
 * flush|check|set-permissions` and `postfix [-c dir] COMMAND`.
 *
 * Runs as the invoking user (root on a system install). The running system
 * is known by the master's pid file (src/global/system/master-pid.ts); "stopped"
 * means that file is gone. stop and reload signal only a pid that file's
 * trusted owner wrote (root, or the caller in unprivileged mode).
 *
 * pid/ is root's (check and start repair it), and root still opens nothing
 * there by following a name: pid/master.err is removed and created anew
 * with O_EXCL|O_NOFOLLOW, and read back through the same descriptor.
 *
 * `check` also warns, in the resolver's words, about a domain listed in
 * the domain lists of two address classes (global/rewrite/class-overlaps.ts).
 *
 * `start`, `start-fg` and `check` run `postsuper -p -v` after preparing the
 * queue, as Postfix's start and check run postsuper: temporary files left by
 * crashed writers go, each with a log line. postsuper drops to the queue's
 * owner itself, so root never unlinks by path in directories mail_owner can
 * write.
 */
import { closeSync, fstatSync, openSync, readSync, unlinkSync, constants as fsc } from "node:fs";
import { join } from "node:path";
import { getopt, GetoptError } from "../../util/getopt.ts";
import { log } from "../../util/log.ts";
import { ExitError, EX_CANTCREAT, EX_CONFIG, EX_UNAVAILABLE, EX_USAGE, EX_SOFTWARE } from "../../util/sysexits.ts";
import { configFileWarnings } from "../../global/config/file-checks.ts";
import { domainClassOverlaps } from "../../global/rewrite/class-overlaps.ts";
import { databaseTableWarnings } from "../../global/config/table-checks.ts";
import { loadConfig, type Config } from "../../global/config/config.ts";
import { setupLog } from "../../global/system/log-setup.ts";
import { ensureQueueDirectories } from "../../global/queue/directories.ts";
import { queueOwner } from "../../global/system/mail-owner.ts";
import { masterPidPath, runningMasterPid } from "../../global/system/master-pid.ts";
import { childEnvironment } from "../../global/system/child-environment.ts";
import { ConfigError } from "../../global/config/source.ts";

const COMMANDS = ["start", "start-fg", "stop", "abort", "reload", "status", "flush", "check", "set-permissions"];

export async function main(args: string[], invokedAs: string): Promise<number> {
  let parsed;
  try {
    parsed = getopt(args, "c:Dv");
  } catch (err) {
    if (err instanceof GetoptError) throw new ExitError(EX_USAGE, `${err.message}; usage: ${invokedAs} [-c config_dir] COMMAND`);
    throw err;
  }
  const configDir = parsed.options.find(([o]) => o === "c")?.[1];
  const command = invokedAs === "postfix" ? parsed.operands[0] : invokedAs;
  // Options come before the command (getopt stops at the first word): "postfix check -c DIR"
  // must not silently check the default configuration instead.
  const extra = parsed.operands.slice(invokedAs === "postfix" ? 1 : 0);
  if (!command || !COMMANDS.includes(command) || extra.length) {
    throw new ExitError(EX_USAGE, `usage: ${invokedAs === "postfix" ? "postfix [-c config_dir]" : "postern"} ${COMMANDS.join("|")}`);
  }
  const config = loadConfig(configDir);
  await setupLog(config, { role: "postfix-script", stderrProgram: invokedAs === "postfix" ? "postfix" : "postern" });

  switch (command) {
    case "status":
      return status(config);
    case "stop":
    case "abort":
      return stop(config, command === "abort" ? "SIGQUIT" : "SIGTERM");
    case "reload":
      return reload(config);
    case "flush":
      return flush(config);
  }
  const problems = config.validate();
  for (const name of config.unknownNames()) log.warn(`${config.path}: unknown parameter: ${name}`);
  for (const w of configFileWarnings(config)) log.warn(w);
  // the resolver's "do not list domain X in BOTH A and B", before any mail comes for X
  if (command === "check" && problems.length === 0 && config.bool("helpful_warnings")) for (const w of await domainClassOverlaps(config)) log.warn(w);
  if (command === "check") for (const w of await databaseTableWarnings(config)) log.warn(w);
  for (const p of problems) log.error(p.message);
  if (problems.length) {
    if (command === "check" || command === "set-permissions") return EX_CONFIG;
    throw new ExitError(EX_CONFIG, `refusing to ${command}: fix the configuration errors above`);
  }
  prepareQueue(config);
  if (command !== "set-permissions") purgeStaleTemporaryFiles(config);
  if (command === "check" || command === "set-permissions") return 0;
  if (runningMasterPid(config) !== undefined) throw new ExitError(1, "the mail system is already running");
  if (command === "start-fg") return startForeground(config);
  return start(config);
}

/** Creates missing queue directories and repairs owners and modes, logging each change. */
function prepareQueue(config: Config): void {
  const queueDirectory = config.str("queue_directory");
  try {
    for (const change of ensureQueueDirectories(queueDirectory, queueOwner(config))) log.info(`${queueDirectory}: ${change}`);
  } catch (err) {
    // a missing mail_owner is a configuration error (78), not a file system one
    if (err instanceof ExitError || err instanceof ConfigError) throw err;
    throw new ExitError(EX_CANTCREAT, `cannot prepare the queue directory ${queueDirectory}: ${(err as Error).message}`);
  }
}

/** `postsuper -p -v` in a child process (it drops to the queue's owner); a failure is a warning, not a reason to stay down. */
function purgeStaleTemporaryFiles(config: Config): void {
  const r = Bun.spawnSync([process.execPath, "postsuper", "-c", config.source.directory, "-p", "-v"], {
    argv0: "postern",
    env: childEnvironment(config, config.source.directory),
    stdin: "ignore",
    stdout: "inherit",
    stderr: "inherit",
  });
  if (r.exitCode !== 0) log.warn(`postsuper -p exited with status ${r.exitCode}: temporary files left by crashed writers stay in the queue`);
}

function status(config: Config): number {
  const pid = runningMasterPid(config);
  if (pid === undefined) {
    log.info("the mail system is not running");
    return 1;
  }
  log.info(`the mail system is running: PID: ${pid}`);
  return 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts the master in the background and returns once its pid file says it runs. */
async function start(config: Config): Promise<number> {
  const errPath = join(config.str("queue_directory"), "pid", "master.err");
  const errFd = createErrorFile(errPath);
  try {
    return await startMaster(config, errFd);
  } finally {
    closeSync(errFd);
  }
}

/** A new, empty pid/master.err that is no link to anything: whatever had the name goes first. */
function createErrorFile(path: string): number {
  try {
    unlinkSync(path); // a symlink is removed, not followed
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new ExitError(EX_CANTCREAT, `cannot remove ${path}: ${(err as Error).message}`);
  }
  try {
    return openSync(path, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw new ExitError(EX_CANTCREAT, `cannot create ${path}: ${(err as Error).message}`);
  }
}

/** The last lines the master wrote to its error file (at most the last 64 KiB are read). */
function lastLines(fd: number): string {
  const size = fstatSync(fd).size;
  const buf = Buffer.alloc(Math.min(size, 64 * 1024));
  const n = readSync(fd, buf, 0, buf.length, size - buf.length);
  return buf.subarray(0, n).toString("utf8").trim().split("\n").slice(-5).join("; ");
}

async function startMaster(config: Config, errFd: number): Promise<number> {
  const proc = Bun.spawn([process.execPath, "master", "-c", config.source.directory], {
    argv0: "postern",
    env: childEnvironment(config, config.source.directory, "master"),
    stdin: "ignore",
    stdout: errFd,
    stderr: errFd,
    detached: true,
  });
  let exited: number | undefined;
  proc.exited.then((code) => (exited = code));
  for (let waited = 0; waited < 15_000; waited += 25) {
    if (runningMasterPid(config) === proc.pid) {
      proc.unref();
      log.info("starting the mail system");
      return 0;
    }
    if (exited !== undefined) break;
    await sleep(25);
  }
  let detail = "";
  try {
    detail = lastLines(errFd);
  } catch {}
  if (exited === undefined) proc.kill("SIGKILL");
  throw new ExitError(exited === EX_CONFIG ? EX_CONFIG : EX_SOFTWARE, `the mail system did not start${detail ? `: ${detail}` : ""}`);
}

/** `postfix start-fg`: runs the master in the foreground as a child and passes signals on. */
async function startForeground(config: Config): Promise<number> {
  const proc = Bun.spawn([process.execPath, "master", "-f", "-c", config.source.directory], {
    argv0: "postern",
    env: childEnvironment(config, config.source.directory, "master"),
    stdio: ["ignore", "inherit", "inherit"],
  });
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"] as const) process.on(sig, () => proc.kill(sig));
  return await proc.exited;
}

async function stop(config: Config, signal: NodeJS.Signals): Promise<number> {
  const pid = runningMasterPid(config);
  if (pid === undefined) throw new ExitError(1, "the mail system is not running");
  log.info(signal === "SIGQUIT" ? "aborting the mail system" : "stopping the mail system");
  process.kill(pid, signal);
  for (let waited = 0; waited < 30_000; waited += 25) {
    if (runningMasterPid(config) === undefined) return 0;
    await sleep(25);
  }
  throw new ExitError(EX_SOFTWARE, `the master (pid ${pid}) did not stop within 30 seconds; see ${masterPidPath(config)}`);
}

function reload(config: Config): number {
  const pid = runningMasterPid(config);
  if (pid === undefined) throw new ExitError(1, "the mail system is not running");
  const problems = config.validate();
  for (const p of problems) log.error(p.message);
  if (problems.length) throw new ExitError(EX_CONFIG, "refusing to reload: fix the configuration errors above");
  log.info("refreshing the mail system");
  process.kill(pid, "SIGHUP");
  return 0;
}

async function flush(config: Config): Promise<number> {
  if (runningMasterPid(config) === undefined) throw new ExitError(EX_UNAVAILABLE, "Cannot flush mail queue - mail system is down");
  const { requestFlush } = await import("../../global/queue/flush-request.ts");
  await requestFlush(config, { kind: "all" });
  return 0;
}
