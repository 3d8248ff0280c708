/**
 * sqlite: — Postfix's sqlite_table(5): `sqlite:/etc/postern/x.cf` names a
 * file of `name = value` settings: `dbpath` (the SQLite database, opened
 * read-only) and what every database table shares (db-common.ts): `query`
 * or the legacy `table`/`select_field`/`where_field`/`additional_conditions`,
 * `result_format`, `domain`, `expansion_limit`. Every substitution is
 * quoted as an SQL string body ('' for ', as sqlite3_mprintf's %q).
 *
 * All values of all rows are joined with ",". Keys fold to lower case.
 * Limit: the configuration file is read once per open.
 *
 * Runs in daemons and commands, read-only; keys are untrusted and reach SQL
 * only as quoted string bodies.
 */
import { Database } from "bun:sqlite";
import type { Config } from "../config/config.ts";
import { DbTemplates, readTableSettings } from "./db-common.ts";
import { ReloadingFile, fileOwner } from "./reloading-file.ts";
import { TableError, type Table, type TableOptions, type TableOwner } from "./table.ts";

const sqlQuote = (s: string) => s.replace(/'/g, "''");

export class SqliteTable implements Table {
  readonly kind = "fixed";
  #templates: DbTemplates | undefined;
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

  #open(): { templates: DbTemplates; db: Database } {
    if (this.#closed) throw new TableError(this.spec, "table is closed");
    if (!this.#templates) {
      const settings = readTableSettings(this.spec, this.path);
      const dbpath = settings.value("dbpath");
      if (!dbpath) throw new TableError(this.spec, `${this.path}: missing "dbpath" setting`);
      const templates = new DbTemplates(settings);
      this.#db = new ReloadingFile(
        this.spec,
        dbpath,
        "database",
        (p) => new Database(p, { readonly: true }),
        (db) => db.close(),
      );
      this.#templates = templates;
    }
    return { templates: this.#templates, db: this.#db!.current() };
  }

  async lookup(rawKey: string): Promise<string | undefined> {
    const { templates, db } = this.#open();
    const key = this.#fold ? rawKey.toLowerCase() : rawKey;
    // a key cannot hold a NUL (Postfix's keys are C strings)
    if (key.includes("\0") || !(await templates.domainAllows(key))) return undefined;
    const sql = templates.expandQuery(key, sqlQuote);
    if (sql === undefined) return undefined;
    let rows: unknown[][];
    try {
      rows = db.prepare(sql).values() as unknown[][];
    } catch (err) {
      throw new TableError(this.spec, `query failed: ${(err as Error).message}`);
    }
    return templates.formatResults(key, rows.map((row) => row.map((cell) => (cell === null || cell === undefined ? null : String(cell)))));
  }

  owner(): TableOwner {
    return fileOwner(this.spec, this.path);
  }

  close(): void {
    this.#closed = true;
    this.#db?.close();
  }
}
