/**
 * Table backends loaded on first open (issue 16: memory per process): the LazyTable that stands for an
 * ldap:/mysql:/pgsql: table while its module loads, and openTable()'s use of it.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LazyTable } from "../../../../src/global/tables/lazy-table.ts";
import { openTableLoaded, openTableUncached } from "../../../../src/global/tables/open-table.ts";
import { TableError, type Table } from "../../../../src/global/tables/table.ts";

function fakeBackend(closed: string[]): Table {
  return {
    spec: "ldap:/x.cf",
    kind: "fixed",
    lookup: async (key) => (key === "k" ? "v" : undefined),
    owner: () => ({ status: "untrusted", uid: 42 }),
    close: () => closed.push("closed"),
  };
}

describe("LazyTable", () => {
  test("lookups wait for the backend and go to it; owner() then is the backend's", async () => {
    let resolve!: (t: Table) => void;
    const t = new LazyTable("ldap:/x.cf", "/x.cf", new Promise<Table>((r) => (resolve = r)));
    const pending = t.lookup("k");
    resolve(fakeBackend([]));
    expect(await pending).toBe("v");
    expect(await t.lookup("other")).toBeUndefined();
    expect(t.owner()).toEqual({ status: "untrusted", uid: 42 });
    expect(t.kind).toBe("fixed");
  });

  test("a backend that fails to load is a TableError at every lookup, never 'not found'", async () => {
    const t = new LazyTable("ldap:/x.cf", "/x.cf", Promise.reject(new Error("module gone")));
    const err = await t.lookup("k").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TableError);
    expect((err as TableError).message).toBe("ldap:/x.cf: cannot load the table's backend: module gone");
    await expect(t.lookup("k")).rejects.toThrow("module gone");
    expect(() => t.owner()).toThrow("module gone");
  });

  test("owner() before the backend is there: the settings file's owner, or a TableError naming it", () => {
    const dir = mkdtempSync(join(tmpdir(), "lazy-table-"));
    try {
      const cf = join(dir, "t.cf");
      writeFileSync(cf, "query = x\n");
      const never = new Promise<Table>(() => {});
      expect(new LazyTable(`mysql:${cf}`, cf, never).owner()).toEqual(process.getuid!() === 0 ? { status: "trusted", uid: 0 } : { status: "untrusted", uid: process.getuid!() });
      expect(() => new LazyTable(`mysql:${dir}/none.cf`, `${dir}/none.cf`, never).owner()).toThrow(`mysql:${dir}/none.cf: open ${dir}/none.cf: No such file or directory`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("closed before the backend arrives: the backend is closed when it does, lookups are refused", async () => {
    const closed: string[] = [];
    let resolve!: (t: Table) => void;
    const t = new LazyTable("ldap:/x.cf", "/x.cf", new Promise<Table>((r) => (resolve = r)));
    t.close();
    resolve(fakeBackend(closed));
    await t.backend();
    expect(closed).toEqual(["closed"]);
    await expect(t.lookup("k")).rejects.toThrow("table is closed");
  });
});

describe("openTable with backends loaded on first open", () => {
  test("ldap:, mysql: and pgsql: open at once; once loaded, a later open gets the backend itself", async () => {
    for (const type of ["ldap", "mysql", "pgsql"]) {
      const first = openTableUncached(`${type}:/nonexistent/${type}.cf`, undefined);
      const loaded = await openTableLoaded(`${type}:/nonexistent/${type}.cf`, undefined);
      expect(loaded).not.toBeInstanceOf(LazyTable);
      expect(typeof (loaded as Table & { connectCheck?: unknown }).connectCheck).toBe("function");
      const later = openTableUncached(`${type}:/nonexistent/${type}.cf`, undefined);
      expect(later.constructor).toBe(loaded.constructor);
      // the same error either way: the settings file is read at the first lookup
      await expect(first.lookup("k")).rejects.toThrow("No such file or directory");
      await expect(later.lookup("k")).rejects.toThrow("No such file or directory");
      for (const t of [first, loaded, later]) t.close();
    }
  });

  test("a settings file with a bad value: no open throws; every form fails the lookup with the same TableError", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lazy-table-"));
    try {
      const sql = "hosts = 127.0.0.1:1\ndbname = x\nquery = SELECT %q\n";
      for (const [type, text, error] of [
        ["mysql", sql, "invalid query template: SELECT %q"],
        ["pgsql", sql, "invalid query template: SELECT %q"],
        ["ldap", "server_host = ldap://127.0.0.1:1\nsearch_base = dc=x\ntimeout = abc\n", "bad numerical configuration: timeout = abc"],
      ] as const) {
        const cf = join(dir, `${type}.cf`);
        writeFileSync(cf, text);
        const spec = `${type}:${cf}`;
        // the lazy form, whatever this process has loaded already; then the backend itself
        const lazy = new LazyTable(spec, cf, openTableLoaded(spec, undefined));
        const loaded = await openTableLoaded(spec, undefined);
        const later = openTableUncached(spec, undefined);
        const errors = await Promise.all([lazy, loaded, later].map((t) => t.lookup("k").catch((e: unknown) => e)));
        for (const err of errors) {
          expect(err).toBeInstanceOf(TableError);
          expect((err as TableError).message).toBe((errors[0] as TableError).message);
        }
        expect((errors[0] as TableError).message).toContain(error);
        for (const t of [lazy, loaded, later]) t.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an unknown type is still refused at open, before anything loads", () => {
    expect(() => openTableUncached("nosuch:x", undefined)).toThrow("unsupported dictionary type: nosuch");
    expect(() => openTableUncached("memcache:/x.cf", undefined)).toThrow("unsupported dictionary type: memcache");
  });
});
