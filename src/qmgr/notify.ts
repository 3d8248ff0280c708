/**
 * Returning delivery status notifications: after each delivery round the
 * bounce/ID log (failed recipients, and delivered ones that asked for
 * NOTIFY=SUCCESS) becomes reports built by src/bounce, committed into
 * incoming/, and the log is removed. A crash between the two may send a
 * report twice, never lose one. Delay notices come from defer/ID once per
 * message, when delay_warning_time has passed. The message a notice returns
 * is read from its queue file only when a notice is built: the queue manager
 * keeps envelopes, not contents (ActiveMessage).
 */
import { unlinkSync } from "node:fs";
import { join } from "node:path";
import { log } from "../util/log.ts";
import type { Config } from "../global/config/config.ts";
import { commitQueueFileSync } from "../global/queue/commit.ts";
import { encodeQueueFile, type QueueFile } from "../global/queue/format.ts";
import { readDeliveryLog, type DeliveryLogEntry } from "../global/queue/delivery-log.ts";
import { buildNotices, type NoticeKind } from "../bounce/notices.ts";

/** The message as a notice returns it, read when a notice is built (may throw: the file is gone or unreadable). */
export type OriginalMessage = () => QueueFile;

/** Builds and commits the reports of one kind; returns how many were queued. */
export function sendNotices(config: Config, queueId: string, readOriginal: OriginalMessage, kind: NoticeKind, entries: DeliveryLogEntry[], now: number): number {
  const queueDir = config.str("queue_directory");
  const tag = `${config.str("syslog_name")}/bounce`;
  const result = buildNotices(kind, { config, queueId, original: readOriginal(), entries, now: new Date(now) });
  for (const line of result.log) log.write(line.severity, line.text, tag);
  for (const notice of result.notices) {
    const id = commitQueueFileSync(join(queueDir, "incoming"), (newId) => encodeQueueFile(notice.queueFile(newId)));
    log.write("info", `${queueId}: ${notice.description}: ${id}`, tag);
  }
  return result.notices.length;
}

/** Turns bounce/ID into failure and success reports, then removes it. */
export function returnToSender(config: Config, queueId: string, original: OriginalMessage, now: number): void {
  const queueDir = config.str("queue_directory");
  const entries = readDeliveryLog(queueDir, "bounce", queueId);
  if (!entries.length) return;
  const failed = entries.filter((e) => e.action === "failed");
  const succeeded = entries.filter((e) => e.action !== "failed");
  if (failed.length) sendNotices(config, queueId, original, "failure", failed, now);
  if (succeeded.length) sendNotices(config, queueId, original, "success", succeeded, now);
  unlinkSync(join(queueDir, "bounce", queueId));
}
