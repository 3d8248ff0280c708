/**
 * Tables for the tests of table lifetimes (configuration generations, the
 * daemon skeleton's reload): a fresh texthash file per call, in one
 * temporary directory, and whether a table handed out earlier is closed.
 * Test-only; trusts its own files.
 */
import { afterAll } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { closeAllTables } from "../../src/global/tables/open-table.ts";
import type { Table } from "../../src/global/tables/table.ts";
import { removeDir, tempDir } from "./run.ts";

/** Registers the cleanup (every table closed, the directory removed) with the calling test file's afterAll. */
export function tableFiles(prefix: string): { table: () => string; closed: (t: Table) => Promise<boolean> } {
  const root = tempDir(prefix);
  afterAll(() => {
    closeAllTables();
    removeDir(root);
  });
  let n = 0;
  return {
    /** A new texthash table (one entry, "a b"), as its "type:name". */
    table() {
      const path = join(root, `t${n++}`);
      writeFileSync(path, "a b\n");
      return `texthash:${path}`;
    },
    /** Whether `t` answers "table is closed". */
    closed: async (t: Table) => (await t.lookup("a").then(() => false, (err: Error) => /table is closed/.test(err.message))) as boolean,
  };
}
