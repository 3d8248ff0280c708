/**
 * Durable file replacement: write a temporary file beside the target, fsync
 * it, rename it into place, fsync the directory. After a crash the target
 * holds either the old or the new content, never a mix.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync, constants as fsc } from "node:fs";
import { basename, dirname, join } from "node:path";

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
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
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
