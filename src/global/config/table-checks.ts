/**
 * What `postern check` learns by asking the database servers behind the
 * configuration's mysql: and pgsql: tables: a connection as a lookup makes
 * it, so that a wrong password, an unknown database or a server nobody can
 * reach is reported before mail is deferred for it. Each table takes at
 * most its own `timeout`.
 *
 * Run by `postern check` (root), which can read root-only table files.
 * Sends no key, only the connection's own probe query.
 */
import type { Config } from "./config.ts";
import { settingsFilesOf } from "../tables/db-common.ts";
import { openTableUncached } from "../tables/open-table.ts";
import { SqlTable } from "../tables/sql-table.ts";

export async function databaseTableWarnings(config: Config): Promise<string[]> {
  const warnings: string[] = [];
  const seen = new Set<string>();
  for (const { param, type, path } of settingsFilesOf(config)) {
    const spec = `${type}:${path}`;
    if (seen.has(spec)) continue;
    seen.add(spec);
    let table;
    try {
      table = openTableUncached(spec, config);
      if (table instanceof SqlTable) await table.connectCheck();
    } catch (err) {
      warnings.push(`${config.path}: ${param}: ${(err as Error).message}`);
    } finally {
      table?.close();
    }
  }
  return warnings;
}
