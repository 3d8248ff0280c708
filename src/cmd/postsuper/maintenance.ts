/**
 * postsuper's housekeeping, done before any message operation:
 *
 * -p  removes temporary files (`t.<pid>.<random>`, left by a crash in the
 *     middle of a commit): those older than a day, and those older than
 *     five minutes whose writer (the pid in the name) no longer runs. A
 *     writer holds its temporary file only while it writes, fsyncs and
 *     renames a message it already has in memory, so that is a crash, not
 *     a slow sendmail; and a commit whose file vanished fails (no rename),
 *     it never acknowledges anything. `postern start` and `postern check`
 *     run `postsuper -p -v`, as Postfix's start and check run postsuper.
 * -s  checks the structure: subdirectories (queue files found in one move up
 *     into the queue directory), objects that are not regular files
 *     (removed), names that are not queue IDs and files that do not decode
 *     (moved to corrupt/ with a warning), and queue IDs that no longer match
 *     the file's inode number, as after restoring a queue from a backup
 *     (renamed, with their defer and bounce logs, so IDs stay unique).
 *
 * Runs as root (dropped to the queue's owner) or the owner of an
 * unprivileged queue. Nothing in a queue directory is trusted: symbolic
 * links are never followed, and a file that vanishes meanwhile is skipped.
 * Best run while the mail system is stopped, as with Postfix; renaming a
 * message while the queue manager holds it in active/ confuses the queue
 * manager's bookkeeping (it happens only after a restore).
 */
import { existsSync, lstatSync, readdirSync, renameSync, rmdirSync, unlinkSync, type Stats } from "node:fs";
import { join } from "node:path";
import { log } from "../../util/log.ts";
import { fsyncDirectory } from "../../util/durable-file.ts";
import { decodeQueueFile } from "../../global/queue/format.ts";
import { isQueueId, MESSAGE_QUEUES, type MessageQueue } from "../../global/queue/names.ts";
import { readQueueFileNoFollow } from "../../global/queue/safe-read.ts";

/** Temporary files younger than this may still be written. */
export const MAX_TEMP_AGE_MS = 24 * 60 * 60 * 1000;
/** ... unless their writer is gone and they are older than this (a writer in another pid namespace may share the queue). */
export const CRASHED_TEMP_AGE_MS = 5 * 60 * 1000;

/** False only when the process named in `t.<pid>.<random>` certainly does not exist (ESRCH). */
function writerMayRun(name: string): boolean {
  const pid = Number(/^t\.(\d{1,10})\./.exec(name)?.[1]);
  if (!Number.isSafeInteger(pid) || pid <= 1) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/** A temporary file that no commit will finish any more. */
export function isStaleTemporaryFile(name: string, mtimeMs: number, now: number): boolean {
  const age = now - mtimeMs;
  return age > MAX_TEMP_AGE_MS || (age > CRASHED_TEMP_AGE_MS && !writerMayRun(name));
}

export type MaintainedQueue = MessageQueue | "defer" | "bounce" | "trace";
export const LOG_QUEUES = ["defer", "bounce", "trace"] as const;
export const ALL_MAINTAINED: MaintainedQueue[] = [...MESSAGE_QUEUES, ...LOG_QUEUES];

function isMessageQueue(q: MaintainedQueue): q is MessageQueue {
  return (MESSAGE_QUEUES as readonly string[]).includes(q);
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** -p: removes old temporary files; returns how many. */
export function purgeTemporaryFiles(queueDirectory: string, queues: readonly MaintainedQueue[], verbose: boolean, now = Date.now()): number {
  let removed = 0;
  for (const queue of queues) {
    if (!isMessageQueue(queue)) continue;
    const dir = join(queueDirectory, queue);
    for (const name of entries(dir)) {
      if (!name.startsWith("t.")) continue;
      const path = join(dir, name);
      const st = lstatOrUndefined(path);
      if (!st?.isFile() || !isStaleTemporaryFile(name, st.mtimeMs, now)) continue;
      try {
        unlinkSync(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") log.warn(`cannot remove ${path}: ${(err as Error).message}`);
        continue;
      }
      removed++;
      if (verbose) log.info(`removed stale temporary file ${queue}/${name} (left by a crashed writer)`);
    }
  }
  return removed;
}

/** Moves a file to corrupt/ under a name no other file there has. */
function moveToCorrupt(queueDirectory: string, from: string, name: string): void {
  const corrupt = join(queueDirectory, "corrupt");
  let target = join(corrupt, name);
  for (let n = 1; existsSync(target); n++) target = join(corrupt, `${name}.${n}`);
  renameSync(from, target);
  fsyncDirectory(corrupt);
}

function inodeHex(st: Stats): string {
  return BigInt(st.ino).toString(16).toUpperCase();
}

interface StructureResult {
  /** Messages renamed to match their inode number. */
  renamed: number;
}

/** -s: the structure check described in the file header. */
export function checkStructure(queueDirectory: string, queues: readonly MaintainedQueue[], verbose: boolean): StructureResult {
  const result: StructureResult = { renamed: 0 };
  for (const queue of queues) {
    const dir = join(queueDirectory, queue);
    // subdirectories first, so that the files moved out of them are checked below
    for (const name of entries(dir)) if (lstatOrUndefined(join(dir, name))?.isDirectory()) flattenSubdirectory(queueDirectory, queue, name);
    for (const name of entries(dir)) {
      const path = join(dir, name);
      const st = lstatOrUndefined(path);
      if (!st || st.isDirectory()) continue;
      if (!st.isFile()) {
        removeNonFile(path);
        continue;
      }
      if (name.startsWith("t.")) continue; // a commit in progress, or -p's business
      if (!isMessageQueue(queue)) {
        if (!isQueueId(name)) log.warn(`bogus file name: ${path}`);
        continue;
      }
      if (!isQueueId(name)) {
        quarantine(queueDirectory, path, name, `bad file name ${queue}/${name}`);
        continue;
      }
      if (!checkContent(queueDirectory, queue, name, path)) continue;
      if (name.slice(5) !== inodeHex(st) && renameToInode(queueDirectory, queue, name, st, verbose)) result.renamed++;
    }
  }
  return result;
}

function quarantine(queueDirectory: string, path: string, name: string, why: string): void {
  try {
    moveToCorrupt(queueDirectory, path, name);
    log.warn(`moving ${why} to corrupt/`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") log.warn(`cannot move ${path} to corrupt/: ${(err as Error).message}`);
  }
}

function removeNonFile(path: string): void {
  try {
    unlinkSync(path);
    log.warn(`removed ${path}: not a regular file`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") log.warn(`cannot remove ${path}: ${(err as Error).message}`);
  }
}

/** True when the file decodes (or is gone); a corrupt one goes to corrupt/. */
function checkContent(queueDirectory: string, queue: MessageQueue, id: string, path: string): boolean {
  let bytes: Buffer | undefined;
  try {
    bytes = readQueueFileNoFollow(path);
  } catch (err) {
    log.warn(`cannot read ${queue}/${id}: ${(err as Error).message}`);
    return false;
  }
  if (!bytes) return false;
  try {
    decodeQueueFile(bytes);
    return true;
  } catch (err) {
    quarantine(queueDirectory, path, id, `corrupt queue file ${queue}/${id} (${(err as Error).message})`);
    return false;
  }
}

/** Postfix hashes some queues into subdirectories; postern's are flat: move queue files up, then remove the directory. */
function flattenSubdirectory(queueDirectory: string, queue: MaintainedQueue, sub: string): void {
  const dir = join(queueDirectory, queue, sub);
  for (const name of entries(dir)) {
    const path = join(dir, name);
    const target = join(queueDirectory, queue, name);
    if (!isQueueId(name) || !lstatOrUndefined(path)?.isFile() || existsSync(target)) continue;
    try {
      renameSync(path, target);
      log.warn(`moved misplaced file ${queue}/${sub}/${name} to ${queue}/${name}`);
    } catch (err) {
      log.warn(`cannot move ${path}: ${(err as Error).message}`);
    }
  }
  try {
    rmdirSync(dir);
    log.warn(`removed subdirectory ${queue}/${sub}`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") log.warn(`cannot remove subdirectory ${dir}: ${code === "ENOTEMPTY" ? "it is not empty" : (err as Error).message}`);
  }
}

/** Renames a message whose ID does not name its inode (logs first, so an interrupted run is finished by the next). */
function renameToInode(queueDirectory: string, queue: MessageQueue, id: string, st: Stats, verbose: boolean): boolean {
  const newId = id.slice(0, 5) + inodeHex(st);
  if (!isQueueId(newId) || MESSAGE_QUEUES.some((q) => existsSync(join(queueDirectory, q, newId)))) {
    log.warn(`${queue}/${id}: cannot rename to match its inode number: ${newId} exists`);
    return false;
  }
  try {
    for (const logQueue of LOG_QUEUES) {
      const from = join(queueDirectory, logQueue, id);
      if (existsSync(from)) renameSync(from, join(queueDirectory, logQueue, newId));
    }
    renameSync(join(queueDirectory, queue, id), join(queueDirectory, queue, newId));
    fsyncDirectory(join(queueDirectory, queue));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") log.warn(`${queue}/${id}: cannot rename to ${newId}: ${(err as Error).message}`);
    return false;
  }
  if (verbose) log.info(`renamed ${queue}/${id} as ${queue}/${newId}`);
  return true;
}
