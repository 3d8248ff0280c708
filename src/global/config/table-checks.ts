/**
 * What `postern check` learns by asking the servers behind the
 * configuration's mysql:, pgsql: and ldap: tables: a connection as a lookup
 * makes it (for ldap:, the bind and a search for a key no directory holds),
 * so that a wrong password, an unknown database or a server nobody can
 * reach is reported before mail is deferred for it. The tables are checked
 * at once, each within its own `timeout`.
 *
 * Run by `postern check` (root), which can read root-only table files.
 * Sends no key of a user's, only the connection's own probe.
 */
import type { Config } from "./config.ts";
import { settingsFilesOf } from "../tables/db-common.ts";
import { openTableLoaded } from "../tables/open-table.ts";
import type { Table } from "../tables/table.ts";

/** The backends that can test their connection (sql-table.ts, ldap/ldap-table.ts; loaded on demand, so not imported here). */
type Checkable = Table & { connectCheck(): Promise<void> };

export async function databaseTableWarnings(config: Config): Promise<string[]> {
  const seen = new Set<string>();
  const checks: Promise<string | undefined>[] = [];
  for (const { param, type, path } of settingsFilesOf(config)) {
    const spec = `${type}:${path}`;
    if (seen.has(spec)) continue;
    seen.add(spec);
    // all at once: a check takes at most its table's timeout, the whole no longer than the longest
    checks.push(
      (async () => {
        let table: Table | undefined;
        try {
          table = await openTableLoaded(spec, config);
          if (typeof (table as Partial<Checkable>).connectCheck === "function") await (table as Checkable).connectCheck();
          return undefined;
        } catch (err) {
          return `${config.path}: ${param}: ${(err as Error).message}`;
        } finally {
          table?.close();
        }
      })(),
    );
  }
  return (await Promise.all(checks)).filter((w): w is string => w !== undefined);
}
