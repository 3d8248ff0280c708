/**
 * mysql: — Postfix's mysql_table(5), for MySQL and MariaDB:
 * `mysql:/etc/postern/x.cf` names a file with `hosts`, `user`, `password`,
 * `dbname`, `charset` (utf8mb4), `require_result_set` (yes), the retry,
 * idle and timeout settings of sql-table.ts and the query settings of
 * db-common.ts.
 *
 * `hosts`: `unix:/path`, `inet:host[:port]` or `host[:port]` (port 3306),
 * separated by commas or blanks, `localhost` by default. As with MySQL's
 * client, `localhost` means the default UNIX socket ($MYSQL_UNIX_PORT, else
 * /run/mysqld/mysqld.sock); `127.0.0.1` is TCP.
 *
 * Quoting is mysql_real_escape_string's: NUL, LF, CR, backslash, both quote
 * marks and Ctrl-Z get a backslash, or, when the server's sql_mode has
 * NO_BACKSLASH_ESCAPES, only ' is doubled; the server's mode is read when a
 * connection opens.
 *
 * TLS (TCP servers only): any of `tls_CAfile`, `tls_cert_file` with
 * `tls_key_file`, `tls_ciphers`, `tls_verify_cert` makes TLS required. The
 * chain is verified when `tls_CAfile` is given or `tls_verify_cert = yes`;
 * the server's name (or IP address) only with `tls_verify_cert = yes`. The
 * files are read when a connection opens, with the process's rights.
 *
 * Limits (refused with an error rather than ignored): `option_file`,
 * `tls_CApath` and a `charset` other than utf8mb4/utf8 are not supported;
 * the [client] group of my.cnf is not read.
 *
 * Runs wherever the table is looked up; see sql-table.ts for the trust model.
 */
import type { SQL } from "bun";
import type { Quote, TableSettings } from "./db-common.ts";
import { SqlTable, type SqlBackend, type SqlServer } from "./sql-table.ts";
import { TableError, type TableOptions } from "./table.ts";

const DEFAULT_SOCKET = "/run/mysqld/mysqld.sock";
const DEFAULT_PORT = 3306;

const BACKSLASH_ESCAPES: Record<string, string> = { "\0": "\\0", "\n": "\\n", "\r": "\\r", "\\": "\\\\", "'": "\\'", '"': '\\"', "\x1a": "\\Z" };

/** mysql_real_escape_string for a utf8mb4 connection, in either sql_mode. */
export function mysqlQuote(noBackslashEscapes: boolean): Quote {
  if (noBackslashEscapes) return (s) => s.replace(/'/g, "''");
  return (s) => s.replace(/[\0\n\r\\'"\x1a]/g, (c) => BACKSLASH_ESCAPES[c]!);
}

const UNSUPPORTED = ["option_file", "tls_CApath"];

/** Bun's TLS options for the file's tls_* settings; undefined when it has none. */
function tlsOf(settings: TableSettings): SQL.TLSOptions | undefined {
  const ca = settings.value("tls_CAfile");
  const cert = settings.value("tls_cert_file");
  const key = settings.value("tls_key_file");
  const ciphers = settings.value("tls_ciphers");
  const verify = settings.flag("tls_verify_cert", false);
  if (!ca && !cert && !key && !ciphers && !settings.values.has("tls_verify_cert")) return undefined;
  if (Boolean(cert) !== Boolean(key)) throw new TableError(settings.spec, `${settings.path}: tls_cert_file and tls_key_file go together`);
  return {
    ...(ca ? { ca: Bun.file(ca) } : {}),
    ...(cert && key ? { cert: Bun.file(cert), key: Bun.file(key) } : {}),
    ...(ciphers ? { ciphers } : {}),
    rejectUnauthorized: verify || Boolean(ca),
    // without tls_verify_cert the chain may be checked, the name is not
    ...(verify ? {} : { checkServerIdentity: () => undefined }),
  };
}

function servers(settings: TableSettings): SqlServer[] {
  const { spec, path } = settings;
  for (const name of UNSUPPORTED) {
    if (settings.value(name)) throw new TableError(spec, `${path}: "${name}" is not supported by postern's mysql: tables`);
  }
  const charset = settings.value("charset", "utf8mb4").toLowerCase();
  if (!["utf8mb4", "utf8", "utf8mb3"].includes(charset)) throw new TableError(spec, `${path}: charset "${charset}" is not supported (only utf8mb4)`);
  const credentials = {
    adapter: "mysql" as const,
    username: settings.value("user") || undefined,
    password: settings.value("password", ""),
    database: settings.value("dbname") || undefined,
  };
  const words = settings.value("hosts", "").split(/[\s,]+/).filter(Boolean);
  if (!words.length) words.push("localhost");
  return words.map((label) => {
    if (label.startsWith("unix:")) return { label, unix: true, options: { ...credentials, path: label.slice(5) } };
    let name = label.startsWith("inet:") ? label.slice(5) : label;
    let port = DEFAULT_PORT;
    const colon = name.lastIndexOf(":");
    if (colon >= 0) {
      const p = name.slice(colon + 1);
      if (!/^\d{1,5}$/.test(p) || Number(p) > 65535) throw new TableError(spec, `${path}: unknown service: ${p}/tcp`);
      port = Number(p);
      name = name.slice(0, colon);
    }
    // the MySQL way: localhost is the UNIX socket
    if (name.toLowerCase() === "localhost") return { label, unix: true, options: { ...credentials, path: process.env.MYSQL_UNIX_PORT || DEFAULT_SOCKET } };
    const tls = tlsOf(settings);
    return { label, unix: false, options: { ...credentials, hostname: name, port, ...(tls ? { tls } : {}) } };
  });
}

export const MYSQL_BACKEND: SqlBackend = {
  type: "mysql",
  servers,
  requireResultSet: (settings) => settings.flag("require_result_set", true),
  probe: "SELECT @@SESSION.sql_mode",
  quoter: ([mode]) => mysqlQuote((mode ?? "").toUpperCase().split(",").includes("NO_BACKSLASH_ESCAPES")),
};

export class MysqlTable extends SqlTable {
  constructor(spec: string, path: string, options: TableOptions = {}) {
    super(spec, path, MYSQL_BACKEND, options);
  }
}
