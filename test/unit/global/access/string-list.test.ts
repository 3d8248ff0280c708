/** Postfix's string lists (authorized_*_users) and the user ACL check built on them. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { matchStringList } from "../../../../src/global/access/string-list.ts";
import { checkUserAcl } from "../../../../src/global/access/user-acl.ts";
import { ConfigError } from "../../../../src/global/config/source.ts";
import { Config } from "../../../../src/global/config/config.ts";
import { readConfigSource } from "../../../../src/global/config/source.ts";

const dir = mkdtempSync(join(tmpdir(), "postern-strlist-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const opts = { paramName: "authorized_submit_users" };
const match = (patterns: string[], key: string) => matchStringList(patterns, key, opts);

describe("matchStringList", () => {
  test("names match exactly, case included", async () => {
    expect(await match(["alice", "bob"], "bob")).toBe(true);
    expect(await match(["alice", "bob"], "Bob")).toBe(false);
    expect(await match(["alice"], "alice2")).toBe(false);
  });

  test("no match and the empty list mean no", async () => {
    expect(await match([], "root")).toBe(false);
    expect(await match(["alice"], "root")).toBe(false);
  });

  test("the first matching pattern decides; ! negates", async () => {
    expect(await match(["!bob", "static:anyone"], "bob")).toBe(false);
    expect(await match(["!bob", "static:anyone"], "alice")).toBe(true);
    expect(await match(["bob", "!bob"], "bob")).toBe(true);
    expect(await match(["!!bob"], "bob")).toBe(true);
  });

  test("static:anyone matches everybody", async () => {
    expect(await match(["static:anyone"], "anybody")).toBe(true);
  });

  test("/file/name holds more patterns; a decision inside it is final", async () => {
    const file = join(dir, "users");
    writeFileSync(file, "# submitters\nalice, carol\n!mallory\n");
    expect(await match([file], "carol")).toBe(true);
    expect(await match([file, "static:anyone"], "mallory")).toBe(false);
    expect(await match([file, "static:anyone"], "dave")).toBe(true);
    expect(await match([file], "dave")).toBe(false);
  });

  test("a missing file is a configuration error", async () => {
    await expect(match([join(dir, "missing")], "alice")).rejects.toBeInstanceOf(ConfigError);
  });

  test("other lookup tables need a lookup function; without one they are a clear error", async () => {
    await expect(match(["hash:/etc/postern/submitters"], "alice")).rejects.toThrow('lookup table "hash:/etc/postern/submitters" is not supported yet');
    const lookup = async (table: string, key: string) => (table === "inline:{alice=ok}" && key === "alice" ? "ok" : undefined);
    expect(await matchStringList(["inline:{alice=ok}"], "alice", { ...opts, lookup })).toBe(true);
    expect(await matchStringList(["inline:{alice=ok}"], "bob", { ...opts, lookup })).toBe(false);
  });
});

describe("checkUserAcl", () => {
  function config(text: string): Config {
    const d = mkdtempSync(join(dir, "conf-"));
    writeFileSync(join(d, "postern.toml"), text);
    return new Config(readConfigSource(d));
  }

  test("root by name, with the default list and with a list that leaves it out", async () => {
    expect(await checkUserAcl(config(""), "authorized_submit_users", 0)).toEqual({ allowed: true, user: "root", uid: 0 });
    expect(await checkUserAcl(config('authorized_submit_users = "alice, bob"\n'), "authorized_submit_users", 0)).toEqual({ allowed: false, user: "root", uid: 0 });
    expect((await checkUserAcl(config('authorized_submit_users = ""\n'), "authorized_submit_users", 0)).allowed).toBe(false);
  });

  test("a uid without a password entry is matched by its number", async () => {
    const r = await checkUserAcl(config('authorized_mailq_users = "4242424"\n'), "authorized_mailq_users", 4242424);
    expect(r).toEqual({ allowed: true, user: "4242424", uid: 4242424 });
  });
});
