/**
 * One entry of maildrop/, opened safely: what pickup may read, and what it
 * gets rid of. maildrop/ is writable by every local user, so an entry may be
 * anything a user can make there: a directory, a symbolic link, a FIFO, a
 * socket, a hard link to someone else's file, a sparse file of many
 * gigabytes, a file pickup may not read, or a name that is no queue ID.
 *
 * - A name that is neither a queue ID nor sendmail's temporary name
 *   (`t.PID.RANDOM`, a file being written) is removed with one log line.
 * - Anything but a regular file with one link is removed (unlinked, or
 *   rmdir for an empty directory) without being opened or followed, with one
 *   log line. A directory pickup cannot remove (it holds files the user made
 *   unremovable) is remembered and skipped quietly for the life of the
 *   process: one log line, not one per pass.
 * - A regular file is opened with O_NOFOLLOW and O_NONBLOCK, and fstat must
 *   show the inode lstat saw. A file pickup may not open, or one larger than
 *   the bound (message_size_limit plus room for the envelope), goes to
 *   corrupt/ with one log line, never read; the rest is read in chunks up to
 *   the bound, so a file that grows while being read is refused too.
 *
 * Runs in pickup as mail_owner, which owns maildrop/ and so may remove any
 * entry in it despite the sticky bit. Nothing here trusts the entry.
 */
import { closeSync, fstatSync, lstatSync, openSync, readSync, rmdirSync, unlinkSync, constants as fsc, type Stats } from "node:fs";
import { join } from "node:path";
import { log } from "../util/log.ts";
import { isQueueId } from "../global/queue/names.ts";
import { quarantine } from "../global/queue/store.ts";

/** Room for the envelope (recipients, attributes) and the headers cleanup added, on top of message_size_limit. */
export const ENVELOPE_ALLOWANCE = 1024 * 1024;
/**
 * XXX: with message_size_limit = 0 (no limit) pickup still holds a message in
 * memory, so it refuses maildrop files above 1 GiB.
 */
export const UNLIMITED_CEILING = 1024 * 1024 * 1024;

/** The largest maildrop file pickup reads. */
export function maildropReadLimit(messageSizeLimit: number, headerSizeLimit: number): number {
  return messageSizeLimit > 0 ? messageSizeLimit + headerSizeLimit + ENVELOPE_ALLOWANCE : UNLIMITED_CEILING;
}

/** Entries pickup gave up on (they cannot be removed), by name: the identity it saw, so they are logged once. */
const stuck = new Map<string, string>();

const identity = (st: Stats) => `${st.dev}:${st.ino}`;

/** Forgets the entries that are no longer in maildrop/ (the names of one scan). */
export function forgetVanished(names: readonly string[]): void {
  if (stuck.size === 0) return;
  const present = new Set(names);
  for (const name of stuck.keys()) if (!present.has(name)) stuck.delete(name);
}

/** sendmail's (and every queue writer's) temporary name: a file still being written. */
export function isTemporaryName(name: string): boolean {
  return /^t\.\d+\.[0-9a-z]+$/.test(name);
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isSymbolicLink()) return "a symbolic link";
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  if (st.isFile()) return `a file with ${st.nlink} links`;
  return "not a regular file";
}

/** Removes an entry that is not a message; a directory that cannot be removed is remembered. One log line either way. */
function discard(dir: string, name: string, st: Stats, why: string): "removed" | "kept" {
  const path = join(dir, name);
  try {
    if (st.isDirectory()) rmdirSync(path);
    else unlinkSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "removed";
    stuck.set(name, identity(st));
    log.warn(`maildrop/${name}: uid=${st.uid}: ${why}; cannot remove it (${code ?? (err as Error).message}); ignoring it from now on`);
    return "kept";
  }
  log.warn(`maildrop/${name}: uid=${st.uid}: ${why}; removed`);
  return "removed";
}

export type MaildropEntry =
  /** A regular file, open: its fstat. The caller reads it (readMaildropFile) and closes fd. */
  | { kind: "open"; fd: number; st: Stats }
  /** Dealt with here (logged): removed, quarantined, or left for a later pass. */
  | { kind: "handled"; outcome: "removed" | "corrupt" | "kept" }
  /** Nothing to do: gone, being written, or already reported. */
  | { kind: "skip" };

/** Looks at maildrop/NAME and opens it when it may be a message; everything else is dealt with. */
export function openMaildropEntry(queueDir: string, name: string, readLimit: number): MaildropEntry {
  const dir = join(queueDir, "maildrop");
  const path = join(dir, name);
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "skip" };
    throw err;
  }
  if (stuck.get(name) === identity(st)) return { kind: "skip" };
  stuck.delete(name);
  if (!isQueueId(name)) {
    if (isTemporaryName(name) && st.isFile()) return { kind: "skip" };
    return { kind: "handled", outcome: discard(dir, name, st, `${st.isFile() ? "a file" : kindOf(st)} whose name is not a queue ID`) };
  }
  if (!st.isFile() || st.nlink !== 1) return { kind: "handled", outcome: discard(dir, name, st, `${kindOf(st)}, not a queue file`) };
  if (st.size > readLimit) {
    quarantine(queueDir, "maildrop", name, new Error(`uid=${st.uid}: message file too big: ${st.size} bytes, the limit is ${readLimit}`));
    return { kind: "handled", outcome: "corrupt" };
  }
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { kind: "skip" };
    // replaced since lstat: look again next pass
    if (code === "ELOOP" || code === "ENXIO" || code === "EISDIR") return { kind: "handled", outcome: "kept" };
    if (code === "EACCES" || code === "EPERM") {
      quarantine(queueDir, "maildrop", name, new Error(`uid=${st.uid}: cannot open it: permission denied`));
      return { kind: "handled", outcome: "corrupt" };
    }
    log.warn(`maildrop/${name}: cannot open it: ${(err as Error).message}; will try again`);
    return { kind: "handled", outcome: "kept" };
  }
  let ok = false;
  try {
    const fst = fstatSync(fd);
    if (fst.ino !== st.ino || fst.dev !== st.dev || !fst.isFile() || fst.nlink !== 1) return { kind: "handled", outcome: "kept" };
    ok = true;
    return { kind: "open", fd, st: fst };
  } finally {
    if (!ok) closeSync(fd);
  }
}

/** The first buffer when fstat's size says nothing (0): a typical submission fits. */
const FIRST_READ = 16 * 1024;

/**
 * Reads an open maildrop file up to `limit` bytes: its bytes, or undefined when there are more.
 * `sizeHint` (fstat's size) sizes the one buffer the read needs: a 2 KiB submission reads into
 * a few KiB, not the 1 MiB chunks every file got before (two per file, each a fresh mapping the
 * allocator then had to give back). The hint is only a hint: a file that grew is read on, into a
 * buffer twice as large each time, and the limit bounds it whatever the hint said.
 */
export function readMaildropFile(fd: number, limit: number, sizeHint = 0): Buffer | undefined {
  const cap = limit + 1;
  // one byte beyond the size, so the read that finds the end needs no second buffer
  let buf = Buffer.allocUnsafe(Math.min(cap, sizeHint > 0 ? sizeHint + 1 : FIRST_READ));
  let total = 0;
  for (;;) {
    if (total === buf.length) {
      if (total >= cap) return undefined;
      const bigger = Buffer.allocUnsafe(Math.min(cap, Math.max(buf.length * 2, FIRST_READ)));
      buf.copy(bigger, 0, 0, total);
      buf = bigger;
    }
    const n = readSync(fd, buf, total, buf.length - total, null);
    if (n === 0) return buf.subarray(0, total);
    total += n;
    if (total > limit) return undefined;
  }
}
