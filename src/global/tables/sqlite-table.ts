/**
 * sqlite: — Postfix's sqlite_table(5): `sqlite:/etc/postern/x.cf` names a
 * file of `name = value` settings:
 *
 *   dbpath          the SQLite database (opened read-only)
 *   query           SQL with %s (key), %u (local part, or the whole key),
 *                   %d (domain; no domain means no lookup), %1-%9 (domain
 *                   labels from the right), %% — every substitution quoted
 *                   as an SQL string body ('' for ')
 *   result_format   %s (the column value), %u, %d of it, %S %U %D of the key;
 *                   default %s
 *   domain          only keys user@DOMAIN with DOMAIN in this list are looked up
 *   expansion_limit more result values than this is a lookup error (0: no limit)
 *   table, select_field, where_field, additional_conditions: the old way to
 *                   spell the query
 *
 * All values of all rows are joined with ",". Keys fold to lower case.
 * Limits: `domain` takes literal names only (no type:table), and the
 * configuration file is read once per open.
 *
 * Runs in daemons and commands, read-only; keys are untrusted and reach SQL
 * only as quoted string bodies.
 */
import { Database } from "bun:sqlite";
import { readFileSync, statSync } from "node:fs";
import type { Config } from "../config/config.ts";
import { logicalLines } from "./logical-lines.ts";
import { ReloadingFile, describeFsError } from "./reloading-file.ts";
import { TableError, ownerOfUid, type Table, type TableOptions, type TableOwner } from "./table.ts";

interface SqliteSettings {
  dbpath: string;
  query: string;
  resultFormat: string;
  domains: string[] | undefined;
  expansionLimit: number;
}

function readSettings(spec: string, path: string): SqliteSettings {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new TableError(spec, `open ${path}: ${describeFsError(err)}`);
  }
  const v = new Map<string, string>();
  for (const l of logicalLines(text)) {
    const m = /^([A-Za-z0-9_]+)\s*=\s*([\s\S]*)$/.exec(l.text);
    if (m) v.set(m[1]!, m[2]!.trim());
  }
  const dbpath = v.get("dbpath");
  if (!dbpath) throw new TableError(spec, `${path}: missing "dbpath" setting`);
  let query = v.get("query");
  if (!query) {
    const table = v.get("table");
    const select = v.get("select_field");
    const where = v.get("where_field");
    if (!table || !select || !where) throw new TableError(spec, `${path}: missing "query" setting`);
    query = `SELECT ${select} FROM ${table} WHERE ${where} = '%s' ${v.get("additional_conditions") ?? ""}`.trim();
  }
  const domain = v.get("domain");
  return {
    dbpath,
    query,
    resultFormat: v.get("result_format") ?? "%s",
    domains: domain ? domain.split(/[\s,]+/).filter(Boolean).map((d) => d.toLowerCase()) : undefined,
    expansionLimit: Number(v.get("expansion_limit") ?? "0") || 0,
  };
}

const sqlQuote = (s: string) => s.replace(/'/g, "''");

interface KeyParts {
  key: string;
  user: string;
  domain: string | undefined;
}

function keyParts(key: string): KeyParts {
  const at = key.lastIndexOf("@");
  return at < 0 ? { key, user: key, domain: undefined } : { key, user: key.slice(0, at), domain: key.slice(at + 1) };
}

/** Expands a query or result template; undefined means "suppress the query" (Postfix's rule for missing parts). */
function expand(template: string, parts: KeyParts, quote: (s: string) => string, keyParts2?: KeyParts): string | undefined {
  let out = "";
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c !== "%") {
      out += c;
      continue;
    }
    const e = template[++i];
    const src = e !== undefined && "SUD".includes(e) && keyParts2 ? keyParts2 : parts;
    switch (e) {
      case "%":
        out += "%";
        break;
      case "s":
      case "S":
        out += quote(src.key);
        break;
      case "u":
      case "U":
        if (src.user === "") return undefined;
        out += quote(src.user);
        break;
      case "d":
      case "D":
        if (src.domain === undefined) return undefined;
        out += quote(src.domain);
        break;
      default:
        if (e !== undefined && e >= "1" && e <= "9") {
          const labels = (src.domain ?? "").split(".").filter(Boolean).reverse();
          const label = labels[Number(e) - 1];
          if (label === undefined) return undefined;
          out += quote(label);
        } else out += `%${e ?? ""}`;
    }
  }
  return out;
}

export class SqliteTable implements Table {
  readonly kind = "fixed";
  #settings: SqliteSettings | undefined;
  #db: ReloadingFile<Database> | undefined;
  readonly #fold: boolean;
  #closed = false;

  constructor(
    readonly spec: string,
    readonly path: string,
    _config: Config | undefined,
    options: TableOptions = {},
  ) {
    this.#fold = options.fold !== false;
  }

  #open(): { settings: SqliteSettings; db: Database } {
    if (this.#closed) throw new TableError(this.spec, "table is closed");
    if (!this.#settings) {
      const settings = readSettings(this.spec, this.path);
      this.#db = new ReloadingFile(
        this.spec,
        settings.dbpath,
        "database",
        (p) => new Database(p, { readonly: true }),
        (db) => db.close(),
      );
      this.#settings = settings;
    }
    return { settings: this.#settings, db: this.#db!.current() };
  }

  async lookup(rawKey: string): Promise<string | undefined> {
    const { settings, db } = this.#open();
    const key = this.#fold ? rawKey.toLowerCase() : rawKey;
    const parts = keyParts(key);
    if (settings.domains) {
      if (parts.domain === undefined || parts.user === "" || !settings.domains.includes(parts.domain)) return undefined;
    }
    const sql = expand(settings.query, parts, sqlQuote);
    if (sql === undefined) return undefined;
    let rows: unknown[][];
    try {
      rows = db.prepare(sql).values() as unknown[][];
    } catch (err) {
      throw new TableError(this.spec, `query failed: ${(err as Error).message}`);
    }
    const results: string[] = [];
    for (const row of rows) {
      for (const cell of row) {
        if (cell === null || cell === undefined) continue;
        const value = String(cell);
        const formatted = expand(settings.resultFormat, keyParts(value), (s) => s, parts);
        if (formatted === undefined || formatted === "") continue;
        results.push(formatted);
        if (settings.expansionLimit > 0 && results.length > settings.expansionLimit) {
          throw new TableError(this.spec, `expansion limit exceeded for key "${rawKey}"`);
        }
      }
    }
    return results.length ? results.join(",") : undefined;
  }

  owner(): TableOwner {
    try {
      return ownerOfUid(statSync(this.path).uid);
    } catch (err) {
      throw new TableError(this.spec, `open ${this.path}: ${describeFsError(err)}`);
    }
  }

  close(): void {
    this.#closed = true;
    this.#db?.close();
  }
}
