/**
 * hash: (and its synonyms btree:, lmdb:, cdb:, dbm:, sdbm:) — a table
 * indexed by postmap or postalias into SOURCE.sqlite (hash-index.ts). Keys
 * were folded to lower case when the index was built (unless postmap -f),
 * and lookups fold the same way.
 *
 * The index is re-opened when postmap replaces or changes it (a stat before
 * each lookup), so a running daemon uses a rebuilt table without a
 * restart. An index older than its source earns Postfix's warning.
 *
 * Runs in daemons and commands, read-only.
 */
import { statSync } from "node:fs";
import { log } from "../../util/log.ts";
import { IndexFile, indexPathOf } from "./hash-index.ts";
import { ReloadingFile } from "./reloading-file.ts";
import { ownerOfUid, type Table, type TableOptions, type TableOwner } from "./table.ts";

export class HashTable implements Table {
  readonly kind = "fixed";
  readonly #index: ReloadingFile<IndexFile>;
  readonly #fold: boolean;

  constructor(
    readonly spec: string,
    readonly source: string,
    options: TableOptions = {},
  ) {
    this.#fold = options.fold !== false;
    const indexPath = indexPathOf(source);
    this.#index = new ReloadingFile(
      spec,
      indexPath,
      "database",
      (path, stamp) => {
        const index = IndexFile.open(path);
        try {
          if (statSync(source).mtimeMs > stamp.mtimeMs) log.warn(`database ${path} is older than source file ${source}`);
        } catch {
          // no source beside the index: nothing to compare
        }
        return index;
      },
      (index) => index.close(),
    );
  }

  async lookup(key: string): Promise<string | undefined> {
    return this.#index.current().get(this.#fold ? key.toLowerCase() : key);
  }

  owner(): TableOwner {
    return ownerOfUid(this.#index.stamp().uid);
  }

  async *entries(): AsyncIterable<[string, string]> {
    yield* this.#index.current().entries();
  }

  close(): void {
    this.#index.close();
  }
}
