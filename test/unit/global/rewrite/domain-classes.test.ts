/**
 * The resolver's domain lists beyond plain names: mydestination and
 * relay_domains entries that are tables or files are looked up (a lookup
 * failure is a TableError for the caller to turn into a temporary error),
 * and a domain listed in two classes gets Postfix's warning "do not list
 * domain X in BOTH A and B" (helpful_warnings), with the class Postfix
 * picks still winning.
 */
import { afterAll, afterEach, describe, expect, spyOn, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig, type Config } from "../../../../src/global/config/config.ts";
import { isLocalDomain, resolveRecipient } from "../../../../src/global/rewrite/resolve.ts";
import { indexPathOf, writeIndexFile } from "../../../../src/global/tables/hash-index.ts";
import { closeAllTables } from "../../../../src/global/tables/open-table.ts";
import { TableError } from "../../../../src/global/tables/table.ts";
import { log } from "../../../../src/util/log.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";

const dir = tempDir("postern-domain-classes-");
afterAll(() => {
  closeAllTables();
  removeDir(dir);
});

function config(settings: Record<string, string>): Config {
  const d = mkdtempSync(join(dir, "cf-"));
  const all = { myhostname: "mail.example.test", mydomain: "example.test", inet_interfaces: "loopback-only", ...settings };
  writeFileSync(join(d, "postern.toml"), Object.entries(all).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join("\n") + "\n");
  return loadConfig(d);
}

function hashTable(name: string, entries: Record<string, string>): string {
  const src = join(dir, name);
  writeFileSync(src, Object.entries(entries).map(([k, v]) => `${k} ${v}\n`).join(""));
  writeIndexFile(indexPathOf(src), Object.entries(entries).map(([k, v]) => [k.toLowerCase(), v] as [string, string]), { mode: 0o644 });
  return `hash:${src}`;
}

describe("mydestination tables in the resolver", () => {
  const mydest = hashTable("mydest", { "hosted.example": "OK" });

  test("a domain found in a mydestination table is local: stripped, local transport", async () => {
    const c = config({ mydestination: `$myhostname, ${mydest}` });
    expect(await isLocalDomain(c, "hosted.example")).toBe(true);
    expect(await resolveRecipient(c, "alice@Hosted.Example")).toMatchObject({ address: "alice@hosted.example", addressClass: "local", transport: "local", nexthop: "mail.example.test" });
    // routing through the table's domain ends at the next hop, as through a named one
    expect(await resolveRecipient(c, "bob%remote.example@hosted.example")).toMatchObject({ address: "bob@remote.example", addressClass: "default" });
    expect(await resolveRecipient(c, "carol@elsewhere.example")).toMatchObject({ addressClass: "default", transport: "smtp" });
  });

  test("a mydestination table that cannot answer makes the resolution fail with TableError (defer / 451), not 'remote'", async () => {
    const c = config({ mydestination: `$myhostname, hash:${join(dir, "missing-table")}` });
    await expect(resolveRecipient(c, "alice@hosted.example")).rejects.toBeInstanceOf(TableError);
    // a name listed before the table answers without it
    expect(await resolveRecipient(c, "alice@mail.example.test")).toMatchObject({ addressClass: "local" });
  });

  test("the seed's mydestination = $myhostname, $transport_maps: a domain with a transport entry is local", async () => {
    const transport = hashTable("transport", { "hosted.example": "virtual:" });
    const c = config({ transport_maps: transport, mydestination: "$myhostname, $transport_maps" });
    expect(await resolveRecipient(c, "alice@hosted.example")).toMatchObject({ addressClass: "local" });
  });

  test("relay_domains tables: the domain and its subdomains are the relay class", async () => {
    const c = config({ mydestination: "$myhostname", relay_domains: hashTable("relay", { "relay.example": "OK" }) });
    expect(await resolveRecipient(c, "a@relay.example")).toMatchObject({ addressClass: "relay", transport: "relay" });
    expect(await resolveRecipient(c, "a@sub.relay.example")).toMatchObject({ addressClass: "relay" });
    expect(await resolveRecipient(c, "a@other.example")).toMatchObject({ addressClass: "default" });
  });
});

describe("a domain listed in two classes", () => {
  let warn: ReturnType<typeof spyOn<typeof log, "warn">> | undefined;
  afterEach(() => warn?.mockRestore());
  const warnings = () => (warn?.mock.calls ?? []).map((c) => c[0]);
  const watch = () => {
    warn = spyOn(log, "warn").mockImplementation(() => {});
  };

  test.each<[string, Record<string, string>, string, string[]]>([
    ["mydestination and virtual_mailbox_domains", { mydestination: "$myhostname, both.example", virtual_mailbox_domains: "both.example" }, "local", ["do not list domain both.example in BOTH mydestination and virtual_mailbox_domains"]],
    ["mydestination and virtual_alias_domains", { mydestination: "$myhostname, both.example", virtual_alias_domains: "both.example" }, "local", ["do not list domain both.example in BOTH mydestination and virtual_alias_domains"]],
    [
      "virtual_alias_domains and virtual_mailbox_domains",
      { mydestination: "$myhostname", virtual_alias_domains: "both.example", virtual_mailbox_domains: "both.example" },
      "virtual_alias",
      ["do not list domain both.example in BOTH virtual_alias_domains and virtual_mailbox_domains"],
    ],
    ["virtual_alias_domains and relay_domains", { mydestination: "$myhostname", virtual_alias_domains: "both.example", relay_domains: "both.example" }, "virtual_alias", ["do not list domain both.example in BOTH virtual_alias_domains and relay_domains"]],
    ["virtual_mailbox_domains and relay_domains", { mydestination: "$myhostname", virtual_mailbox_domains: "both.example", relay_domains: "example" }, "virtual_mailbox", ["do not list domain both.example in BOTH virtual_mailbox_domains and relay_domains"]],
    // relay_domains used to default to $mydestination: Postfix does not nag about that pair
    ["mydestination and relay_domains (no warning)", { mydestination: "$myhostname, both.example", relay_domains: "$mydestination" }, "local", []],
  ])("%s: Postfix's warning, Postfix's class", async (_name, settings, addressClass, expected) => {
    const c = config(settings);
    watch();
    expect(await resolveRecipient(c, "user@both.example")).toMatchObject({ addressClass });
    expect(warnings()).toEqual(expected);
  });

  test("found through tables too (virtual_mailbox_domains = $virtual_mailbox_maps)", async () => {
    const maps = hashTable("vmailbox", { "both.example": "OK", "user@both.example": "both.example/user/" });
    const c = config({ mydestination: `$myhostname, ${hashTable("mydest2", { "both.example": "OK" })}`, virtual_mailbox_maps: maps });
    watch();
    expect(await resolveRecipient(c, "user@both.example")).toMatchObject({ addressClass: "local" });
    expect(warnings()).toEqual(["do not list domain both.example in BOTH mydestination and virtual_mailbox_domains"]);
  });

  test("helpful_warnings = no: silent; a domain in one class: silent", async () => {
    watch();
    await resolveRecipient(config({ helpful_warnings: "no", mydestination: "$myhostname, both.example", virtual_mailbox_domains: "both.example" }), "user@both.example");
    await resolveRecipient(config({ mydestination: "$myhostname", virtual_mailbox_domains: "one.example" }), "user@one.example");
    expect(warnings()).toEqual([]);
  });

  test("a list that cannot answer while looking for overlaps leaves the resolution as it is", async () => {
    const c = config({ mydestination: "$myhostname, both.example", virtual_mailbox_domains: "fail:broken" });
    watch();
    expect(await resolveRecipient(c, "user@both.example")).toMatchObject({ addressClass: "local" });
    expect(warnings()).toEqual([]);
  });
});
