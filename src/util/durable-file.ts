/**
 * Writes that either put every byte on disk or fail, and durable file
 * replacement.
 *
 * write(2) may write fewer bytes than asked (a full file system, a quota, a
 * file size limit: the next call then fails with ENOSPC, EDQUOT or EFBIG),
 * and Bun returns that short count rather than throwing. Every write to a
 * file in postern goes through `writeFully`, `writeFullyAsync` or
 * `appendFully`, which loop until all bytes are written and throw otherwise;
 * a write that makes no progress is an error (EIO), never an endless loop.
 * `appendFully` also cuts a torn append off again, so a record that did not
 * fit never sits half-written in front of the next one.
 *
 * No mail knowledge; used by every role, as whatever user runs it.
 */
import { closeSync, fstatSync, fsync, fsyncSync, ftruncateSync, openSync, renameSync, unlinkSync, writeSync, constants as fsc } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** One write(2): returns the number of bytes written, as node:fs writeSync does. */
export type SyncWriter = (fd: number, data: Uint8Array, offset: number, length: number, position: number | null) => number;

/** One asynchronous write, as FileHandle.write does. */
export type AsyncWriter = (handle: FileHandle, data: Uint8Array, offset: number, length: number, position: number | null) => Promise<number>;

const systemWrite: SyncWriter = (fd, data, offset, length, position) => writeSync(fd, data, offset, length, position);
const handleWrite: AsyncWriter = async (handle, data, offset, length, position) => (await handle.write(data, offset, length, position)).bytesWritten;

function bytesOf(data: string | Uint8Array): Uint8Array {
  return typeof data === "string" ? Buffer.from(data, "utf8") : data;
}

function noProgress(written: number, total: number): NodeJS.ErrnoException {
  return Object.assign(new Error(`EIO: short write, ${written} of ${total} bytes written`), { code: "EIO" });
}

/**
 * Writes all of `data` at `position` (null: the file offset, or the end with
 * O_APPEND); throws when that is impossible.
 */
export function writeFully(fd: number, data: string | Uint8Array, position: number | null = null, write: SyncWriter = systemWrite): void {
  const bytes = bytesOf(data);
  let off = 0;
  while (off < bytes.length) {
    const n = write(fd, bytes, off, bytes.length - off, position === null ? null : position + off);
    if (!(n > 0)) throw noProgress(off, bytes.length);
    off += n;
  }
}

/** The asynchronous form, for daemons that serve many clients at once. */
export async function writeFullyAsync(handle: FileHandle, data: string | Uint8Array, position: number | null = null, write: AsyncWriter = handleWrite): Promise<void> {
  const bytes = bytesOf(data);
  let off = 0;
  while (off < bytes.length) {
    const n = await write(handle, bytes, off, bytes.length - off, position === null ? null : position + off);
    if (!(n > 0)) throw noProgress(off, bytes.length);
    off += n;
  }
}

/**
 * Appends all of `data` to a file opened with O_APPEND; when that fails, the
 * part that was written is cut off again (best effort) and the error thrown.
 * XXX: the cut is made from the file's size, so a record that another
 * process appended between the failed write and the cut (postsuper's X
 * beside the queue manager's D, on a full disk) goes too: that recipient is
 * tried again, a duplicate rather than a loss.
 */
export function appendFully(fd: number, data: string | Uint8Array, write: SyncWriter = systemWrite): void {
  const bytes = bytesOf(data);
  let off = 0;
  try {
    while (off < bytes.length) {
      const n = write(fd, bytes, off, bytes.length - off, null);
      if (!(n > 0)) throw noProgress(off, bytes.length);
      off += n;
    }
  } catch (err) {
    if (off > 0) {
      try {
        ftruncateSync(fd, Math.max(0, fstatSync(fd).size - off));
      } catch {}
    }
    throw err;
  }
}

/**
 * fsync(2) in the runtime's thread pool, so the event loop serves others
 * while the disk works (the daemons' queue-file commit, the local worker's
 * Maildir file).
 */
export function fsyncInPool(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
}

/** fsync a directory so a rename or create in it survives a crash. */
export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function replaceFileDurably(path: string, data: string | Uint8Array, mode = 0o644): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode);
  try {
    writeFully(fd, data);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {}
    try {
      unlinkSync(tmp);
    } catch {}
    throw err;
  }
  fsyncDirectory(dir);
}
