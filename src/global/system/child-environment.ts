/**
 * The environments postern hands on: a started daemon's (Postfix's
 * import_environment, MAIL_CONFIG and a fixed PATH; nothing else, BUN_OPTIONS
 * and BUN_BE_BUN included), and what delivery exports (export_environment:
 * to the commands local and pipe run, and to the local workers, which are
 * this executable again and so never get a BUN_ variable either).
 *
 * Runs in the master and the delivery agents; the lists come from the
 * configuration (root's), the values from the process's own environment.
 */
import type { Config } from "../config/config.ts";

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

export function childEnvironment(config: Config, configDir: string): Record<string, string> {
  const env: Record<string, string> = { PATH: "/usr/bin:/bin:/usr/sbin:/sbin" };
  addExported(env, config.list("import_environment"), true);
  env.MAIL_CONFIG = configDir;
  return env;
}
