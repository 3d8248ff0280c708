/**
 * texthash: — a postmap-format source file read straight into memory, no
 * index needed. Keys fold to lower case as with hash:; the first of
 * duplicate keys wins, with Postfix's warning. Unlike Postfix (which reads
 * the file once per process), the file is re-read when it changes, checked
 * at most once a second.
 *
 * Runs in daemons and commands, read-only; the file is untrusted text.
 */
import { readFileSync } from "node:fs";
import { log } from "../../util/log.ts";
import { parsePostmapSource } from "./postmap-format.ts";
import { ReloadingFile } from "./reloading-file.ts";
import { ownerOfUid, type Table, type TableOptions, type TableOwner } from "./table.ts";

export class TexthashTable implements Table {
  readonly kind = "fixed";
  readonly #file: ReloadingFile<Map<string, string>>;
  readonly #fold: boolean;

  constructor(
    readonly spec: string,
    readonly path: string,
    options: TableOptions = {},
  ) {
    const fold = (this.#fold = options.fold !== false);
    this.#file = new ReloadingFile(spec, path, "file", (p) => {
      const map = new Map<string, string>();
      const warn = (line: number | undefined, message: string) => log.warn(line === undefined ? `${p}: ${message}` : `${p}, line ${line}: ${message}`);
      for (const e of parsePostmapSource(readFileSync(p, "utf8"), warn)) {
        const key = fold ? e.key.toLowerCase() : e.key;
        if (map.has(key)) warn(e.line, `duplicate entry: "${e.key}"`);
        else map.set(key, e.value);
      }
      return map;
    });
  }

  async lookup(key: string): Promise<string | undefined> {
    return this.#file.current().get(this.#fold ? key.toLowerCase() : key);
  }

  owner(): TableOwner {
    return ownerOfUid(this.#file.stamp().uid);
  }

  async *entries(): AsyncIterable<[string, string]> {
    yield* this.#file.current();
  }

  close(): void {
    this.#file.close();
  }
}
