/**
 * A young-generation collection after every YOUNG_COLLECTION_EVERY units of
 * work (a message accepted, a message's round finished, a delivery made).
 * JSC collects young objects only once about 8 MiB were allocated, and the
 * allocator keeps the pages a process grew to; under a burst of mail that
 * budget is most of a daemon's peak memory above its live data. One eden
 * collection costs 1-3 ms, a few hundredths of a millisecond per unit here
 * (issue 16, bench/README.md "Issue 16 (session 8)"). Each unit also
 * tells the idle trimmer (src/util/exe-trim.ts) that work is going on.
 *
 * No mail knowledge; runs in smtpd, the queue manager, the local service and
 * its workers, as whatever user runs them; takes no input.
 */
import { edenGC } from "bun:jsc";
import { idleTrimmer } from "./exe-trim.ts";

export const YOUNG_COLLECTION_EVERY = 50;

let done = 0;

/** Counts one unit of work; every YOUNG_COLLECTION_EVERY-th collects the young generation. */
export function workDone(): void {
  if (++done % YOUNG_COLLECTION_EVERY === 0) edenGC();
  // and once the work stops, the executable's pages it no longer uses go (src/util/exe-trim.ts)
  idleTrimmer.workDone();
}
