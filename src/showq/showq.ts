/**
 * The queue listing the showq service answers with: every message's
 * listing fields (src/global/queue/listing.ts), at most SHOWQ_LIMIT of them.
 * Only the listing's fields leave the process, never message content.
 *
 * Runs in the showq service as mail_owner; reads queue files, which it
 * trusts no more than the listing code does.
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
