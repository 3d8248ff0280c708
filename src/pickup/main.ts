/**
 * The pickup role: `postern pickup [-c DIR]` is the daemon the master
 * starts; it takes sendmail's files from maildrop/ as they appear (fs.watch)
 * and at least once a minute. `postern pickup --once [-c DIR]` runs one pass
 * and exits 0: how tests (and an administrator without a running daemon)
 * move submissions into the queue.
 *
 * Both drop to mail_owner before reading maildrop/ (in unprivileged mode
 * they run as the invoking user).
 */
import { watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import { log } from "../util/log.ts";
import { startDaemon } from "../daemon/skeleton.ts";
import { pickupOnce } from "./pickup.ts";

const POLL_MS = 60_000;

export async function main(args: string[]): Promise<number> {
  const once = args.includes("--once");
  const ctx = await startDaemon(
    args.filter((a) => a !== "--once"),
    { role: "pickup" },
  );
  if (once) {
    await pickupOnce(ctx.config);
    log.close();
    return 0;
  }
  // one pass at a time, and one pass for a burst of changes; a change during a pass asks for another
  let scheduled = false;
  let running: Promise<unknown> | undefined;
  let again = false;
  const pass = async () => {
    scheduled = false;
    if (running) {
      again = true;
      return;
    }
    if (ctx.isStopping()) return;
    try {
      running = pickupOnce(ctx.config, ctx.isStopping);
      await running;
    } catch (err) {
      log.error(`pickup pass failed: ${(err as Error).message}`);
    } finally {
      running = undefined;
    }
    if (again) {
      again = false;
      schedule();
    }
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => void pass());
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(join(ctx.config.str("queue_directory"), "maildrop"), schedule);
    watcher.on("error", (err) => log.warn(`watching maildrop/ failed: ${err.message}; scanning every ${POLL_MS / 1000}s`));
  } catch (err) {
    log.warn(`cannot watch maildrop/: ${(err as Error).message}; scanning every ${POLL_MS / 1000}s`);
  }
  const timer = setInterval(schedule, POLL_MS);
  schedule();
  await ctx.stopped;
  watcher?.close();
  clearInterval(timer);
  // a pass stops after the file it is at
  await running?.catch(() => {});
  log.info("stopped");
  return 0;
}
