/**
 * The master's pid file, `$queue_directory/pid/master.pid`: the contract
 * between the master (writes it when the system runs, removes it when it has
 * stopped) and every command that asks whether the system runs (postfix
 * status/stop/reload, postqueue -f). "Stopped" means the file is gone, names
 * a dead process, or is not locked: the master holds an flock on it for its
 * whole life, as Postfix's master does, so a file left behind by a reboot or
 * a container restart never passes for a running system even when its pid
 * now belongs to another process.
 *
 * stop and reload signal the pid in this file, as root: it is trusted only
 * when root (or, in unprivileged mode, the caller) wrote it. pid/ is root's
 * (src/global/queue/names.ts); the file is opened without following a
 * symlink and must be a regular file with one link, owned by root or the
 * caller, in a directory with the same owner that nobody else can write.
 * Anything else is ignored with a warning (never signalled) and, by the
 * master, replaced.
 */
import { closeSync, fstatSync, ftruncateSync, lstatSync, openSync, readFileSync, readSync, unlinkSync, constants as fsc, type Stats } from "node:fs";
import { dirname, join } from "node:path";
import { writeFully } from "../../util/durable-file.ts";
import { log } from "../../util/log.ts";
import { tryKernelLock } from "../../util/kernel-lock.ts";
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
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text.slice(text.lastIndexOf(")") + 2, text.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc: trust the signal
  }
}

/** Owners whose pid file and directory this process believes: root, and itself. */
function trustedOwner(uid: number): boolean {
  return uid === 0 || uid === process.geteuid?.();
}

/** Why `st` (the pid file, opened without following links) is not to be believed, or undefined. */
function distrust(st: Stats): string | undefined {
  if (!st.isFile()) return "not a regular file";
  if (st.nlink !== 1) return `${st.nlink} hard links`;
  if (!trustedOwner(st.uid)) return `owned by uid ${st.uid}, not by root${process.geteuid?.() ? ` or uid ${process.geteuid()}` : ""}`;
  return undefined;
}

/** Why the pid directory is not to be believed (another user could replace the file), or undefined. */
function distrustDirectory(path: string): string | undefined {
  let st: Stats;
  try {
    st = lstatSync(dirname(path));
  } catch (err) {
    return (err as Error).message;
  }
  if (!st.isDirectory()) return `${dirname(path)} is not a directory`;
  if (!trustedOwner(st.uid)) return `${dirname(path)} is owned by uid ${st.uid} ("postern check" makes it root's)`;
  if (st.mode & 0o022) return `${dirname(path)} is writable by others ("postern check" repairs it)`;
  return undefined;
}

/** Reads at most 32 bytes: a pid and a newline. */
function readPid(fd: number): number | undefined {
  const buf = Buffer.alloc(32);
  const n = readSync(fd, buf, 0, buf.length, 0);
  const text = buf.subarray(0, n).toString("latin1").trim();
  if (!/^\d{1,10}$/.test(text)) return undefined;
  const pid = Number(text);
  return pid > 1 ? pid : undefined;
}

/** The running master's pid, or undefined when none runs on this queue (or its pid file is not to be trusted). */
export function runningMasterPid(config: Config): number | undefined {
  const path = masterPidPath(config);
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ELOOP") log.warn(`ignoring ${path}: it is a symbolic link`);
    return undefined;
  }
  try {
    const why = distrust(fstatSync(fd)) ?? distrustDirectory(path);
    if (why) {
      log.warn(`ignoring ${path}: ${why}`);
      return undefined;
    }
    const pid = readPid(fd);
    if (pid === undefined || !isAlive(pid)) return undefined;
    return isLocked(fd) === false ? undefined : pid;
  } finally {
    closeSync(fd); // also releases a lock the check took
  }
}

/** Whether someone holds an flock on the file open at `fd`; undefined when that cannot be told. */
function isLocked(fd: number): boolean | undefined {
  try {
    const attempt = tryKernelLock(fd, "flock");
    return attempt.ok ? false : attempt.busy ? true : undefined;
  } catch {
    return undefined; // no FFI: trust the pid
  }
}

let held: { fd: number; dev: number; ino: number } | undefined;

/**
 * Opens the pid file for the master: an existing file only when it is one this process may trust
 * (anything else, a symlink included, is removed, never followed), otherwise a new one.
 */
function openOwnPidFile(path: string): number {
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, fsc.O_RDWR | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") {
        try {
          return openSync(path, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o644);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "EEXIST") continue;
          throw e;
        }
      }
      if (code !== "ELOOP" && code !== "ENXIO" && code !== "EISDIR") throw err;
      log.warn(`removing ${path}: not a regular file`);
      unlinkSync(path);
      continue;
    }
    const st = fstatSync(fd);
    const why = !st.isFile() || st.nlink !== 1 || st.uid !== process.geteuid?.() ? (distrust(st) ?? `owned by uid ${st.uid}`) : undefined;
    if (!why) return fd;
    closeSync(fd);
    log.warn(`removing ${path}: ${why}`);
    unlinkSync(path);
  }
  throw new Error(`cannot create ${path}: it keeps being replaced`);
}

/** Claims the pid file for this process and keeps it locked; false when a running master holds it. */
export function claimMasterPid(config: Config): boolean {
  const path = masterPidPath(config);
  const why = distrustDirectory(path);
  if (why) throw new Error(`cannot claim ${path}: ${why}`);
  const fd = openOwnPidFile(path);
  const attempt = tryKernelLock(fd, "flock");
  if (!attempt.ok) {
    closeSync(fd);
    if (attempt.busy) return false;
    throw new Error(`cannot lock ${path}: ${attempt.message}`);
  }
  ftruncateSync(fd, 0);
  writeFully(fd, `${process.pid}\n`, 0);
  const st = fstatSync(fd);
  held = { fd, dev: st.dev, ino: st.ino };
  return true;
}

/** Removes the pid file this process claimed (the name only if it still is that file) and unlocks it. */
export function releaseMasterPid(config: Config): void {
  if (!held) return;
  try {
    const st = lstatSync(masterPidPath(config));
    if (st.dev === held.dev && st.ino === held.ino) unlinkSync(masterPidPath(config));
  } catch {}
  closeSync(held.fd);
  held = undefined;
}
