/**
 * The daemon skeleton's reload step (reloadConfig in src/daemon/skeleton.ts): a configuration the role
 * takes replaces the old one, whose tables close; a configuration the role refuses leaves the old one in
 * use and gives back at once what it opened meanwhile. Texthash files in a temporary directory.
 */
import { describe, expect, test } from "bun:test";
import { reloadConfig } from "../../../src/daemon/skeleton.ts";
import { defaultsOnlyConfig } from "../../../src/global/config/config.ts";
import { openTable } from "../../../src/global/tables/open-table.ts";
import type { Table } from "../../../src/global/tables/table.ts";
import { tableFiles } from "../../helpers/table-files.ts";

const { table, closed } = tableFiles("postern-reload-config-");

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
