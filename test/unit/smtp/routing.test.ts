import { describe, expect, test } from "bun:test";
import { Resolver } from "../../../src/global/dns/resolver.ts";
import { parseDestination, type Destination } from "../../../src/smtp/nexthop.ts";
import { routeDestination, type RoutingContext } from "../../../src/smtp/routing.ts";
import { useFakeDns } from "../../helpers/fake-dns.ts";

const dns = useFakeDns({
  "example.com": { MX: [[20, "mx2.example.com"], [10, "mx1a.example.com"], [10, "mx1b.example.com"]] },
  "mx1a.example.com": { A: ["192.0.2.11"] },
  "mx1b.example.com": { A: ["192.0.2.12"], AAAA: ["2001:db8::12"] },
  "mx2.example.com": { A: ["192.0.2.20"] },
  "implicit.example": { A: ["192.0.2.30", "192.0.2.31"] },
  "null.example": { MX: [[0, "."]] },
  "broken.example": { rcode: "SERVFAIL" },
  "self.example": { MX: [[10, "me.self.example"], [20, "backup.self.example"]] },
  "me.self.example": { A: ["127.0.0.1"] },
  "backup.self.example": { A: ["192.0.2.40"] },
  "backup.example": { MX: [[10, "primary.backup.example"], [20, "me.self.example"], [30, "tertiary.backup.example"]] },
  "primary.backup.example": { A: ["192.0.2.50"] },
  "tertiary.backup.example": { A: ["192.0.2.51"] },
  "deadmx.example": { MX: [[10, "nowhere.deadmx.example"]] },
  "relay.example": { A: ["192.0.2.60"] },
  "v6only.example": { AAAA: ["2001:db8::70"] },
});

function ctx(extra: Partial<RoutingContext> = {}): RoutingContext {
  return {
    dns: new Resolver(dns.resolverOptions()),
    families: ["ipv4", "ipv6"],
    hostLookup: ["dns"],
    ownAddresses: new Set(["127.0.0.1"]),
    randomize: false,
    ...extra,
  };
}
const dest = (t: string) => parseDestination(t, { lmtp: false, defaultPort: 25, queueDirectory: "/q" }) as Destination;

describe("MX routing", () => {
  test("servers in MX preference order, every address of each", async () => {
    const r = await routeDestination(ctx({ random: () => 0.999 }), dest("example.com"), true);
    expect(r.failure).toBeUndefined();
    expect(r.endpoints.map((e) => `${e.pref} ${e.host} ${e.address}`)).toEqual([
      "10 mx1a.example.com 192.0.2.11",
      "10 mx1b.example.com 192.0.2.12",
      "10 mx1b.example.com 2001:db8::12",
      "20 mx2.example.com 192.0.2.20",
    ]);
    expect(r.bestPref).toBe(10);
  });

  test("equal preferences are shuffled, different ones never", async () => {
    const seen = new Set<string>();
    for (const fixed of [0, 0.5, 0.99]) {
      const r = await routeDestination(ctx({ randomize: true, random: () => fixed }), dest("example.com"), true);
      expect(r.endpoints.at(-1)!.host).toBe("mx2.example.com");
      expect(r.endpoints.slice(0, 3).every((e) => e.pref === 10)).toBe(true);
      seen.add(r.endpoints.slice(0, 3).map((e) => e.address).join(","));
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  test("inet_protocols = ipv4 leaves the IPv6 addresses out", async () => {
    const r = await routeDestination(ctx({ families: ["ipv4"] }), dest("example.com"), true);
    expect(r.endpoints.map((e) => e.address)).not.toContain("2001:db8::12");
    expect(r.endpoints).toHaveLength(3);
  });

  test("no MX records: the domain's own addresses (implicit MX)", async () => {
    const r = await routeDestination(ctx(), dest("implicit.example"), true);
    expect(r.endpoints.map((e) => `${e.host} ${e.address}`)).toEqual(["implicit.example 192.0.2.30", "implicit.example 192.0.2.31"]);
  });

  test("a null MX bounces", async () => {
    const r = await routeDestination(ctx(), dest("null.example"), true);
    expect(r.endpoints).toEqual([]);
    expect(r.failure).toEqual({ dsn: "5.1.10", reason: "Domain null.example does not accept mail (nullMX)" });
  });

  test("a domain that does not exist bounces with Postfix's words", async () => {
    const r = await routeDestination(ctx(), dest("nosuch.example"), true);
    expect(r.failure).toEqual({ dsn: "5.4.4", reason: "Host or domain name not found. Name service error for name=nosuch.example type=A: Host not found" });
  });

  test("a resolver failure defers", async () => {
    const r = await routeDestination(ctx(), dest("broken.example"), true);
    expect(r.failure).toEqual({ dsn: "4.4.3", reason: "Host or domain name not found. Name service error for name=broken.example type=MX: Host not found, try again" });
  });

  test("MX hosts without addresses", async () => {
    const r = await routeDestination(ctx(), dest("deadmx.example"), true);
    expect(r.endpoints).toEqual([]);
    expect(r.failure?.dsn).toBe("5.4.4");
    expect(r.failure?.reason).toContain("name=nowhere.deadmx.example");
  });

  test("the best MX is this host: mail loops back to myself", async () => {
    const r = await routeDestination(ctx(), dest("self.example"), true);
    expect(r).toMatchObject({ endpoints: [], loop: true, iAmMx: true, failure: { dsn: "5.4.6", reason: "mail for self.example loops back to myself" } });
  });

  test("this host as a backup MX: only the better MX hosts are tried", async () => {
    const r = await routeDestination(ctx(), dest("backup.example"), true);
    expect(r.iAmMx).toBe(true);
    expect(r.endpoints.map((e) => e.host)).toEqual(["primary.backup.example"]);
  });

  test("without loop detection (another port) this host is just a server", async () => {
    const r = await routeDestination(ctx(), dest("self.example:2525"), false);
    expect(r.endpoints.map((e) => e.address)).toEqual(["127.0.0.1", "192.0.2.40"]);
  });

  test("[host] skips the MX lookup", async () => {
    const r = await routeDestination(ctx(), dest("[relay.example]:587"), true);
    expect(r.endpoints).toEqual([{ host: "relay.example", address: "192.0.2.60", port: 587, family: 4, pref: 0, dnssec: { address: false } }]);
    expect(dns.queriesFor("relay.example", "MX")).toEqual([]);
  });

  test("[address] needs no lookup at all; our own address is a loop at port 25", async () => {
    expect((await routeDestination(ctx(), dest("[192.0.2.99]"), true)).endpoints.map((e) => e.address)).toEqual(["192.0.2.99"]);
    expect((await routeDestination(ctx(), dest("[127.0.0.1]"), true)).failure).toEqual({ dsn: "5.4.6", reason: "mail for 127.0.0.1 loops back to myself" });
  });

  test("an IPv6-only host with inet_protocols = ipv4 has no usable address", async () => {
    const r = await routeDestination(ctx({ families: ["ipv4"] }), dest("[v6only.example]"), true);
    expect(r.endpoints).toEqual([]);
    expect(r.failure?.dsn).toMatch(/^5\.4\.4$/);
  });

  test("LMTP unix sockets need no lookup", async () => {
    const d = parseDestination("unix:/run/lmtp", { lmtp: true, defaultPort: 24, queueDirectory: "/q" }) as Destination;
    expect((await routeDestination(ctx(), d, false)).endpoints).toEqual([{ host: "", address: "/run/lmtp", port: 0, family: "unix", pref: 0 }]);
  });
});
