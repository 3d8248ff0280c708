/**
 * Reading and moving queue files: the operations the queue tools and the
 * queue manager share. Ownership moves by rename; a file is in exactly one
 * queue directory. A file that does not decode goes to corrupt/ with a
 * logged warning and is never delivered.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, opendirSync, openSync, readdirSync, readFileSync, readSync, renameSync, constants as fsc } from "node:fs";
import { appendFully } from "../../util/durable-file.ts";
import { join } from "node:path";
import { log } from "../../util/log.ts";
import { fsyncDirectory } from "../../util/durable-file.ts";
import { CorruptQueueFileError, decodeQueueEnvelope, decodeQueueFile, encodeDoneRecord, QUEUE_HEAD_READ, type QueueEnvelope, type QueueFile } from "./format.ts";
import { isQueueId, type MessageQueue } from "./names.ts";

export function queueFilePath(queueDirectory: string, queue: string, id: string): string {
  return join(queueDirectory, queue, id);
}

/**
 * The queues whose files wait for the queue manager. While one of them holds a queue file the
 * queue manager runs; otherwise the master starts it on demand (src/master/on-demand.ts) and it
 * leaves after max_idle (src/qmgr/main.ts): both ask queueManagerHasWork().
 */
export const QMGR_QUEUES = ["incoming", "active", "deferred"] as const;

/**
 * Whether the directory holds an entry whose name `wanted` accepts (any, by default). Reads names
 * only, up to the first such one; opens no file in it and follows nothing.
 */
export function directoryHolds(dir: string, wanted: (name: string) => boolean = () => true): boolean {
  const d = opendirSync(dir);
  try {
    for (let entry = d.readSync(); entry !== null; entry = d.readSync()) if (wanted(entry.name)) return true;
    return false;
  } finally {
    d.closeSync();
  }
}

/** Whether incoming/, active/ or deferred/ holds a queue file (a writer's temporary file does not count). */
export function queueManagerHasWork(queueDirectory: string): boolean {
  return QMGR_QUEUES.some((queue) => {
    try {
      return directoryHolds(join(queueDirectory, queue), isQueueId);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    }
  });
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

/** `read(queue/id)`; a corrupt file is quarantined and undefined returned. */
function loadOrQuarantine<T>(queueDirectory: string, queue: string, id: string, read: (path: string) => T): T | undefined {
  try {
    return read(join(queueDirectory, queue, id));
  } catch (err) {
    if (err instanceof CorruptQueueFileError) {
      quarantine(queueDirectory, queue, id, err);
      return undefined;
    }
    throw err;
  }
}

/** Reads `queue/id`; a corrupt file is quarantined and undefined returned. */
export function loadQueueFile(queueDirectory: string, queue: string, id: string): QueueFile | undefined {
  return loadOrQuarantine(queueDirectory, queue, id, readQueueFile);
}

/** A queue file's envelope, without reading its content (decodeQueueEnvelope): a few reads at known offsets. */
export function readQueueEnvelope(path: string): QueueEnvelope {
  return readQueueEnvelopeAndSmallContent(path).envelope;
}

/** What readQueueEnvelopeAndSmallContent found: the envelope, and the content of a file small enough to be read whole. */
export interface EnvelopeRead {
  envelope: QueueEnvelope;
  /** The message (headers, blank line, body), when the file was read whole (at most QUEUE_HEAD_READ bytes). */
  content?: Uint8Array;
}

/**
 * readQueueEnvelope, which reads a small file (most) whole in one call: the content of such a file comes
 * along at no cost (decodeQueueFile's rules, the same refusals), for a caller that would read it again.
 */
export function readQueueEnvelopeAndSmallContent(path: string): EnvelopeRead {
  const fd = openSync(path, fsc.O_RDONLY);
  try {
    const read = (position: number, length: number): Buffer => {
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const n = readSync(fd, buf, got, length - got, position + got);
        if (n === 0) break;
        got += n;
      }
      return buf.subarray(0, got);
    };
    const size = fstatSync(fd).size;
    if (size > QUEUE_HEAD_READ) return { envelope: decodeQueueEnvelope(read, size) };
    // a small file (most): one read, the end marker and the state records taken from it
    const { content, ...envelope } = decodeQueueFile(read(0, size));
    return { envelope: { ...envelope, size: content.length }, content };
  } finally {
    closeSync(fd);
  }
}

/**
 * The envelope of a queue file, without its content (loadQueueFile's rules: a corrupt file is quarantined):
 * the queue manager keeps one per message in active/ (up to qmgr_message_active_limit of them) and reads no
 * message's content to activate it, so neither its memory nor its reads grow with the message size.
 */
export function loadQueueEnvelope(queueDirectory: string, queue: string, id: string): QueueEnvelope | undefined {
  return loadOrQuarantine(queueDirectory, queue, id, readQueueEnvelope);
}

/** loadQueueEnvelope, with the content of a small file (readQueueEnvelopeAndSmallContent). */
export function loadQueueEnvelopeAndSmallContent(queueDirectory: string, queue: string, id: string): EnvelopeRead | undefined {
  return loadOrQuarantine(queueDirectory, queue, id, readQueueEnvelopeAndSmallContent);
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

