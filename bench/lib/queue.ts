/**
 * Counting what a mail system still holds in its queue (maildrop, incoming,
 * active, deferred, hold; Postfix hashes deferred/ into subdirectories), so a
 * throughput scenario starts each run with an empty queue.
 *
 * Runs as root (Postfix's queue directories are 0700 postfix).
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";

const QUEUES = ["maildrop", "incoming", "active", "deferred", "hold"];

export function queuedCount(queueDirectory: string): number {
  return queuedIn(queueDirectory, QUEUES);
}

/** The files below the named queues ("deferred", ...), subdirectories included. */
export function queuedIn(queueDirectory: string, queues: readonly string[]): number {
  let n = 0;
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else n++;
    }
  };
  for (const q of queues) walk(join(queueDirectory, q));
  return n;
}
