/**
 * hash: specifics: the SQLite index is found beside its source, a rebuilt or
 * changed index is seen by an open table without reopening it, a missing or
 * foreign index is a TableError (a temporary failure), folding can be
 * turned off, and the index is written atomically with the mode asked for.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HashTable } from "../../../../src/global/tables/hash-table.ts";
import { IndexFile, indexPathOf, writeIndexFile } from "../../../../src/global/tables/hash-index.ts";
import { TableError } from "../../../../src/global/tables/table.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";

const dir = tempDir("postern-hash-");
afterAll(() => removeDir(dir));

/** Polls `probe` until it returns `want` or 5 s pass; returns the last answer. */
async function eventually<T>(probe: () => Promise<T>, want: T): Promise<T> {
  let last = await probe();
  for (let i = 0; i < 100 && last !== want; i++) {
    await Bun.sleep(100);
    last = await probe();
  }
  return last;
}

describe("hash: index files", () => {
  test("the index is SOURCE.sqlite", () => {
    expect(indexPathOf("/etc/aliases")).toBe("/etc/aliases.sqlite");
  });

  test("writeIndexFile leaves no temporary file and sets the mode", () => {
    const src = join(dir, "modes");
    writeIndexFile(indexPathOf(src), [["a", "1"]], { mode: 0o640 });
    expect(statSync(indexPathOf(src)).mode & 0o777).toBe(0o640);
    expect(readdirSync(dir).filter((n) => n.includes(".tmp"))).toEqual([]);
  });

  test("entries come back in source order", async () => {
    const src = join(dir, "order");
    writeIndexFile(indexPathOf(src), [["zeta", "1"], ["alpha", "2"], ["mid", "3"]], { mode: 0o644 });
    const t = new HashTable(`hash:${src}`, src);
    const seen: string[] = [];
    for await (const [k] of t.entries()) seen.push(k);
    expect(seen).toEqual(["zeta", "alpha", "mid"]);
    t.close();
  });

  test("IndexFile.update adds, replaces and deletes in one transaction", () => {
    const src = join(dir, "update");
    writeIndexFile(indexPathOf(src), [["a", "1"]], { mode: 0o644 });
    const ix = IndexFile.open(indexPathOf(src), true);
    const deleted = ix.update((e) => {
      e.put("b", "2");
      e.put("a", "one");
      return [e.delete("b"), e.delete("missing")];
    });
    expect(deleted).toEqual([true, false]);
    expect(ix.get("a")).toBe("one");
    expect(ix.get("b")).toBeUndefined();
    ix.close();
  });

  test("a failing update changes nothing", () => {
    const src = join(dir, "rollback");
    writeIndexFile(indexPathOf(src), [["a", "1"]], { mode: 0o644 });
    const ix = IndexFile.open(indexPathOf(src), true);
    expect(() =>
      ix.update((e) => {
        e.put("a", "changed");
        throw new Error("stop");
      }),
    ).toThrow("stop");
    expect(ix.get("a")).toBe("1");
    ix.close();
  });
});

describe("hash: tables", () => {
  test("a rebuilt index is seen by the open table's very next lookup, without reopening it", async () => {
    const src = join(dir, "rebuilt");
    writeFileSync(src, "k old\n");
    writeIndexFile(indexPathOf(src), [["k", "old"]], { mode: 0o644 });
    const t = new HashTable(`hash:${src}`, src);
    expect(await t.lookup("k")).toBe("old");
    const inodeBefore = statSync(indexPathOf(src)).ino;
    writeIndexFile(indexPathOf(src), [["k", "new"], ["added", "yes"]], { mode: 0o644 });
    // the rebuild renamed a new file into place
    expect(statSync(indexPathOf(src)).ino).not.toBe(inodeBefore);
    // no waiting: a message sent right after newaliases/postmap must see the new table
    expect(await t.lookup("k")).toBe("new");
    expect(await t.lookup("added")).toBe("yes");
    t.close();
  });

  test("an index changed in place (postmap -i, -d) is seen too", async () => {
    const src = join(dir, "inplace");
    writeIndexFile(indexPathOf(src), [["k", "v"]], { mode: 0o644 });
    const t = new HashTable(`hash:${src}`, src);
    expect(await t.lookup("k")).toBe("v");
    const ix = IndexFile.open(indexPathOf(src), true);
    ix.update((e) => {
      e.put("k2", "v2");
      e.delete("k");
    });
    ix.close();
    expect(await eventually(() => t.lookup("k2"), "v2")).toBe("v2");
    expect(await t.lookup("k")).toBeUndefined();
    t.close();
  });

  test("a missing index is a TableError naming the file, not 'not found'", async () => {
    const src = join(dir, "never-built");
    const t = new HashTable(`hash:${src}`, src);
    const err = await t.lookup("x").catch((e) => e);
    expect(err).toBeInstanceOf(TableError);
    expect(err.detail).toBe(`open database ${src}.sqlite: No such file or directory`);
  });

  test("a file that is not an index is a TableError", async () => {
    const src = join(dir, "foreign");
    writeFileSync(indexPathOf(src), "this is not sqlite at all, just text that is long enough to have a header..........\n");
    const t = new HashTable(`hash:${src}`, src);
    const err = await t.lookup("x").catch((e) => e);
    expect(err).toBeInstanceOf(TableError);
    expect(err.message).toContain("is not a postern index file");
  });

  test("keys fold to lower case unless opened with fold: false (postmap -f)", async () => {
    const src = join(dir, "fold");
    writeIndexFile(indexPathOf(src), [["lower", "1"], ["MiXed", "2"]], { mode: 0o644 });
    const folding = new HashTable(`hash:${src}`, src);
    const exact = new HashTable(`hash:${src}`, src, { fold: false });
    expect(await folding.lookup("LOWER")).toBe("1");
    expect(await folding.lookup("MiXed")).toBeUndefined();
    expect(await exact.lookup("LOWER")).toBeUndefined();
    expect(await exact.lookup("MiXed")).toBe("2");
    folding.close();
    exact.close();
  });

  test("owner() is the index file's owner", () => {
    const src = join(dir, "owner");
    writeIndexFile(indexPathOf(src), [["a", "1"]], { mode: 0o644 });
    const t = new HashTable(`hash:${src}`, src);
    const uid = statSync(indexPathOf(src)).uid;
    expect(t.owner()).toEqual(uid === 0 ? { status: "trusted", uid: 0 } : { status: "untrusted", uid });
    t.close();
  });
});
