/**
 * cleanup's virtual alias expansion against texthash tables, with the
 * examples of Postfix's virtual(5) and VIRTUAL_README: one-to-many,
 * catch-all @domain, user+ext with propagate_unmatched_extensions, an
 * address that maps to itself, loops and the expansion limits, and a table
 * that cannot be read (deferred, never passed through unrewritten).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultsOnlyConfig } from "../../../src/global/config/config.ts";
import { closeAllTables } from "../../../src/global/tables/open-table.ts";
import { AliasExpansionError, expandRecipients, expandVirtualAlias, virtualAliasSettings } from "../../../src/cleanup/virtual-alias.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const dir = tempDir("postern-valias-");
afterAll(() => {
  closeAllTables();
  removeDir(dir);
});

let n = 0;
function settings(table: string, over: Record<string, string> = {}) {
  const path = join(dir, `virtual${n++}`);
  writeFileSync(path, table);
  const config = defaultsOnlyConfig().withOverrides({
    myhostname: "mx.example.com",
    mydomain: "example.com",
    myorigin: "example.com",
    mydestination: "localhost, mx.example.com",
    recipient_delimiter: "+",
    virtual_alias_maps: `texthash:${path}`,
    ...over,
  });
  const s = virtualAliasSettings(config);
  if (!s) throw new Error("no virtual_alias_maps");
  return s;
}

// VIRTUAL_README's "virtual alias domain" example
const README = `postmaster@example.com postmaster
info@example.com       joe
sales@example.com      jane
@example.com           jim
`;

describe("expandVirtualAlias", () => {
  test("an address in the table is replaced by its result, a bare user gets @myorigin", async () => {
    const s = settings(README, { myorigin: "mx.example.com" });
    expect(await expandVirtualAlias("info@example.com", s)).toEqual(["joe@mx.example.com"]);
    expect(await expandVirtualAlias("postmaster@example.com", s)).toEqual(["postmaster@mx.example.com"]);
  });

  test("the catch-all @domain takes every other user of the domain", async () => {
    const s = settings(README, { myorigin: "mx.example.com" });
    expect(await expandVirtualAlias("nobody-here@example.com", s)).toEqual(["jim@mx.example.com"]);
  });

  test("an address in no table is left alone", async () => {
    const s = settings(README);
    expect(await expandVirtualAlias("someone@example.net", s)).toEqual(["someone@example.net"]);
  });

  test("one-to-many, each result expanded in turn", async () => {
    const s = settings("list@example.com a@example.com, b@example.com c@example.com\nb@example.com bee@example.net\n");
    expect(await expandVirtualAlias("list@example.com", s)).toEqual(["a@example.com", "bee@example.net", "c@example.com"]);
  });

  test("nested aliases are followed to the end", async () => {
    const s = settings("a@example.com b@example.com\nb@example.com c@example.org\n");
    expect(await expandVirtualAlias("a@example.com", s)).toEqual(["c@example.org"]);
  });

  test("@otherdomain maps the same user into another domain", async () => {
    const s = settings("@example.com @example.net\n");
    expect(await expandVirtualAlias("joe@example.com", s)).toEqual(["joe@example.net"]);
  });

  test("user+ext: found without its extension, which is copied to the result", async () => {
    const s = settings("joe@example.com joe@example.net\n");
    expect(await expandVirtualAlias("joe+box@example.com", s)).toEqual(["joe+box@example.net"]);
    const noPropagate = settings("joe@example.com joe@example.net\n", { propagate_unmatched_extensions: "canonical" });
    expect(await expandVirtualAlias("joe+box@example.com", noPropagate)).toEqual(["joe@example.net"]);
  });

  test("an address that maps to itself is kept (virtual(5): user@domain user@domain, other@domain)", async () => {
    const s = settings("joe@example.com joe@example.com, joe@example.net\n");
    expect(await expandVirtualAlias("joe@example.com", s)).toEqual(["joe@example.com", "joe@example.net"]);
    const first = settings("joe@example.com joe@example.net, JOE@example.com\n");
    expect(await expandVirtualAlias("joe@example.com", first)).toEqual(["joe@example.net", "JOE@example.com"]);
  });

  test("the bare local part is looked up only for local domains", async () => {
    const s = settings("joe joe@example.net\n");
    expect(await expandVirtualAlias("joe@mx.example.com", s)).toEqual(["joe@example.net"]);
    expect(await expandVirtualAlias("joe@example.org", s)).toEqual(["joe@example.org"]);
  });

  test("a loop is refused after virtual_alias_recursion_limit lookups: the message is deferred", async () => {
    const s = settings("a@example.com b@example.com\nb@example.com a@example.com\n");
    const err = await expandVirtualAlias("a@example.com", s).catch((e) => e);
    expect(err).toBeInstanceOf(AliasExpansionError);
    expect(err.status).toBe("4.6.0");
    expect(err.warning).toContain("unreasonable virtual_alias_maps map nesting for a@example.com");
  });

  test("more addresses than virtual_alias_expansion_limit defer the message", async () => {
    const s = settings("big@example.com a@example.org b@example.org c@example.org d@example.org\n", { virtual_alias_expansion_limit: "3" });
    const err = await expandVirtualAlias("big@example.com", s).catch((e) => e);
    expect(err).toBeInstanceOf(AliasExpansionError);
    expect(err.warning).toContain("unreasonable virtual_alias_maps map expansion size for big@example.com");
    const fits = settings("big@example.com a@example.org b@example.org c@example.org\n", { virtual_alias_expansion_limit: "3" });
    expect(await expandVirtualAlias("big@example.com", fits)).toHaveLength(3);
  });

  test("a result longer than virtual_alias_address_length_limit defers the message", async () => {
    const s = settings(`long@example.com ${"x".repeat(40)}@example.org\n`, { virtual_alias_address_length_limit: "20" });
    expect(await expandVirtualAlias("long@example.com", s).catch((e) => e)).toBeInstanceOf(AliasExpansionError);
  });

  test("a table that cannot be read defers the message, never passes the address through", async () => {
    const s = settings(README);
    const missing = virtualAliasSettings(
      defaultsOnlyConfig().withOverrides({ myorigin: "example.com", mydomain: "example.com", virtual_alias_maps: `texthash:${join(dir, "no-such-table")}` }),
    )!;
    const err = await expandVirtualAlias("info@example.com", missing).catch((e) => e);
    expect(err).toBeInstanceOf(AliasExpansionError);
    expect(err.lookupFailed).toBe(true);
    expect(err.warning).toContain("virtual_alias_maps map lookup problem for info@example.com");
    expect(s.tables.length).toBe(1);
  });

  test("virtual_maps, the old name, is what virtual_alias_maps defaults to", async () => {
    const path = join(dir, "old-name");
    writeFileSync(path, "info@example.com joe@example.net\n");
    const s = virtualAliasSettings(defaultsOnlyConfig().withOverrides({ myorigin: "example.com", mydomain: "example.com", virtual_maps: `texthash:${path}` }))!;
    expect(await expandVirtualAlias("info@example.com", s)).toEqual(["joe@example.net"]);
  });
});

describe("expandRecipients", () => {
  test("each result keeps the original recipient and ORCPT; duplicates are written once", async () => {
    const s = settings("list@example.com a@example.net, b@example.net\nother@example.com a@example.net\n");
    const out = await expandRecipients(
      [
        { address: "list@example.com", original: "list@example.com", orcpt: "rfc822;list@example.com" },
        { address: "other@example.com", original: "list@example.com", orcpt: "rfc822;list@example.com" },
      ],
      s,
    );
    expect(out).toEqual([
      { address: "a@example.net", original: "list@example.com", orcpt: "rfc822;list@example.com" },
      { address: "b@example.net", original: "list@example.com", orcpt: "rfc822;list@example.com" },
    ]);
  });

  test("without virtual_alias_maps nothing is rewritten", async () => {
    expect(virtualAliasSettings(defaultsOnlyConfig())).toBeUndefined();
    expect(await expandRecipients([{ address: "x@example.com" }], undefined)).toEqual([{ address: "x@example.com" }]);
  });

});
