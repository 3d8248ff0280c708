/**
 * pgsql: — Postfix's pgsql_table(5), for PostgreSQL: `pgsql:/etc/postern/x.cf`
 * names a file with `hosts`, `user`, `password`, `dbname`, `encoding`
 * (UTF8), the retry, idle and timeout settings of sql-table.ts and the
 * query settings of db-common.ts, plus the legacy `select_function` (the
 * query `SELECT function('%s')`).
 *
 * `hosts`: a connection URI (postgresql://user:pw@host/db?sslmode=require;
 * `user`, `password` and `dbname` do not apply to it), `unix:/directory`
 * (the server's socket directory), `inet:host[:port]` or `host[:port]`
 * (port 5432); `localhost` by default. `dbname` is required for a host that
 * is not a URI.
 *
 * Quoting is PQescapeStringConn's: ' is doubled, and so is \ when the
 * server's standard_conforming_strings is off (read when a connection opens).
 *
 * Limits: an `encoding` other than UTF8 is refused.
 *
 * Runs wherever the table is looked up; see sql-table.ts for the trust model.
 */
import type { Quote, TableSettings } from "./db-common.ts";
import { SqlTable, type SqlBackend, type SqlServer } from "./sql-table.ts";
import { TableError, type TableOptions } from "./table.ts";

const DEFAULT_SOCKET_DIR = "/var/run/postgresql";
const DEFAULT_PORT = 5432;

/** PQescapeStringConn for a UTF8 connection; it stops at a NUL. */
export function pgsqlQuote(standardConformingStrings: boolean): Quote {
  return (value) => {
    const nul = value.indexOf("\0");
    const s = nul < 0 ? value : value.slice(0, nul);
    return standardConformingStrings ? s.replace(/'/g, "''") : s.replace(/['\\]/g, (c) => c + c);
  };
}

function servers(settings: TableSettings): SqlServer[] {
  const { spec, path } = settings;
  const encoding = settings.value("encoding", "UTF8").toUpperCase().replace("-", "");
  if (!["UTF8", "UNICODE"].includes(encoding)) throw new TableError(spec, `${path}: encoding "${encoding}" is not supported (only UTF8)`);
  const dbname = settings.value("dbname", "");
  const credentials = {
    adapter: "postgres" as const,
    username: settings.value("user") || undefined,
    password: settings.value("password", ""),
    database: dbname || undefined,
    // the query is text made once per lookup: nothing to gain from named statements
    prepare: false,
  };
  const words = settings.value("hosts", "").split(/[\s,]+/).filter(Boolean);
  if (!words.length) words.push("localhost");
  return words.map((label) => {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(label)) return { label: label.replace(/\/\/[^@/]*@/, "//"), unix: false, options: { adapter: "postgres" as const, url: label, prepare: false } };
    if (!dbname) throw new TableError(spec, `pgsql:${path} host target '${label}' requires dbname setting`);
    let name = label.startsWith("unix:") || label.startsWith("inet:") ? label.slice(5) : label;
    if (name === "" || name.startsWith("/")) return { label, unix: true, options: { ...credentials, path: name || DEFAULT_SOCKET_DIR, port: DEFAULT_PORT } };
    let port = DEFAULT_PORT;
    const colon = name.lastIndexOf(":");
    if (colon >= 0) {
      const p = name.slice(colon + 1);
      if (!/^\d{1,5}$/.test(p) || Number(p) > 65535) throw new TableError(spec, `${path}: bad port in "${label}"`);
      port = Number(p);
      name = name.slice(0, colon);
    }
    return { label, unix: false, options: { ...credentials, hostname: name, port } };
  });
}

export const PGSQL_BACKEND: SqlBackend = {
  type: "pgsql",
  servers,
  legacyQuery: (settings) => {
    const fn = settings.value("select_function");
    return fn ? `SELECT ${fn}('%s')` : undefined;
  },
  probe: "SHOW standard_conforming_strings",
  quoter: ([std]) => pgsqlQuote((std ?? "on").toLowerCase() === "on"),
};

export class PgsqlTable extends SqlTable {
  constructor(spec: string, path: string, options: TableOptions = {}) {
    super(spec, path, PGSQL_BACKEND, options);
  }
}
