/**
 * Postfix's showq service: the queue listing for users who may not read the
 * queue directories themselves (mailq without set-gid). The queue manager
 * runs as mail_owner and can read them; postqueue checks
 * authorized_mailq_users before it asks. Only the listing's fields leave the
 * process, never message content.
 */
import { log } from "../util/log.ts";
import type { Config } from "../global/config/config.ts";
import { scanQueue, type ListedMessage } from "../global/queue/listing.ts";

/** At most this many entries in one answer (a bounded response; mailq says how many were left out). */
export const SHOWQ_LIMIT = 100_000;

export function showQueue(config: Config): { entries: ListedMessage[]; truncated: boolean } {
  const entries: ListedMessage[] = [];
  let truncated = false;
  for (const entry of scanQueue(config.str("queue_directory"), (p) => log.warn(`showq: ${p.queueName}/${p.queueId}: ${p.message}`))) {
    if (entries.length >= SHOWQ_LIMIT) {
      truncated = true;
      break;
    }
    entries.push(entry);
  }
  return { entries, truncated };
}
