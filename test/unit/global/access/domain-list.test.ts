/**
 * Postfix's domain lists (mydestination, virtual_alias_domains,
 * virtual_mailbox_domains: names match themselves; relay_domains: names
 * match their subdomains too): names, /file/name, type:table and `!`,
 * case folded; a table or file that cannot answer is a TableError, never
 * "not listed".
 */
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { domainListMatches } from "../../../../src/global/access/domain-list.ts";
import { loadConfig, type Config } from "../../../../src/global/config/config.ts";
import { indexPathOf, writeIndexFile } from "../../../../src/global/tables/hash-index.ts";
import { closeAllTables } from "../../../../src/global/tables/open-table.ts";
import { TableError } from "../../../../src/global/tables/table.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";

const dir = tempDir("postern-domain-list-");
afterAll(() => {
  closeAllTables();
  removeDir(dir);
});

function config(settings: Record<string, string>): Config {
  const d = mkdtempSync(join(dir, "cf-"));
  writeFileSync(join(d, "postern.toml"), Object.entries({ myhostname: "mail.example.test", ...settings }).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join("\n") + "\n");
  return loadConfig(d);
}

/** A hash: table built as postmap builds it. */
function hashTable(name: string, keys: string[]): string {
  const src = join(dir, name);
  writeFileSync(src, keys.map((k) => `${k} OK\n`).join(""));
  writeIndexFile(indexPathOf(src), keys.map((k) => [k.toLowerCase(), "OK"] as [string, string]), { mode: 0o644 });
  return `hash:${src}`;
}

describe("mydestination entries that are tables and files", () => {
  const hash = hashTable("mydest", ["hosted.example", "Other.Example"]);
  const file = join(dir, "mydest.list");
  writeFileSync(file, "# our domains\nfile.example, second.example\nthird.example\n");
  const db = join(dir, "domains.db");
  const sqlite = new Database(db, { create: true });
  sqlite.run("CREATE TABLE domains (domain TEXT PRIMARY KEY, transport TEXT)");
  sqlite.run("INSERT INTO domains VALUES ('sql.example', 'virtual:')");
  sqlite.close();
  const cf = join(dir, "domains.cf");
  writeFileSync(cf, `dbpath = ${db}\ntable = domains\nselect_field = transport\nwhere_field = domain\n`);

  test("a hash: table, a /file/name and an sqlite: table are looked up, names beside them still match", async () => {
    const c = config({ mydestination: `$myhostname, ${hash}, ${file}, sqlite:${cf}` });
    for (const d of ["mail.example.test", "hosted.example", "HOSTED.example.", "other.example", "file.example", "second.example", "third.example", "sql.example"]) {
      expect([d, await domainListMatches(c, "mydestination", d)]).toEqual([d, true]);
    }
    for (const d of ["sub.hosted.example", "example", "elsewhere.example", "sub.sql.example"]) {
      expect([d, await domainListMatches(c, "mydestination", d)]).toEqual([d, false]);
    }
  });

  test("! excludes, the first decision wins, inside a file too", async () => {
    const neg = join(dir, "neg.list");
    writeFileSync(neg, "!file.example\n");
    const c = config({ mydestination: `${neg}, ${file}` });
    expect(await domainListMatches(c, "mydestination", "file.example")).toBe(false);
    expect(await domainListMatches(c, "mydestination", "second.example")).toBe(true);
  });

  test("a table that cannot answer is a TableError, not 'not local'", async () => {
    const c = config({ mydestination: "$myhostname, fail:broken" });
    expect(await domainListMatches(c, "mydestination", "mail.example.test")).toBe(true);
    await expect(domainListMatches(c, "mydestination", "hosted.example")).rejects.toBeInstanceOf(TableError);
    const missing = config({ mydestination: `hash:${join(dir, "no-such-table")}` });
    await expect(domainListMatches(missing, "mydestination", "hosted.example")).rejects.toBeInstanceOf(TableError);
  });

  test("a /file/name that cannot be read is a TableError too (Postfix's surrogate table)", async () => {
    const c = config({ mydestination: join(dir, "no-such-file") });
    await expect(domainListMatches(c, "mydestination", "hosted.example")).rejects.toBeInstanceOf(TableError);
    if (process.getuid?.() !== 0) {
      const unreadable = join(dir, "unreadable.list");
      writeFileSync(unreadable, "x.example\n");
      chmodSync(unreadable, 0);
      await expect(domainListMatches(config({ mydestination: unreadable }), "mydestination", "x.example")).rejects.toBeInstanceOf(TableError);
    }
  });
});

describe("relay_domains: names and tables match subdomains too", () => {
  const hash = hashTable("relay", ["relay.example"]);

  test("a table of literal keys is asked for the parent domains", async () => {
    const c = config({ relay_domains: hash });
    expect(await domainListMatches(c, "relay_domains", "relay.example")).toBe(true);
    expect(await domainListMatches(c, "relay_domains", "deep.sub.relay.example")).toBe(true);
    expect(await domainListMatches(c, "relay_domains", "notrelay.example")).toBe(false);
  });

  test("names in a /file/name match subdomains, as names in the value do", async () => {
    const file = join(dir, "relay.list");
    writeFileSync(file, "filerelay.example\n");
    const c = config({ relay_domains: file });
    expect(await domainListMatches(c, "relay_domains", "a.filerelay.example")).toBe(true);
  });

  test("fast_flush_domains (default $relay_domains) matches as relay_domains does", async () => {
    const c = config({ relay_domains: hash });
    expect(await domainListMatches(c, "fast_flush_domains", "sub.relay.example")).toBe(true);
    expect(await domainListMatches(c, "fast_flush_domains", "other.example")).toBe(false);
  });

  test("mydestination does not match subdomains, of names or of table keys", async () => {
    const c = config({ mydestination: `relay.example, ${hash}` });
    expect(await domainListMatches(c, "mydestination", "sub.relay.example")).toBe(false);
  });
});
