/**
 * `postern check`'s test of the tables that talk to a server through a
 * settings file (ldap:, and mysql:/pgsql: where postern has them): each is
 * opened and asked for a key no one has, which makes it connect, bind and
 * search; a failure (an unreachable server, a wrong password, a setting it
 * cannot use) becomes a warning naming the parameter. Postfix's check does
 * not go this far; a wrong password is worth hearing about before mail is
 * deferred because of it.
 *
 * Run by `postern check` (root). The configuration and the settings files
 * are trusted; the servers' answers only become warning text.
 */
import type { Config } from "../config/config.ts";
import { openTableUncached } from "./open-table.ts";
import { settingsFilesOf } from "./db-common.ts";
import { TableError } from "./table.ts";

/** A key no directory or database holds; its domain cannot exist (RFC 2606). */
export const PROBE_KEY = "postern-check@probe.invalid";

export async function probeSettingsFileTables(config: Config): Promise<string[]> {
  const warnings: string[] = [];
  const seen = new Set<string>();
  for (const { param, type, path } of settingsFilesOf(config)) {
    // mysql:/pgsql: are databaseTableWarnings' (table-checks.ts)
    if (type !== "ldap") continue;
    const spec = `${type}:${path}`;
    if (seen.has(spec)) continue;
    seen.add(spec);
    let table;
    try {
      table = openTableUncached(spec, config);
    } catch (err) {
      // a type this build lacks is config.validate()'s to report
      if (!(err instanceof TableError)) throw err;
      continue;
    }
    try {
      await table.lookup(PROBE_KEY);
    } catch (err) {
      if (!(err instanceof TableError)) throw err;
      warnings.push(`${param}: ${spec}: test lookup failed: ${err.detail}`);
    } finally {
      table.close();
    }
  }
  return warnings;
}
