/**
 * unix:passwd.byname and unix:group.byname — the local user and group
 * databases as tables (local_recipient_maps uses the first). The value is
 * the entry as a line (`root:x:0:0:root:/root:/bin/bash`), as Postfix's
 * getpwnam()-based table returns it. Keys fold to lower case.
 *
 * Reads /etc/passwd and /etc/group directly (no NSS modules; the same limit
 * as util/passwd.ts), re-reading a file when it changes, checked at most once
 * a second.
 */
import { readFileSync } from "node:fs";
import { ReloadingFile } from "./reloading-file.ts";
import { TRUSTED_OWNER, TableError, type Table, type TableOptions, type TableOwner } from "./table.ts";

const FILES: Record<string, { path: string; fields: number }> = {
  "passwd.byname": { path: "/etc/passwd", fields: 7 },
  "group.byname": { path: "/etc/group", fields: 4 },
};

function parseDatabase(text: string, fields: number): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#") || line.startsWith("+") || line.startsWith("-")) continue;
    const f = line.split(":");
    if (f.length < fields || f[0] === "") continue;
    // the first entry for a name wins, as getpwnam(3) finds it
    if (!map.has(f[0]!)) map.set(f[0]!, f.slice(0, fields).join(":"));
  }
  return map;
}

export class UnixTable implements Table {
  readonly kind = "fixed";
  readonly #file: ReloadingFile<Map<string, string>>;
  readonly #fold: boolean;

  constructor(
    readonly spec: string,
    name: string,
    options: TableOptions = {},
  ) {
    const db = FILES[name];
    if (!db) throw new TableError(spec, `unknown table: unix:${name}`);
    this.#fold = options.fold !== false;
    this.#file = new ReloadingFile(spec, db.path, "file", (p) => parseDatabase(readFileSync(p, "utf8"), db.fields));
  }

  async lookup(key: string): Promise<string | undefined> {
    return this.#file.current().get(this.#fold ? key.toLowerCase() : key);
  }

  owner(): TableOwner {
    return TRUSTED_OWNER;
  }

  close(): void {
    this.#file.close();
  }
}
