/**
 * The master's pid file, `$queue_directory/pid/master.pid`: the contract
 * between the master (writes it when the system runs, removes it when it has
 * stopped) and every command that asks whether the system runs (postfix
 * status/stop/reload, postqueue -f). "Stopped" means the file is gone or
 * names a dead process, never just that a signal failed.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync, constants as fsc } from "node:fs";
import { join } from "node:path";
import type { Config } from "./config/config.ts";

export function masterPidPath(config: Config): string {
  return join(config.str("queue_directory"), "pid", "master.pid");
}

/** Whether `pid` runs; a zombie (killed, not yet reaped by init) counts as dead. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc: trust the signal
  }
}

/** The running master's pid, or undefined when none runs on this queue. */
export function runningMasterPid(config: Config): number | undefined {
  let text: string;
  try {
    text = readFileSync(masterPidPath(config), "utf8");
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  return isAlive(pid) ? pid : undefined;
}

/** Claims the pid file for this process; false when a live master holds it. */
export function claimMasterPid(config: Config): boolean {
  const path = masterPidPath(config);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = runningMasterPid(config);
      if (holder !== undefined && holder !== process.pid) return false;
      try {
        unlinkSync(path); // stale: its process is gone
      } catch {}
    }
  }
  return false;
}

export function releaseMasterPid(config: Config): void {
  try {
    if (Number(readFileSync(masterPidPath(config), "utf8").trim()) === process.pid) unlinkSync(masterPidPath(config));
  } catch {}
}
