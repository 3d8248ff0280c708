/**
 * When smtpd collects all of its garbage (issue 16, bench/README.md "Issue 16
 * (session 8)"). Besides a young-generation collection every 50 accepted
 * messages (util/young-garbage.ts), a full collection, with the allocator's
 * free pages given back, when a service's last session ends, at most once
 * per IDLE_COLLECTION_INTERVAL_MS: the runtime's own comes only seconds
 * later, while the queue manager and the local service are still delivering
 * the burst, which is when the whole system's peak is reached. One costs
 * 10-30 ms of CPU; a server whose sessions come one at a time pays it at
 * most once per interval.
 *
 * Runs in smtpd as mail_owner; takes no input.
 */
export const IDLE_COLLECTION_INTERVAL_MS = 10_000;

let lastIdleCollection = Number.NEGATIVE_INFINITY;

/** Called when a service of this process serves no session any more. */
export function sessionsEnded(now = performance.now()): void {
  if (now - lastIdleCollection < IDLE_COLLECTION_INTERVAL_MS) return;
  lastIdleCollection = now;
  Bun.gc(true);
}
