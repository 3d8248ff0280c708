/**
 * The wait of a throughput run: poll what has arrived (a Maildir's files, a
 * sink's count) every POLL_MS until the run is done, sampling the daemons'
 * CPU (TreeCpuTracker) and the peak PSS of their tree as it goes, and give
 * up when nothing new has arrived for the stall time.
 *
 * Runs in the harness, reading /proc and the counts its callers give.
 */
import type { TreeCpuTracker } from "./cpu.ts";
import { treeMemory } from "./pss.ts";

const POLL_MS = 20;
const CPU_SAMPLE_MS = 250;
/** A run gives up when nothing new arrives for this long. */
export const STALL_MS = 60_000;

export interface RunWatch {
  /** The master of the tree to sample. */
  master: number;
  tracker: TreeCpuTracker;
  /** When the run's clock started (performance.now()). */
  t0: number;
  pssSampleMs: number;
  /** What has arrived so far. */
  count(): number;
  /** Whether the run is complete, given what has arrived. */
  done(count: number): boolean;
  /** Why the run ends now without completing (the load generator failed), checked once it is not done. */
  failed?(): string | undefined;
  /** Why the run stalled, given what has arrived and the seconds since t0. */
  stalled(count: number, seconds: number): string;
  /** Called once when the run stalls (stop the load generator). */
  onStall?(): void;
}

export interface Watched {
  /** What had arrived when the wait ended. */
  count: number;
  /** When the wait ended (performance.now()). */
  tEnd: number;
  pssPeakKb: number;
  error?: string;
}

export async function watchRun(w: RunWatch): Promise<Watched> {
  let seen = 0;
  let lastProgress = w.t0;
  let lastCpu = w.t0;
  let lastPss = w.t0 - w.pssSampleMs;
  let pssPeakKb = 0;
  let error: string | undefined;
  for (;;) {
    await Bun.sleep(POLL_MS);
    const now = performance.now();
    const count = w.count();
    if (count > seen) {
      seen = count;
      lastProgress = now;
    }
    if (now - lastCpu >= CPU_SAMPLE_MS) {
      w.tracker.sample();
      lastCpu = now;
    }
    if (now - lastPss >= w.pssSampleMs) {
      pssPeakKb = Math.max(pssPeakKb, treeMemory(w.master).pssKb);
      lastPss = now;
    }
    if (w.done(seen)) break;
    error = w.failed?.();
    if (error) break;
    if (now - lastProgress > STALL_MS) {
      error = w.stalled(seen, (now - w.t0) / 1000);
      w.onStall?.();
      break;
    }
  }
  return { count: seen, tEnd: performance.now(), pssPeakKb, ...(error ? { error } : {}) };
}
