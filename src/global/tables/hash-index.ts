/**
 * The index file behind hash: tables: a SQLite database (bun:sqlite) named
 * after its source with ".sqlite" appended (/etc/aliases -> /etc/aliases.sqlite),
 * so it never collides with the ".db" Berkeley DB files Postfix keeps beside
 * the same sources. postmap and postalias write it; daemons read it.
 *
 * Layout: one table `postern_index(key TEXT PRIMARY KEY, value TEXT)` in
 * source order (rowid), `application_id` 0x706f7374 ("post") and
 * `user_version` 1 so a reader can tell an index from any other database.
 *
 * A full build writes a temporary file in the same directory, fsyncs it,
 * sets its mode and owner, renames it over the old index and fsyncs the
 * directory: a reader sees the old index or the new one, never a mix.
 * Incremental changes (postmap -i, -d) are SQLite transactions on the live
 * file, which SQLite makes atomic and durable itself (rollback journal).
 *
 * Readers open the file read-only; the content is trusted only as far as
 * "strings in, strings out".
 */
import { Database, type Statement } from "bun:sqlite";
import { chmodSync, chownSync, closeSync, fsyncSync, openSync, renameSync, rmSync, constants as fsc } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fsyncDirectory } from "../../util/durable-file.ts";

export const INDEX_SUFFIX = ".sqlite";
const APPLICATION_ID = 0x706f7374;
const FORMAT_VERSION = 1;

export function indexPathOf(source: string): string {
  return source + INDEX_SUFFIX;
}

/** An open index, read-only unless opened for update. */
export class IndexFile {
  readonly #db: Database;
  readonly #get: Statement;

  private constructor(db: Database) {
    this.#db = db;
    this.#get = db.prepare("SELECT value FROM postern_index WHERE key = ?");
  }

  /** Opens `path`; throws a plain Error with Postfix-like wording when it is not an index. */
  static open(path: string, writable = false): IndexFile {
    const db = new Database(path, writable ? { readwrite: true, create: false } : { readonly: true });
    try {
      // Writers hold the lock only while committing; a reader (a daemon) waits less, since the wait blocks its event loop.
      db.run(`PRAGMA busy_timeout = ${writable ? 10000 : 2000}`);
      const app = (db.query("PRAGMA application_id").get() as { application_id: number }).application_id;
      const version = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
      if (app !== APPLICATION_ID || version !== FORMAT_VERSION) {
        throw new Error(`${path} is not a postern index file (rebuild it with postmap or postalias)`);
      }
      return new IndexFile(db);
    } catch (err) {
      db.close();
      if (/not a database|file is encrypted/i.test((err as Error).message)) {
        throw new Error(`${path} is not a postern index file (rebuild it with postmap or postalias)`);
      }
      throw err;
    }
  }

  get(key: string): string | undefined {
    const row = this.#get.get(key) as { value: string } | null;
    return row ? row.value : undefined;
  }

  *entries(): Generator<[string, string]> {
    for (const row of this.#db.query("SELECT key, value FROM postern_index ORDER BY rowid").iterate() as IterableIterator<{ key: string; value: string }>) {
      yield [row.key, row.value];
    }
  }

  /**
   * Runs `change` inside one write transaction (BEGIN IMMEDIATE waits for
   * other writers). Only for indexes opened writable.
   */
  update<T>(change: (edit: IndexEdit) => T): T {
    const insert = this.#db.prepare("INSERT INTO postern_index (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    const remove = this.#db.prepare("DELETE FROM postern_index WHERE key = ?");
    const edit: IndexEdit = {
      get: (key) => this.get(key),
      put: (key, value) => void insert.run(key, value),
      delete: (key) => remove.run(key).changes > 0,
    };
    this.#db.run("BEGIN IMMEDIATE");
    try {
      const result = change(edit);
      this.#db.run("COMMIT");
      return result;
    } catch (err) {
      this.#db.run("ROLLBACK");
      throw err;
    }
  }

  close(): void {
    this.#get.finalize();
    this.#db.close();
  }
}

export interface IndexEdit {
  get(key: string): string | undefined;
  put(key: string, value: string): void;
  delete(key: string): boolean;
}

export interface IndexWriteOptions {
  /** Permission bits of the new file. */
  mode: number;
  /** Owner and group to give the file (root only); unchanged when undefined. */
  uid?: number;
  gid?: number;
}

/**
 * Writes a complete index at `path` from `entries` (keys must be unique),
 * atomically replacing any old one.
 */
export function writeIndexFile(path: string, entries: Iterable<[string, string]>, opts: IndexWriteOptions): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  rmSync(tmp, { force: true });
  // Create the file ourselves first: an errno (EACCES, ENOENT) says more than SQLite's "unable to open database file".
  closeSync(openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600));
  try {
    const db = new Database(tmp, { create: true, readwrite: true });
    try {
      // The temporary file is fsynced as a whole below; no journal is needed while nobody else can see it.
      db.run("PRAGMA journal_mode = OFF");
      db.run("PRAGMA synchronous = OFF");
      db.run(`PRAGMA application_id = ${APPLICATION_ID}`);
      db.run(`PRAGMA user_version = ${FORMAT_VERSION}`);
      db.run("CREATE TABLE postern_index (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL)");
      const insert = db.prepare("INSERT INTO postern_index (key, value) VALUES (?, ?)");
      db.transaction(() => {
        for (const [k, v] of entries) insert.run(k, v);
      })();
      insert.finalize();
    } finally {
      db.close();
    }
    const fd = openSync(tmp, fsc.O_RDONLY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, opts.mode);
    if (opts.uid !== undefined && opts.gid !== undefined) chownSync(tmp, opts.uid, opts.gid);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDirectory(dir);
}
