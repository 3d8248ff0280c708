/**
 * Forced expiration (postsuper -e/-f): an `X <time>` record appended to the
 * queue file, read back as the attribute expire=yes; the queue manager
 * returns the message to its sender at the next delivery attempt
 * (docs/queue-file.md, "Forced expiration").
 *
 * Runs as root or the queue's owner; the file is opened without following
 * symbolic links, and a file that does not decode is left alone.
 */
import { decodeQueueFile, encodeExpireRecord } from "./format.ts";
import { appendRecordNoFollow, readQueueFileNoFollow } from "./safe-read.ts";

export type ExpireOutcome = "expired" | "already" | "gone";

/** Marks the file for expiry unless it already is. Throws when the file cannot be read, decoded or written. */
export function forceExpire(path: string, time = Date.now()): ExpireOutcome {
  const bytes = readQueueFileNoFollow(path);
  if (!bytes) return "gone";
  if (decodeQueueFile(bytes).attributes.expire === "yes") return "already";
  return appendRecordNoFollow(path, encodeExpireRecord(time)) ? "expired" : "gone";
}
