/**
 * The queue as mailq and `postqueue -j` show it: one entry per queue file in
 * Postfix's scan order (maildrop, active, incoming, deferred, hold), each with
 * its sender, the recipients still to be delivered, and the latest defer
 * reason of each. Used by postqueue, mailq and sendmail -bp, and meant for a
 * showq service that lists the queue for users who cannot read it.
 *
 * Runs as whoever reads the queue directly: root, mail_owner, or the owner of
 * an unprivileged queue. Trusts no queue file: files are opened without
 * following symbolic links; a file that does not decode is reported and
 * skipped (listing changes nothing, so it is not moved to corrupt/); a file
 * that vanished between listing and opening (delivered, postsuper) is
 * skipped silently.
 *
 * Within one directory, entries come in queue-ID order (Postfix shows
 * directory order, which is arbitrary). message_size is the size SMTP would
 * send (Postfix's measure, see smtpMessageSize), for maildrop files too
 * (Postfix shows their file size there).
 */
import { join } from "node:path";
import { decodeQueueFile, type QueueFile } from "./format.ts";
import { readDeliveryLog } from "./delivery-log.ts";
import { listQueue } from "./store.ts";
import { readQueueFileNoFollow } from "./safe-read.ts";
import { MESSAGE_QUEUES, type MessageQueue } from "./names.ts";

export interface ListedRecipient {
  address: string;
  /** The latest defer reason; "" when there is none. */
  reason: string;
}

export interface ListedMessage {
  queueName: MessageQueue;
  queueId: string;
  /** Seconds since the epoch. */
  arrivalTime: number;
  /** Bytes of header and body, counting CRLF line ends. */
  messageSize: number;
  forcedExpire: boolean;
  /** "" is the null sender. */
  sender: string;
  recipients: ListedRecipient[];
}

export interface ListingProblem {
  queueName: MessageQueue;
  queueId: string;
  message: string;
}

/**
 * Postfix's message_size: the bytes SMTP sends for the content, every line
 * ending in CRLF (a last line without its LF gets one). Postfix's own figure
 * is its record encoding, which is this exactly for lines under 128 bytes
 * and one more for each longer line.
 */
export function smtpMessageSize(content: Uint8Array): number {
  let size = content.length;
  for (let i = 0; i < content.length; i++) if (content[i] === 10) size++;
  if (content.length > 0 && content[content.length - 1] !== 10) size += 2;
  return size;
}

/**
 * Open recipients in Postfix's order: first those named in the defer log
 * (in the order the log first names them, each with its latest reason), then
 * the others in queue-file order, without a reason. Finished recipients are
 * left out, also when an older attempt logged a reason for them.
 */
export function openRecipients(file: QueueFile, deferLog: ReadonlyArray<{ recipient: string; reason: string }>): ListedRecipient[] {
  const open = file.recipients.filter((r) => !r.done);
  const openAddresses = new Set(open.map((r) => r.address));
  const latest = new Map<string, string>();
  for (const entry of deferLog) {
    if (openAddresses.has(entry.recipient)) latest.set(entry.recipient, entry.reason);
  }
  const out: ListedRecipient[] = [...latest].map(([address, reason]) => ({ address, reason }));
  for (const r of open) if (!latest.has(r.address)) out.push({ address: r.address, reason: "" });
  return out;
}

/** One queue file as listed; undefined when it vanished. Throws when it cannot be read or decoded. */
export function listQueueFile(queueDirectory: string, queueName: MessageQueue, queueId: string): ListedMessage | undefined {
  const bytes = readQueueFileNoFollow(join(queueDirectory, queueName, queueId));
  if (!bytes) return undefined;
  const file = decodeQueueFile(bytes);
  return {
    queueName,
    queueId,
    arrivalTime: Math.floor(file.arrivalTime / 1000),
    messageSize: smtpMessageSize(file.content),
    forcedExpire: file.attributes.expire === "yes",
    sender: file.sender,
    recipients: openRecipients(file, readDeliveryLog(queueDirectory, "defer", queueId)),
  };
}

/** Every queue file, in mailq's order. Problems (unreadable or corrupt files) go to `onProblem`. */
export function* scanQueue(queueDirectory: string, onProblem: (p: ListingProblem) => void): Generator<ListedMessage> {
  for (const queueName of MESSAGE_QUEUES) {
    for (const queueId of listQueue(queueDirectory, queueName).sort()) {
      let entry: ListedMessage | undefined;
      try {
        entry = listQueueFile(queueDirectory, queueName, queueId);
      } catch (err) {
        onProblem({ queueName, queueId, message: (err as Error).message });
        continue;
      }
      if (entry) yield entry;
    }
  }
}
