/**
 * The environments postern hands on: a started daemon's (Postfix's
 * import_environment, MAIL_CONFIG, a fixed PATH, the allocator's settings
 * below and its role's JSC options from jsc-environment.ts; nothing else,
 * BUN_OPTIONS and BUN_BE_BUN included), and what delivery exports
 * (export_environment: to the commands local and pipe run, and to the local
 * workers, which are this executable again and so get the allocator's
 * settings and their JSC options, and never a BUN_ variable from the list).
 *
 * Runs in `postern start`, the master and the delivery agents; the lists
 * come from the configuration (root's), the values from the process's own
 * environment.
 */
import type { Config } from "../config/config.ts";
import { jscEnvironment } from "./jsc-environment.ts";
import type { DaemonRole } from "./service-table.ts";

/**
 * Settings of Bun's allocator (mimalloc, which reads them from the
 * environment when a process starts) for postern's own long-running
 * processes. Its "mi-scavenger" thread sweeps a thread's heaps each time the
 * thread goes idle, at most every purge_holes_min_interval ms (100 by
 * default), handing free blocks back to the kernel, and returns freed arena
 * memory purge_delay ms (100) after it was freed; a daemon whose event loop
 * goes idle between messages paid for a sweep, and for faulting the pages in
 * again, with every message. Once a second instead: measured in
 * bench/README.md (issue 16, session 6). The operator's import_environment
 * (export_environment for the local workers) may set them otherwise.
 */
export const ALLOCATOR_ENVIRONMENT: Readonly<Record<string, string>> = {
  MIMALLOC_PURGE_HOLES_MIN_INTERVAL: "1000",
  MIMALLOC_PURGE_DELAY: "1000",
};

/** BUN_OPTIONS and BUN_BE_BUN would hand the runtime to whoever set them. */
function isRuntimeVariable(name: string): boolean {
  return name.startsWith("BUN_");
}

/**
 * Postfix's export_environment list applied to `env`: NAME copies this
 * process's value (when it has one), NAME=VALUE sets. For a postern process
 * (`runtime`), no BUN_ variable in either form.
 */
export function addExported(env: Record<string, string>, list: readonly string[], runtime = false): Record<string, string> {
  for (const item of list) {
    const eq = item.indexOf("=");
    const name = eq > 0 ? item.slice(0, eq) : item;
    if (runtime && isRuntimeVariable(name)) continue;
    if (eq > 0) env[name] = item.slice(eq + 1);
    else if (process.env[item] !== undefined) env[item] = process.env[item]!;
  }
  return env;
}

/**
 * Profile recording for the build's bytecode layout (scripts/bytecode-order.ts): when the process that
 * starts a daemon has BUN_BYTECODE_ORDER_OUT=PATH, the daemon gets PATH.ROLE, so each role records the
 * functions it ran into its own file (the runtime writes it at exit, as the daemon's user). Only the
 * starting process's own environment asks for this, never import_environment.
 */
export function profileRecording(role: string): Record<string, string> {
  const out = process.env.BUN_BYTECODE_ORDER_OUT;
  return out ? { BUN_BYTECODE_ORDER_OUT: `${out}.${role}` } : {};
}

/**
 * What a postern process of `role` starts with besides PATH: the allocator's
 * settings, the role's JSC options and, while profiles are being recorded,
 * its profile's path. The lists applied after it may change the first, never
 * the others (no BUN_ variable passes them).
 */
export function runtimeEnvironment(role: DaemonRole): Record<string, string> {
  return { ...ALLOCATOR_ENVIRONMENT, ...jscEnvironment(role), ...profileRecording(role) };
}

/**
 * The environment of a daemon of `role` (of the master, from `postern
 * start`); without a role (a command such as postsuper), no JSC options.
 */
export function childEnvironment(config: Config, configDir: string, role?: DaemonRole): Record<string, string> {
  const env: Record<string, string> = { PATH: "/usr/bin:/bin:/usr/sbin:/sbin", ...(role ? runtimeEnvironment(role) : ALLOCATOR_ENVIRONMENT) };
  addExported(env, config.list("import_environment"), true);
  env.MAIL_CONFIG = configDir;
  return env;
}
