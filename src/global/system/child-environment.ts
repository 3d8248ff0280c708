/**
 * The environment of a started daemon: Postfix's import_environment (NAME
 * copies from ours, NAME=VALUE sets), MAIL_CONFIG, and a fixed PATH. Nothing
 * else passes, BUN_OPTIONS and BUN_BE_BUN included.
 */
import type { Config } from "../config/config.ts";

export function childEnvironment(config: Config, configDir: string): Record<string, string> {
  const env: Record<string, string> = { PATH: "/usr/bin:/bin:/usr/sbin:/sbin" };
  for (const item of config.list("import_environment")) {
    const eq = item.indexOf("=");
    const name = eq > 0 ? item.slice(0, eq) : item;
    // BUN_OPTIONS and BUN_BE_BUN would hand the runtime to whoever set them: never passed, in either form
    if (name.startsWith("BUN_")) continue;
    if (eq > 0) env[name] = item.slice(eq + 1);
    else if (process.env[item] !== undefined) env[item] = process.env[item]!;
  }
  env.MAIL_CONFIG = configDir;
  return env;
}
