/**
 * Address resolution as Postfix's trivial-rewrite resolves: the address
 * class, transport and next hop of a recipient, the resolver loop's
 * rewrites (local domains stripped, site!user, user%site, source routes,
 * domain literals), and transport_maps in transport(5)'s search order with
 * Postfix's rules for empty fields.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig, type Config } from "../../../../src/global/config/config.ts";
import { isLocalDomain, resolveRecipient, type AddressClass, type TransportLookup } from "../../../../src/global/rewrite/resolve.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

function config(extra: Record<string, string> = {}): Config {
  const dir = tempDir("postern-resolve-");
  dirs.push(dir);
  const settings: Record<string, string> = {
    myhostname: "mail.example.test",
    mydomain: "example.test",
    myorigin: "$mydomain",
    mydestination: "$myhostname, localhost.$mydomain, localhost",
    relay_domains: "relay.example, .sub.only.example",
    inet_interfaces: "loopback-only",
    ...extra,
  };
  writeFileSync(join(dir, "postern.toml"), Object.entries(settings).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join("\n") + "\n");
  return loadConfig(dir);
}

const base = config();

describe("address classes and default transports", () => {
  test.each<[string, string, AddressClass, string, string]>([
    ["alice@mail.example.test", "alice@mail.example.test", "local", "local", "mail.example.test"],
    ["alice@LOCALHOST.", "alice@localhost", "local", "local", "mail.example.test"],
    ["Alice@Mail.Example.Test", "Alice@mail.example.test", "local", "local", "mail.example.test"],
    ["bob@remote.example", "bob@remote.example", "default", "smtp", "remote.example"],
    ["bob@relay.example", "bob@relay.example", "relay", "relay", "relay.example"],
    ["bob@deep.relay.example", "bob@deep.relay.example", "relay", "relay", "deep.relay.example"],
    // ".domain" in relay_domains: subdomains only
    ["bob@sub.only.example", "bob@sub.only.example", "default", "smtp", "sub.only.example"],
    ["bob@x.sub.only.example", "bob@x.sub.only.example", "relay", "relay", "x.sub.only.example"],
  ])("%s", async (input, address, addressClass, transport, nexthop) => {
    expect(await resolveRecipient(base, input)).toEqual({ address, addressClass, routed: false, transport, nexthop, failed: false, invalid: false });
  });

  test("an address without a domain is local, completed with $myhostname (not $myorigin), as Postfix's resolver does", async () => {
    expect(await resolveRecipient(base, "alice")).toEqual({ address: "alice@mail.example.test", addressClass: "local", routed: false, transport: "local", nexthop: "mail.example.test", failed: false, invalid: false });
  });

  test("relayhost is the next hop of the relay and default classes, never of local mail", async () => {
    const c = config({ relayhost: "[smart.example]:587" });
    expect((await resolveRecipient(c, "bob@remote.example")).nexthop).toBe("[smart.example]:587");
    expect((await resolveRecipient(c, "bob@relay.example")).nexthop).toBe("[smart.example]:587");
    expect((await resolveRecipient(c, "bob@localhost")).nexthop).toBe("mail.example.test");
  });

  test("default_transport, relay_transport and local_transport with their next hops", async () => {
    const c = config({ default_transport: "error:5.7.1 no mail to the outside", relay_transport: "smtp:[relay.internal]", local_transport: "local:$mydomain" });
    expect(await resolveRecipient(c, "bob@remote.example")).toMatchObject({ transport: "error", nexthop: "5.7.1 no mail to the outside" });
    expect(await resolveRecipient(c, "bob@relay.example")).toMatchObject({ transport: "smtp", nexthop: "[relay.internal]" });
    expect(await resolveRecipient(c, "bob@localhost")).toMatchObject({ transport: "local", nexthop: "example.test" });
  });
});

describe("the resolver loop's rewrites", () => {
  test.each([
    // percent hack after a local domain, and on a bare local part
    ["user%remote.example@mail.example.test", "user@remote.example", "default"],
    ["user%remote.example", "user@remote.example", "default"],
    ["user%localhost@mail.example.test", "user@localhost", "local"],
    // the last "%" first, the loop goes on while the domains are local
    ["user%remote.example%localhost@mail.example.test", "user@remote.example", "default"],
    // bang paths: after a local domain too
    ["remote.example!user@mail.example.test", "user@remote.example", "default"],
    ["remote.example!user", "user@remote.example", "default"],
    ["a.example!b.example!user", "b.example!user@a.example", "default"],
    ["localhost!user@mail.example.test", "user@localhost", "local"],
    // source routes go
    ["@hop1.example,@hop2.example:user@remote.example", "user@remote.example", "default"],
    ["@hop1.example:user@localhost", "user@localhost", "local"],
    // a routing address hidden in quotes is looked into (resolve_dequoted)
    ['"user@remote.example"@mail.example.test', "user@remote.example", "default"],
    // quotes without routing operators stay
    ['"john doe"@mail.example.test', '"john doe"@mail.example.test', "local"],
  ])("%s -> %s", async (input, address, addressClass) => {
    expect(await resolveRecipient(base, input)).toMatchObject({ address, addressClass });
  });

  test("allow_percent_hack = no and swap_bangpath = no leave those characters alone", async () => {
    const c = config({ allow_percent_hack: "no", swap_bangpath: "no" });
    expect(await resolveRecipient(c, "user%remote.example@mail.example.test")).toMatchObject({ address: "user%remote.example@mail.example.test", addressClass: "local" });
    expect(await resolveRecipient(c, "remote.example!user@mail.example.test")).toMatchObject({ address: "remote.example!user@mail.example.test", addressClass: "local" });
  });

  test("domain literals: the machine's own addresses are local (inet_interfaces, proxy_interfaces)", async () => {
    expect(await resolveRecipient(base, "alice@[127.0.0.1]")).toMatchObject({ addressClass: "local", address: "alice@[127.0.0.1]" });
    expect(await resolveRecipient(base, "alice@[192.0.2.1]")).toMatchObject({ addressClass: "default", nexthop: "[192.0.2.1]" });
    const c = config({ inet_interfaces: "192.0.2.10", proxy_interfaces: "198.51.100.7" });
    expect(await isLocalDomain(c, "[192.0.2.10]")).toBe(true);
    expect(await isLocalDomain(c, "[198.51.100.7]")).toBe(true);
    expect(await isLocalDomain(c, "[127.0.0.1]")).toBe(false);
  });

  test("loopback-only means the loopback addresses, not every interface", async () => {
    const { networkInterfaces } = require("node:os") as typeof import("node:os");
    const external = Object.values(networkInterfaces()).flatMap((l) => l ?? []).find((a) => !a.internal && a.family === "IPv4");
    if (external) expect(await isLocalDomain(base, `[${external.address}]`)).toBe(false);
    expect(await isLocalDomain(config({ inet_interfaces: "all" }), `[${external?.address ?? "127.0.0.1"}]`)).toBe(true);
  });
});

/** A transport map as a lookup that records the keys it was asked, with their partial flag. */
function map(entries: Record<string, string>, asked: Array<[string, boolean]> = []): TransportLookup {
  return async (key, partial) => {
    asked.push([key, partial]);
    return entries[key];
  };
}

describe("transport_maps", () => {
  const delimited = config({ recipient_delimiter: "+" });

  test("search order: user+ext@domain, user@domain, domain, .parents, *; only the first key is whole", async () => {
    const asked: Array<[string, boolean]> = [];
    await resolveRecipient(delimited, "User+Ext@Mx.Sub.Example.COM", map({}, asked));
    expect(asked).toEqual([
      ["user+ext@mx.sub.example.com", false],
      ["user@mx.sub.example.com", true],
      ["mx.sub.example.com", true],
      [".sub.example.com", true],
      [".example.com", true],
      [".com", true],
      ["*", true],
    ]);
  });

  test("no extension split for postmaster and owner- addresses", async () => {
    const asked: Array<[string, boolean]> = [];
    await resolveRecipient(config({ recipient_delimiter: "-" }), "owner-list@remote.example", map({}, asked));
    expect(asked.map(([k]) => k)).toEqual(["owner-list@remote.example", "remote.example", ".example", "*"]);
  });

  test("the first match wins", async () => {
    const m = map({ "remote.example": "smtp:[first]", ".example": "smtp:[second]", "*": "smtp:[third]" });
    expect(await resolveRecipient(base, "u@remote.example", m)).toMatchObject({ transport: "smtp", nexthop: "[first]" });
    expect(await resolveRecipient(base, "u@other.example", m)).toMatchObject({ nexthop: "[second]" });
    expect(await resolveRecipient(base, "u@other.test", m)).toMatchObject({ nexthop: "[third]" });
  });

  test.each([
    ["smtp:[mx.example]:25", "smtp", "[mx.example]:25"],
    // an empty next hop means the recipient's domain, whatever the class's default was
    ["relay:", "relay", "remote.example"],
    ["lmtp", "lmtp", "remote.example"],
    // an empty transport keeps the class's transport
    [":[other.example]", "smtp", "[other.example]"],
    [":", "smtp", "remote.example"],
    ["error:5.1.1 no such user here", "error", "5.1.1 no such user here"],
    ["error:", "error", "Address is undeliverable"],
    ["retry:", "retry", "Address is undeliverable"],
    ["discard:", "discard", "remote.example"],
    // table results are not expanded
    ["smtp:[$myhostname]", "smtp", "[$myhostname]"],
  ])("%s", async (value, transport, nexthop) => {
    expect(await resolveRecipient(base, "u@remote.example", map({ "remote.example": value }))).toMatchObject({ transport, nexthop });
  });

  test("transport_maps apply to local recipients too", async () => {
    const r = await resolveRecipient(base, "robot@mail.example.test", map({ "robot@mail.example.test": "discard:robots are ignored" }));
    expect(r).toMatchObject({ addressClass: "local", transport: "discard", nexthop: "robots are ignored" });
  });
});
