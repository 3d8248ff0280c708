/**
 * One full garbage collection shortly after a daemon has started. Loading
 * the configuration, the registry of parameters and the modules leaves
 * garbage that JSC collects only when the program allocates again, which an
 * idle daemon does not: without this, an idle master and queue manager keep
 * it for good (issue 16: about 1 MB less memory at idle, bench/README.md
 * "Issue 16 (session 5)"). Then the executable's pages only the start-up
 * used go too (src/util/exe-trim.ts: about 22 MB of the idle system's PSS,
 * session 9). The timer is unref'd: it never keeps a process
 * alive, and it runs once.
 *
 * Runs in every daemon (the master and the roles started by it); takes no input.
 */
import { trimExecutablePages } from "./exe-trim.ts";

export const START_GC_DELAY_MS = 2000;

export function collectStartGarbageLater(delayMs = START_GC_DELAY_MS): void {
  setTimeout(() => {
    Bun.gc(true);
    trimExecutablePages();
  }, delayMs).unref();
}
