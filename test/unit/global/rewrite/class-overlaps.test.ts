/**
 * postern check's report of domains listed in two address classes: the
 * domains the lists name (values, /file/name, keys of listable tables) are
 * classed as the resolver classes them, and each overlap the resolver
 * would warn about is reported once in Postfix's words.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig, type Config } from "../../../../src/global/config/config.ts";
import { domainClassOverlaps } from "../../../../src/global/rewrite/class-overlaps.ts";
import { closeAllTables } from "../../../../src/global/tables/open-table.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";

const dir = tempDir("postern-overlaps-");
afterAll(() => {
  closeAllTables();
  removeDir(dir);
});

function config(settings: Record<string, string>): Config {
  const d = mkdtempSync(join(dir, "cf-"));
  writeFileSync(join(d, "postern.toml"), Object.entries({ myhostname: "mail.example.test", ...settings }).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join("\n") + "\n");
  return loadConfig(d);
}

describe("domainClassOverlaps", () => {
  test("names, files and listable tables: each overlap once, the winning class first", async () => {
    const file = join(dir, "local.list");
    writeFileSync(file, "filed.example\n");
    const vmailbox = join(dir, "vmailbox");
    writeFileSync(vmailbox, "filed.example x\nalice@table.example table.example/alice/\ntable.example x\n");
    const c = config({
      mydestination: `$myhostname, named.example, ${file}`,
      virtual_alias_domains: "alias.example",
      virtual_mailbox_maps: `texthash:${vmailbox}`,
      virtual_mailbox_domains: "$virtual_mailbox_maps, named.example, alias.example",
      relay_domains: "example",
    });
    expect(await domainClassOverlaps(c)).toEqual([
      "do not list domain alias.example in BOTH virtual_alias_domains and virtual_mailbox_domains",
      "do not list domain alias.example in BOTH virtual_alias_domains and relay_domains",
      "do not list domain filed.example in BOTH mydestination and virtual_mailbox_domains",
      "do not list domain named.example in BOTH mydestination and virtual_mailbox_domains",
      "do not list domain table.example in BOTH virtual_mailbox_domains and relay_domains",
    ]);
  });

  test("separate lists: nothing to say", async () => {
    expect(await domainClassOverlaps(config({ mydestination: "$myhostname", virtual_mailbox_domains: "a.example", virtual_alias_domains: "b.example", relay_domains: "c.example" }))).toEqual([]);
  });

  test("a table that cannot be read is named, not taken for 'no overlap' silently", async () => {
    const out = await domainClassOverlaps(config({ mydestination: "$myhostname, both.example", virtual_mailbox_domains: "fail:broken" }));
    expect(out).toEqual([expect.stringContaining("cannot check the domain lists for a domain in two address classes: fail:broken")]);
  });
});
