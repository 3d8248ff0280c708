/**
 * When smtpd collects its garbage (issue 16, bench/README.md "Issue 16
 * (session 8)"). JSC collects its young objects each time about 8 MiB were
 * allocated; under a burst of SMTP sessions that is most of smtpd's peak
 * memory above its live data (message contents, queue file images, the
 * session's promises), and the allocator keeps the pages it grew to. Two
 * cheaper points than the runtime's own:
 *
 * - a young-generation collection after every YOUNG_COLLECTION_EVERY
 *   accepted messages (about 1-3 ms each, a few hundredths of a
 *   millisecond per message), so the young garbage stays near a few MB;
 * - a full collection, with the allocator's free pages given back, when the
 *   last session ends, at most once per IDLE_COLLECTION_INTERVAL_MS: the
 *   runtime's own comes only seconds later, while the queue manager and the
 *   local service are still delivering the burst (which is when the whole
 *   system's peak is reached).
 *
 * Runs in smtpd (and sendmail -bs) as mail_owner; takes no input.
 */
import { edenGC } from "bun:jsc";

export const YOUNG_COLLECTION_EVERY = 50;
export const IDLE_COLLECTION_INTERVAL_MS = 10_000;

let accepted = 0;
let lastIdleCollection = Number.NEGATIVE_INFINITY;

/** Called once per message accepted into the queue. */
export function messageAccepted(): void {
  if (++accepted % YOUNG_COLLECTION_EVERY === 0) edenGC();
}

/** Called when the process serves no session any more. */
export function sessionsEnded(now = performance.now()): void {
  if (now - lastIdleCollection < IDLE_COLLECTION_INTERVAL_MS) return;
  lastIdleCollection = now;
  Bun.gc(true);
}
