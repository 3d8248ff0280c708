/**
 * Reading and moving queue files: the operations the queue tools and the
 * queue manager share. Ownership moves by rename; a file is in exactly one
 * queue directory. A file that does not decode goes to corrupt/ with a
 * logged warning and is never delivered.
 */
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, constants as fsc } from "node:fs";
import { appendFully } from "../../util/durable-file.ts";
import { join } from "node:path";
import { log } from "../../util/log.ts";
import { fsyncDirectory } from "../../util/durable-file.ts";
import { CorruptQueueFileError, decodeQueueFile, encodeDoneRecord, type QueueEnvelope, type QueueFile } from "./format.ts";
import { isQueueId, type MessageQueue } from "./names.ts";

export function queueFilePath(queueDirectory: string, queue: string, id: string): string {
  return join(queueDirectory, queue, id);
}

/** Queue IDs in one queue directory (temporary and foreign names are skipped). */
export function listQueue(queueDirectory: string, queue: string): string[] {
  try {
    return readdirSync(join(queueDirectory, queue)).filter(isQueueId);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

export function readQueueFile(path: string): QueueFile {
  return decodeQueueFile(readFileSync(path));
}

/** Which queue holds `id`, searching the message queues in mailq order. */
export function findQueueFile(queueDirectory: string, id: string, queues: readonly string[]): string | undefined {
  if (!isQueueId(id)) return undefined;
  return queues.find((q) => existsSync(join(queueDirectory, q, id)));
}

/** Moves a file between queue directories (same file system; atomic). */
export function moveQueueFile(queueDirectory: string, id: string, from: string, to: MessageQueue | "corrupt"): void {
  renameSync(join(queueDirectory, from, id), join(queueDirectory, to, id));
  fsyncDirectory(join(queueDirectory, to));
}

/** Moves a file that failed to decode to corrupt/ and logs why. */
export function quarantine(queueDirectory: string, queue: string, id: string, err: CorruptQueueFileError | Error): void {
  log.warn(`${id}: moving corrupt queue file ${queue}/${id} to corrupt/: ${err.message}`);
  try {
    moveQueueFile(queueDirectory, id, queue, "corrupt");
  } catch (moveErr) {
    log.error(`${id}: cannot move ${queue}/${id} to corrupt/: ${(moveErr as Error).message}`);
  }
}

/** Reads `queue/id`; a corrupt file is quarantined and undefined returned. */
export function loadQueueFile(queueDirectory: string, queue: string, id: string): QueueFile | undefined {
  try {
    return readQueueFile(join(queueDirectory, queue, id));
  } catch (err) {
    if (err instanceof CorruptQueueFileError) {
      quarantine(queueDirectory, queue, id, err);
      return undefined;
    }
    throw err;
  }
}

/**
 * The envelope of a queue file, without its content (loadQueueFile's rules): the queue manager keeps one per
 * message in active/ (up to qmgr_message_active_limit of them), so a message's bytes are not held there for
 * the length of its delivery.
 */
export function loadQueueEnvelope(queueDirectory: string, queue: string, id: string): QueueEnvelope | undefined {
  const file = loadQueueFile(queueDirectory, queue, id);
  if (!file) return undefined;
  const { content, ...envelope } = file;
  return { ...envelope, size: content.length };
}

/** Appends a state record to a queue file and fsyncs it. */
export function appendStateRecord(path: string, record: string): void {
  const fd = openSync(path, fsc.O_WRONLY | fsc.O_APPEND);
  try {
    appendFully(fd, record);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Durably records that recipient `index` is finished (an appended D record). */
export function markRecipientDone(path: string, index: number): void {
  appendStateRecord(path, encodeDoneRecord(index));
}

