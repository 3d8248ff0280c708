/**
 * The master's pid file, `$queue_directory/pid/master.pid`: the contract
 * between the master (writes it when the system runs, removes it when it has
 * stopped) and every command that asks whether the system runs (postfix
 * status/stop/reload, postqueue -f). "Stopped" means the file is gone, names
 * a dead process, or is not locked: the master holds an flock on it for its
 * whole life, as Postfix's master does, so a file left behind by a reboot or
 * a container restart never passes for a running system even when its pid
 * now belongs to another process.
 */
import { closeSync, ftruncateSync, openSync, readFileSync, unlinkSync, constants as fsc } from "node:fs";
import { writeFully } from "../../util/durable-file.ts";
import { tryKernelLock } from "../../util/kernel-lock.ts";
import { join } from "node:path";
import type { Config } from "../config/config.ts";

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
  if (!isAlive(pid)) return undefined;
  return isLocked(masterPidPath(config)) === false ? undefined : pid;
}

/** Whether someone holds an flock on `path`; undefined when that cannot be told. */
function isLocked(path: string): boolean | undefined {
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY);
  } catch {
    return undefined;
  }
  try {
    const attempt = tryKernelLock(fd, "flock");
    return attempt.ok ? false : attempt.busy ? true : undefined;
  } catch {
    return undefined; // no FFI: trust the pid
  } finally {
    closeSync(fd); // also releases a lock this check took
  }
}

let heldFd: number | undefined;

/** Claims the pid file for this process and keeps it locked; false when a running master holds it. */
export function claimMasterPid(config: Config): boolean {
  const fd = openSync(masterPidPath(config), fsc.O_RDWR | fsc.O_CREAT, 0o644);
  const attempt = tryKernelLock(fd, "flock");
  if (!attempt.ok) {
    closeSync(fd);
    if (attempt.busy) return false;
    throw new Error(`cannot lock ${masterPidPath(config)}: ${attempt.message}`);
  }
  ftruncateSync(fd, 0);
  writeFully(fd, `${process.pid}\n`, 0);
  heldFd = fd;
  return true;
}

export function releaseMasterPid(config: Config): void {
  try {
    if (Number(readFileSync(masterPidPath(config), "utf8").trim()) === process.pid) unlinkSync(masterPidPath(config));
  } catch {}
  if (heldFd !== undefined) closeSync(heldFd);
  heldFd = undefined;
}
