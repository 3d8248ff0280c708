/**
 * The pickup role: `postern pickup [-c DIR]` is the daemon the master
 * starts when maildrop/ holds an entry; it takes sendmail's files from
 * maildrop/ as they appear (fs.watch) and at least once a minute (its
 * wake-up in the service table), and exits after max_idle without finding
 * any (src/daemon/idle-exit.ts). `postern pickup --once [-c DIR]` runs one pass
 * and exits 0: how tests (and an administrator without a running daemon)
 * move submissions into the queue.
 *
 * Both read the DKIM keys ($dkim_key_directory) as root, then drop to
 * mail_owner before reading maildrop/ (in unprivileged mode
 * they run as the invoking user).
 */
import { join } from "node:path";
import { log } from "../util/log.ts";
import { startDaemon } from "../daemon/skeleton.ts";
import { WakeUp } from "../daemon/wake-up.ts";
import { SERVICE_TABLE } from "../global/system/service-table.ts";
import { pickupOnce } from "./pickup.ts";
import { isTemporaryName } from "./maildrop-entry.ts";
import { loadDkimKeys, type DkimKeyring } from "../global/dkim/keys.ts";

export async function main(args: string[]): Promise<number> {
  const once = args.includes("--once");
  let keys: DkimKeyring | undefined;
  const ctx = await startDaemon(
    args.filter((a) => a !== "--once"),
    {
      role: "pickup",
      jit: "reluctant",
      // DKIM keys are root's: read before the drop, kept for the process's life
      beforeDrop(config) {
        keys = loadDkimKeys(config.str("dkim_key_directory"), (t) => log.warn(t));
      },
    },
  );
  if (once) {
    await pickupOnce(ctx.config, undefined, keys);
    log.close();
    return 0;
  }
  // Files this process queued and removed: the watch's report of their close needs no pass.
  // Bounded: a report that never comes (the watch failed) cannot make it grow.
  const removedByUs = new Set<string>();
  const removed = (name: string) => {
    if (removedByUs.size >= 1000) removedByUs.clear();
    removedByUs.add(name);
  };
  // started on demand: a pass that found entries is work; max_idle after the last one, it leaves
  const pass = async () => {
    ctx.activity?.begin();
    let found = true;
    try {
      const stats = await pickupOnce(ctx.config, ctx.isStopping, keys, removed);
      found = stats.queued + stats.corrupt + stats.removed + stats.kept > 0;
    } finally {
      ctx.activity?.end(found);
    }
  };
  // one pass at a time, one pass for a burst of changes, another for a change during a pass
  const { watch, pollSeconds } = SERVICE_TABLE.pickup.wakeUp;
  const wakeUp = new WakeUp({
    watch: join(ctx.config.str("queue_directory"), watch),
    pollMs: pollSeconds * 1000,
    // Only files renamed in (sendmail's and postdrop's way, postsuper -r's) or written in place
    // wake pickup: sendmail's temporary file being made and written, and pickup's own removals,
    // wake nothing (the poll finds anything else within a minute). sendmail closes its file
    // after the rename: that close needs no pass once this process has queued the file.
    arrivals: { closeWrite: true },
    named: (name) => !isTemporaryName(name) && !removedByUs.delete(name),
    pass: () => (ctx.isStopping() ? undefined : pass()),
    failed: (err) => log.error(`pickup pass failed: ${err.message}`),
  });
  wakeUp.start();
  await ctx.stopped;
  // a pass stops after the file it is at
  await wakeUp.stop();
  if (ctx.stoppedBy() !== "idle") log.info("stopped");
  return 0;
}
