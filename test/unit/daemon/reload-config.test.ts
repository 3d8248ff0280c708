/**
 * The daemon skeleton's reload step (reloadConfig in src/daemon/skeleton.ts): a configuration the role
 * takes replaces the old one, whose tables close; a configuration the role refuses leaves the old one in
 * use and gives back at once what it opened meanwhile. Texthash files in a temporary directory.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { reloadConfig } from "../../../src/daemon/skeleton.ts";
import { defaultsOnlyConfig } from "../../../src/global/config/config.ts";
import { closeAllTables, openTable } from "../../../src/global/tables/open-table.ts";
import type { Table } from "../../../src/global/tables/table.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const root = tempDir("postern-reload-config-");
afterAll(() => {
  closeAllTables();
  removeDir(root);
});

let n = 0;
function table(): string {
  const path = join(root, `t${n++}`);
  writeFileSync(path, "a b\n");
  return `texthash:${path}`;
}

const closed = async (t: Table) => (await t.lookup("a").then(() => false, (err: Error) => /table is closed/.test(err.message))) as boolean;

describe("reloadConfig", () => {
  test("a configuration the role takes replaces the old one; the old one's tables close", async () => {
    const old = defaultsOnlyConfig();
    const oldTable = openTable(table(), old);
    const next = defaultsOnlyConfig();
    const newTable = openTable(table(), next);
    expect(reloadConfig(old, () => next, () => {})).toBe(next);
    expect(await closed(oldTable)).toBe(true);
    expect(await closed(newTable)).toBe(false);
  });

  test("a configuration the role refuses: the old one stays, and what the refused one opened is closed", async () => {
    const old = defaultsOnlyConfig();
    const shared = table();
    const oldTable = openTable(shared, old);
    const next = defaultsOnlyConfig();
    let opened: Table | undefined;
    const kept = reloadConfig(
      old,
      () => next,
      (c) => {
        openTable(shared, c);
        opened = openTable(table(), c);
        throw new Error("cannot build the role from it");
      },
    );
    expect(kept).toBe(old);
    expect(await closed(opened!)).toBe(true);
    // the table both opened stays: the configuration in use still holds it
    expect(await closed(oldTable)).toBe(false);
  });

  test("a configuration that cannot be read leaves the old one in use", async () => {
    const old = defaultsOnlyConfig();
    const oldTable = openTable(table(), old);
    const kept = reloadConfig(old, () => {
      throw new Error("bad main.cf");
    });
    expect(kept).toBe(old);
    expect(await closed(oldTable)).toBe(false);
  });
});
