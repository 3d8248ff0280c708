/**
 * Returning delivery status notifications: after each delivery round the
 * bounce/ID log (failed recipients, and delivered ones that asked for
 * NOTIFY=SUCCESS) becomes a report, committed into incoming/ with the null
 * sender, and the log is removed. A crash between the two may send a report
 * twice, never lose one.
 */
import { unlinkSync } from "node:fs";
import { join } from "node:path";
import { log } from "../util/log.ts";
import type { Config } from "../global/config/config.ts";
import { commitQueueFileSync } from "../global/queue/commit.ts";
import { encodeQueueFile, type QueueFile } from "../global/queue/format.ts";
import { readDeliveryLog, type DeliveryLogEntry } from "../global/queue/delivery-log.ts";

export type NotificationKind = "failure" | "delay" | "success";

export interface Notification {
  sender: "";
  recipients: string[];
  content: Uint8Array;
}

/** Builds a report message (src/global/bounce), or undefined when none is due (NOTIFY=NEVER, a double bounce). */
export interface Notifier {
  build(kind: NotificationKind, input: { config: Config; queueId: string; original: QueueFile; entries: DeliveryLogEntry[]; now: Date }): Notification | undefined;
}

const KIND_TEXT: Record<NotificationKind, string> = {
  failure: "sender non-delivery notification",
  delay: "sender delay notification",
  success: "sender delivery status notification",
};

/** Commits a report into incoming/ and logs it under postfix/bounce; returns its queue ID. */
export function commitNotification(config: Config, queueId: string, kind: NotificationKind, n: Notification): string {
  const queueDir = config.str("queue_directory");
  const id = commitQueueFileSync(join(queueDir, "incoming"), () =>
    encodeQueueFile({ arrivalTime: Date.now(), sender: "", recipients: n.recipients.map((address) => ({ address })), attributes: { origin: "bounce", rewrite_context: "local" }, content: n.content }),
  );
  log.write("info", `${queueId}: ${KIND_TEXT[kind]}: ${id}`, `${config.str("syslog_name")}/bounce`);
  return id;
}

export function returnToSender(config: Config, notifier: Notifier, queueId: string, original: QueueFile): void {
  const queueDir = config.str("queue_directory");
  const entries = readDeliveryLog(queueDir, "bounce", queueId);
  if (!entries.length) return;
  const failed = entries.filter((e) => e.action === "failed");
  const succeeded = entries.filter((e) => e.action !== "failed");
  const now = new Date();
  for (const [kind, list] of [["failure", failed], ["success", succeeded]] as const) {
    if (!list.length) continue;
    const n = notifier.build(kind, { config, queueId, original, entries: list, now });
    if (n) commitNotification(config, queueId, kind, n);
    else if (kind === "failure") log.info(`${queueId}: no ${KIND_TEXT[kind]} sent (not requested, or a bounce of a bounce)`);
  }
  unlinkSync(join(queueDir, "bounce", queueId));
}
