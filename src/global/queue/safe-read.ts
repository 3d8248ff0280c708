/**
 * Opening queue files for the tools that root may run (mailq, postsuper,
 * postcat): a queue directory belongs to mail_owner, so a daemon running as
 * mail_owner could plant a symbolic link where a queue file should be. These
 * helpers never follow one, and accept only regular files.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, constants as fsc } from "node:fs";
import { appendFully } from "../../util/durable-file.ts";

function openNoFollow(path: string, flags: number): number | undefined {
  let fd: number;
  try {
    fd = openSync(path, flags | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    if (code === "ELOOP") throw new Error("not a regular file (a symbolic link)");
    throw err;
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new Error("not a regular file");
  }
  return fd;
}

/** The file's bytes; undefined when it does not exist (any more). */
export function readQueueFileNoFollow(path: string): Buffer | undefined {
  const fd = openNoFollow(path, fsc.O_RDONLY);
  if (fd === undefined) return undefined;
  try {
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Appends `record` durably (O_APPEND, fsync); false when the file does not exist (any more). */
export function appendRecordNoFollow(path: string, record: string): boolean {
  const fd = openNoFollow(path, fsc.O_WRONLY | fsc.O_APPEND);
  if (fd === undefined) return false;
  try {
    appendFully(fd, record);
    fsyncSync(fd);
    return true;
  } finally {
    closeSync(fd);
  }
}
