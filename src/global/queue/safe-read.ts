/**
 * Opening queue files for the tools that root may run (mailq, postsuper,
 * postcat) and for root's local delivery service: a queue directory belongs
 * to mail_owner, so a daemon running as mail_owner could plant a symbolic
 * link where a queue file should be, or name any file in a delivery request.
 * These helpers never follow a link and accept only regular files; the
 * delivery service's reader also accepts only a path that is a queue file's
 * (QUEUE/ID under the queue directory) and a file with one link.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, constants as fsc } from "node:fs";
import { relative, resolve, sep } from "node:path";
import { appendFully } from "../../util/durable-file.ts";
import { isQueueId, MESSAGE_QUEUES } from "./names.ts";

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

/**
 * A queue file named in a delivery request, as Postfix's mail_queue_open() and mail_open_ok() take it:
 * the path must be QUEUE/ID under `queueDirectory` (a message queue and a queue ID), the file a regular
 * file with one link, opened without following a link. Throws with the reason otherwise.
 */
export function readRequestedQueueFile(queueDirectory: string, path: string): Buffer {
  const parts = relative(resolve(queueDirectory), resolve(path)).split(sep);
  if (parts.length !== 2 || !(MESSAGE_QUEUES as readonly string[]).includes(parts[0]!) || !isQueueId(parts[1]!)) {
    throw new Error(`not a queue file under ${queueDirectory}`);
  }
  const fd = openNoFollow(path, fsc.O_RDONLY);
  if (fd === undefined) throw new Error("no such queue file");
  try {
    if (fstatSync(fd).nlink !== 1) throw new Error("the file has more than one link");
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}
