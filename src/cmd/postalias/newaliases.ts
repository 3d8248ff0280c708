/**
 * newaliases (and `sendmail -bi`, `sendmail -I`): rebuild every alias
 * database that alias_database names, as postalias would (a bare path gets
 * default_database_type). Entries of a type that needs no index (texthash:,
 * regexp:, ...) are left alone with a notice instead of failing the run.
 *
 * `newaliases [-C config] [-oA database] [-v]`; sendmail's other options are
 * accepted and ignored, as Postfix's newaliases does.
 *
 * Runs as the invoking user (root, normally: each index is written with its
 * source's owner and group); the alias files are untrusted text.
 */
import { statSync } from "node:fs";
import { dirname } from "node:path";
import { loadConfig, type Config } from "../../global/config/config.ts";
import { setupLog } from "../../global/system/log-setup.ts";
import { INDEXED_TYPES } from "../../global/tables/open-table.ts";
import { getopt, GetoptError } from "../../util/getopt.ts";
import { log } from "../../util/log.ts";
import { ExitError } from "../../util/sysexits.ts";
import { asSourceOwner, type BuildOptions } from "../postmap/index-build.ts";
import { buildFromSource, fullSpec } from "../postmap/table-command.ts";
import { POSTALIAS_FORMAT } from "./main.ts";

/**
 * Rebuilds the alias databases: `databases` (sendmail's -oA) or else
 * alias_database. Returns the exit status (0, or 1 after a failure, which
 * is also logged); the caller has set up logging.
 */
export async function newaliasesCommand(config: Config, databases?: string[]): Promise<number> {
  const specs = databases ?? config.list("alias_database");
  const opts: BuildOptions = { keepRoot: false, defaultMode: false, fold: true, duplicates: "warn" };
  let status = 0;
  for (const operand of specs) {
    const { spec, type, name } = fullSpec(operand, config);
    if (!INDEXED_TYPES.has(type)) {
      log.info(`${spec} is read directly and needs no rebuilding`);
      continue;
    }
    try {
      asSourceOwner(name, opts, () => buildFromSource(POSTALIAS_FORMAT, name, opts));
    } catch (err) {
      if (!(err instanceof ExitError)) throw err;
      log.error(err.message);
      status = 1;
    }
  }
  return status;
}

/** The `newaliases` command name. */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    // sendmail's option letters, so "newaliases -v" or scripts passing -oi keep working
    parsed = getopt(args, "B:C:F:IL:N:O:R:UV:X:b:ce:f:h:imno:p:q:r:tvx");
  } catch (err) {
    if (err instanceof GetoptError) throw new ExitError(1, `${err.message}; usage: newaliases [-C config] [-oA database]`);
    throw err;
  }
  let configPath: string | undefined;
  const databases: string[] = [];
  for (const [opt, arg] of parsed.options) {
    if (opt === "C") configPath = arg;
    else if (opt === "o" && arg!.startsWith("A")) databases.push(arg!.slice(1));
  }
  // -C names the configuration file or its directory
  if (configPath !== undefined) {
    try {
      if (!statSync(configPath).isDirectory()) configPath = dirname(configPath);
    } catch {
      // a missing path is reported by loadConfig
    }
  }
  const config = loadConfig(configPath);
  await setupLog(config, { role: "newaliases", stderrProgram: "newaliases" });
  try {
    return await newaliasesCommand(config, databases.length ? databases : undefined);
  } finally {
    log.close();
  }
}
