/**
 * The fake DNS server itself, checked with an independent DNS implementation:
 * the c-ares resolver behind Bun's node:dns, pointed at 127.0.0.1.
 */
import { describe, expect, test } from "bun:test";
import { promises as nodeDns } from "node:dns";
import { Resolver } from "../../../../src/global/dns/resolver.ts";
import { startFakeDns, useFakeDns, type FakeDns } from "../../../helpers/fake-dns.ts";

const dns = useFakeDns({
  "example.com": { MX: [[10, "mx1.example.com"], [20, "mx2.example.com"]], A: ["192.0.2.1"], TXT: ["hello world"] },
  "mx1.example.com": { AAAA: ["2001:db8::25"] },
  "alias.example.com": { CNAME: "example.com" },
  "*.wild.example": { A: ["192.0.2.77"] },
  "broken.example": { rcode: "SERVFAIL" },
});

function cares(): nodeDns.Resolver {
  const r = new nodeDns.Resolver();
  r.setServers([dns.server]);
  return r;
}

async function codeOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
    return "resolved";
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

describe("the fake DNS server, read by c-ares", () => {
  test("answers parse in another implementation", async () => {
    const r = cares();
    expect(await r.resolveMx("example.com")).toEqual([
      { exchange: "mx1.example.com", priority: 10 },
      { exchange: "mx2.example.com", priority: 20 },
    ]);
    expect(await r.resolve4("example.com")).toEqual(["192.0.2.1"]);
    expect(await r.resolve6("mx1.example.com")).toEqual(["2001:db8::25"]);
    expect(await r.resolveTxt("example.com")).toEqual([["hello world"]]);
    expect(await r.resolveCname("alias.example.com")).toEqual(["example.com"]);
    expect(await r.resolve4("anything.wild.example")).toEqual(["192.0.2.77"]);
  });

  test("NXDOMAIN and SERVFAIL reach c-ares as such", async () => {
    expect(await codeOf(cares().resolve4("nonexistent.example.com"))).toBe("ENOTFOUND");
    expect(await codeOf(cares().resolve4("broken.example"))).toBe("ESERVFAIL");
  });

  test("queries are recorded with their transport and EDNS flag", async () => {
    dns.clearQueries();
    await cares().resolve4("example.com");
    await new Resolver(dns.resolverOptions()).query("example.com", "MX");
    expect(dns.queries.map((q) => [q.name, q.type, q.transport])).toEqual([
      ["example.com", "A", "udp"],
      ["example.com", "MX", "udp"],
    ]);
    expect(dns.queries[1]!.edns).toBe(true);
  });

  test("the zone can change while the server runs", async () => {
    const r = new Resolver(dns.resolverOptions({ cacheSize: 0 }));
    dns.set("late.example", { A: ["192.0.2.88"] });
    expect(await r.query("late.example", "A")).toMatchObject({ status: "ok", records: [{ address: "192.0.2.88" }] });
    dns.remove("late.example");
    expect(await r.query("late.example", "A")).toEqual({ status: "nxdomain" });
  });

  test("config() gives postern.toml lines that point at the server", () => {
    expect(dns.config()).toBe(`dns_servers = "127.0.0.1:${dns.port}"\ndns_timeout = "1s"\ndns_attempts = 1\n`);
  });
});

describe("a server started inside a test", () => {
  let started: FakeDns | undefined;
  test("serves during its test", async () => {
    started = await startFakeDns({ "example.org": { A: ["198.51.100.1"] } });
    expect(await new Resolver(started.resolverOptions()).query("example.org", "A")).toMatchObject({ status: "ok" });
  });

  test("is stopped once that test is over", async () => {
    const r = await new Resolver(started!.resolverOptions({ timeoutMs: 1000 })).query("example.org", "A");
    expect(r).toMatchObject({ status: "network", code: "ECONNREFUSED" });
  });
});
