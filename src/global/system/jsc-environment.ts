/**
 * JavaScriptCore's options for each postern process, by role. JSC reads its
 * options (BUN_JSC_NAME=VALUE) from the environment when a process starts
 * and from nowhere else, so the process that starts another one chooses
 * them: `postern start` and `start-fg` for the master, the master for the
 * daemons (childEnvironment), the local service for its workers
 * (workerEnvironment). The values are postern's own, fixed here; no
 * configuration sets them (import_environment and export_environment never
 * pass a BUN_ variable on: child-environment.ts).
 *
 * The rule, measured in bench/README.md ("Issue 16 (session 9): a JIT policy
 * per role"):
 * - smtpd and the queue manager run the relay path's hot loops (the DATA
 *   reader, the SMTP client), so they keep the DFG tier (without it the
 *   1-session relay rate fell 20-28 %, session 8). They lose the FTL tier,
 *   JSC's last: its compilations (on the JIT thread, again and again as code
 *   is recompiled) took 0.1-0.3 ms of CPU per message at 1 session and several
 *   MB of smtpd's peak, and the code it made saved no CPU the runs could show.
 * - The master, pickup, showq, local and its workers run a little code once
 *   per message (src/util/jit.ts keeps them at the reluctant tier-up policy
 *   anyway): no DFG (and so no FTL) tier at all, which takes its compiler's
 *   memory off their peaks.
 * - Nobody gets JSC's marked-block warm-up thread, which faults in 32 blocks
 *   ahead of need as the heap grows (`useWarmUpMarkedBlocks`).
 * Not `useJIT=0` anywhere: bun:ffi (the inotify and lock calls) refuses to
 * work without the JIT.
 *
 * Runs in `postern start`, the master and the local service (root); no input.
 * A process started another way (`postern master` by hand) runs with JSC's
 * defaults, which are correct, only heavier.
 */
import type { DaemonRole } from "./service-table.ts";

const NO_WARM_UP = { BUN_JSC_useWarmUpMarkedBlocks: "0" } as const;
/** The roles whose code runs once per message. */
const ONCE_PER_MESSAGE: Readonly<Record<string, string>> = { BUN_JSC_useDFGJIT: "0", ...NO_WARM_UP };
/** The roles that carry the relay path's hot loops. */
const HOT_LOOPS: Readonly<Record<string, string>> = { BUN_JSC_useFTLJIT: "0", ...NO_WARM_UP };

export const JSC_ENVIRONMENT: Readonly<Record<DaemonRole, Readonly<Record<string, string>>>> = {
  master: ONCE_PER_MESSAGE,
  pickup: ONCE_PER_MESSAGE,
  showq: ONCE_PER_MESSAGE,
  local: ONCE_PER_MESSAGE,
  "local-worker": ONCE_PER_MESSAGE,
  smtpd: HOT_LOOPS,
  qmgr: HOT_LOOPS,
};

/** The BUN_JSC_ settings a process of `role` starts with. */
export function jscEnvironment(role: DaemonRole): Readonly<Record<string, string>> {
  return JSC_ENVIRONMENT[role];
}
