import { describe, expect, test } from "bun:test";
import { familiesFromInetProtocols } from "../../../../src/global/dns/addresses.ts";
import { lookupMx, orderMxHosts } from "../../../../src/global/dns/mx.ts";
import { Resolver } from "../../../../src/global/dns/resolver.ts";
import { isValidHostname } from "../../../../src/global/dns/reverse.ts";
import { useFakeDns } from "../../../helpers/fake-dns.ts";

const dns = useFakeDns({
  // MX
  "example.com": { MX: [[20, "mx3.example.com"], [10, "mx1.example.com"], [10, "mx2.example.com"], [30, "MX1.example.com."]] },
  "nullmx.example": { MX: [[0, "."]], A: ["192.0.2.1"] },
  "no-mx.example": { A: ["192.0.2.2"] },
  "mx-servfail.example": { rcode: "SERVFAIL" },
  // addresses
  "dual.example": { A: ["192.0.2.3"], AAAA: ["2001:db8::3"] },
  "v4only.example": { A: ["192.0.2.4"] },
  "half-broken.example": { A: ["192.0.2.5"], rcode: "SERVFAIL", faultTypes: ["AAAA"] },
  "all-broken.example": { rcode: "SERVFAIL", faultTypes: ["AAAA"] },
  // client names
  "1.2.0.192.in-addr.arpa": { PTR: ["mail.example.org"] },
  "mail.example.org": { A: ["192.0.2.1"], AAAA: ["2001:db8::25"] },
  "2.2.0.192.in-addr.arpa": { PTR: ["liar.example.org"] },
  "liar.example.org": { A: ["192.0.2.99"] },
  "3.2.0.192.in-addr.arpa": { PTR: ["dangling.example.org"] },
  "4.2.0.192.in-addr.arpa": { PTR: ["flaky.example.org"] },
  "flaky.example.org": { rcode: "SERVFAIL" },
  "5.2.0.192.in-addr.arpa": { rcode: "SERVFAIL" },
  "6.2.0.192.in-addr.arpa": { PTR: ["192.0.2.6"] },
  "7.2.0.192.in-addr.arpa": { PTR: ["bad_name-.example.org"] },
  "8.2.0.192.in-addr.arpa": { PTR: ["other.example.org", "multi.example.org"] },
  "other.example.org": { A: ["192.0.2.100"] },
  "multi.example.org": { A: ["192.0.2.8"] },
  "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa": { PTR: ["mail.example.org"] },
  // DNS lists
  "2.0.0.127.zen.test": { A: ["127.0.0.2", "127.0.0.4"], TXT: ["Listed: see https://zen.test/query?ip=127.0.0.2"] },
  "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.test": { A: ["127.0.0.3"] },
  "9.2.0.192.broken.test": { rcode: "SERVFAIL" },
  "spammer.example.dbl.test": { A: ["127.0.1.2"], TXT: [["Domain listed ", "for spam"]] },
});

const resolver = (random?: () => number) => new Resolver(dns.resolverOptions({ cacheSize: 0, ...(random ? { random } : {}) }));

/** mulberry32: a small seeded generator, so "random" orders are the same every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("lookupMx", () => {
  test("sorted by preference; a host listed twice keeps its best preference", async () => {
    const r = await resolver().lookupMx("example.com");
    expect(r.status).toBe("ok");
    if (r.status !== "ok") return;
    expect(r.implicit).toBe(false);
    expect(r.hosts.map((h) => h.preference)).toEqual([10, 10, 20]);
    expect(r.hosts.slice(0, 2).map((h) => h.exchange).sort()).toEqual(["mx1.example.com", "mx2.example.com"]);
    expect(r.hosts[2]).toEqual({ preference: 20, exchange: "mx3.example.com" });
  });

  test("equal preferences come in both orders, about evenly, over 200 draws of a seeded source", async () => {
    const r = resolver(seeded(20240601));
    const counts = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const mx = await r.lookupMx("example.com");
      if (mx.status !== "ok") throw new Error(mx.status);
      const key = mx.hosts.map((h) => h.exchange).join(" ");
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(["mx1.example.com mx2.example.com mx3.example.com", "mx2.example.com mx1.example.com mx3.example.com"]);
    for (const n of counts.values()) expect(n).toBeGreaterThan(60);
  });

  test("the shuffle uses the random source it is given", () => {
    const hosts = [
      { preference: 5, exchange: "a" },
      { preference: 5, exchange: "b" },
      { preference: 5, exchange: "c" },
      { preference: 1, exchange: "first" },
    ];
    expect(orderMxHosts(hosts, () => 0).map((h) => h.exchange)).toEqual(["first", "b", "c", "a"]);
    expect(orderMxHosts(hosts, () => 0.9999).map((h) => h.exchange)).toEqual(["first", "a", "b", "c"]);
  });

  test("a null MX (RFC 7505) says the domain takes no mail", async () => {
    expect(await resolver().lookupMx("nullmx.example")).toEqual({ status: "nullmx" });
  });

  test("no MX records: the implicit MX is the domain itself", async () => {
    expect(await resolver().lookupMx("No-MX.example.")).toEqual({ status: "ok", hosts: [{ preference: 0, exchange: "no-mx.example" }], implicit: true, ttl: 0, authenticated: false });
  });

  test("NXDOMAIN and SERVFAIL come through as they are", async () => {
    expect(await resolver().lookupMx("nonexistent.example")).toEqual({ status: "nxdomain" });
    expect(await resolver().lookupMx("mx-servfail.example")).toEqual({ status: "servfail" });
  });

  test("a stand-in querier works too (the helpers need only query())", async () => {
    const fake = { query: async () => ({ status: "ok", records: [{ type: "MX", name: "x", ttl: 1, preference: 0, exchange: "." }, { type: "MX", name: "x", ttl: 1, preference: 10, exchange: "real.example" }], canonicalName: "x", ttl: 1, authenticated: false, source: "dns" }) };
    // a "." among real exchanges is dropped, not tried
    expect(await lookupMx(fake as never, "x")).toMatchObject({ status: "ok", hosts: [{ preference: 10, exchange: "real.example" }] });
  });
});

describe("lookupAddresses", () => {
  test("A and AAAA per the families asked for", async () => {
    const r = resolver();
    expect(await r.lookupAddresses("dual.example")).toMatchObject({
      status: "ok",
      addresses: [
        { family: 4, address: "192.0.2.3" },
        { family: 6, address: "2001:db8::3" },
      ],
    });
    dns.clearQueries();
    expect(await r.lookupAddresses("dual.example", ["ipv6"])).toMatchObject({ status: "ok", addresses: [{ family: 6, address: "2001:db8::3" }] });
    expect(dns.queries.map((q) => q.type)).toEqual(["AAAA"]);
  });

  test("one family found is success; a temporary failure beats not-found; NXDOMAIN only when all say so", async () => {
    const r = resolver();
    expect(await r.lookupAddresses("v4only.example")).toMatchObject({ status: "ok", addresses: [{ address: "192.0.2.4" }] });
    expect(await r.lookupAddresses("half-broken.example")).toMatchObject({ status: "ok", addresses: [{ address: "192.0.2.5" }] });
    expect(await r.lookupAddresses("all-broken.example")).toEqual({ status: "servfail" });
    expect(await r.lookupAddresses("v4only.example", ["ipv6"])).toEqual({ status: "nodata" });
    expect(await r.lookupAddresses("nonexistent.example")).toEqual({ status: "nxdomain" });
  });

  test("an address literal needs no query", async () => {
    dns.clearQueries();
    expect(await resolver().lookupAddresses("192.0.2.77")).toMatchObject({ status: "ok", addresses: [{ family: 4, address: "192.0.2.77" }] });
    expect(await resolver().lookupAddresses("2001:DB8::77", ["ipv4"])).toEqual({ status: "nodata" });
    expect(dns.queries).toEqual([]);
  });

  test("inet_protocols words", () => {
    expect(familiesFromInetProtocols(["all"])).toEqual(["ipv4", "ipv6"]);
    expect(familiesFromInetProtocols(["IPv4"])).toEqual(["ipv4"]);
    expect(familiesFromInetProtocols(["ipv6", "ipv4"])).toEqual(["ipv6", "ipv4"]);
    expect(familiesFromInetProtocols(["ipx"])).toEqual({ problem: 'inet_protocols: unknown protocol "ipx"' });
  });
});

describe("reverseLookup (client names)", () => {
  test("a PTR name that resolves back to the address is the client name", async () => {
    expect(await resolver().reverseLookup("192.0.2.1")).toEqual({ name: "mail.example.org", nameStatus: "ok", reverseName: "mail.example.org", reverseNameStatus: "ok" });
    expect(await resolver().reverseLookup("2001:db8::25")).toMatchObject({ name: "mail.example.org", nameStatus: "ok" });
    expect(await resolver().reverseLookup("::ffff:192.0.2.1")).toMatchObject({ name: "mail.example.org", nameStatus: "ok" });
  });

  test("a PTR name that does not resolve back: unknown, forged, with Postfix's warning", async () => {
    expect(await resolver().reverseLookup("192.0.2.2")).toEqual({
      name: "unknown",
      nameStatus: "forged",
      reverseName: "liar.example.org",
      reverseNameStatus: "ok",
      warning: "hostname liar.example.org does not resolve to address 192.0.2.2",
    });
    expect(await resolver().reverseLookup("192.0.2.3")).toMatchObject({
      name: "unknown",
      nameStatus: "forged",
      reverseName: "dangling.example.org",
      warning: "hostname dangling.example.org does not resolve to address 192.0.2.3: Name or service not known",
    });
  });

  test("temporary failures are temporary", async () => {
    expect(await resolver().reverseLookup("192.0.2.4")).toMatchObject({ name: "unknown", nameStatus: "temp", reverseName: "flaky.example.org", reverseNameStatus: "ok" });
    expect(await resolver().reverseLookup("192.0.2.5")).toEqual({ name: "unknown", nameStatus: "temp", reverseName: "unknown", reverseNameStatus: "temp" });
  });

  test("no PTR, a numeric PTR or an invalid host name: unknown for good", async () => {
    expect(await resolver().reverseLookup("192.0.2.200")).toEqual({ name: "unknown", nameStatus: "perm", reverseName: "unknown", reverseNameStatus: "perm" });
    expect(await resolver().reverseLookup("192.0.2.6")).toMatchObject({ name: "unknown", reverseName: "unknown", reverseNameStatus: "perm", warning: "numeric hostname: 192.0.2.6" });
    expect(await resolver().reverseLookup("192.0.2.7")).toMatchObject({ name: "unknown", nameStatus: "perm", reverseNameStatus: "perm" });
  });

  test("with several PTR names, one that confirms is enough", async () => {
    const r = await resolver().reverseLookup("192.0.2.8");
    expect(r).toMatchObject({ name: "multi.example.org", nameStatus: "ok", reverseNameStatus: "ok" });
  });

  test("loopback clients are named from the hosts file, without a packet", async () => {
    dns.clearQueries();
    const r = new Resolver(dns.resolverOptions({ hostsFile: "/etc/hosts" }));
    expect(await r.reverseLookup("127.0.0.1")).toMatchObject({ name: "localhost", nameStatus: "ok" });
    expect(dns.queries).toEqual([]);
  });

  test("valid host names", () => {
    for (const ok of ["mail.example.org", "a-b.example", "_dmarc.example", "x1.example"]) expect(isValidHostname(ok)).toBe(true);
    for (const bad of ["-a.example", "a-.example", "a..b", "a b.example", "1.2.3.4", "a\\032b.example", "x".repeat(64) + ".example"]) expect(isValidHostname(bad)).toBe(false);
  });
});

describe("DNS lists", () => {
  test("a listed address: the A records and the TXT reason", async () => {
    expect(await resolver().rblLookup("zen.test", "127.0.0.2")).toEqual({
      status: "listed",
      query: "2.0.0.127.zen.test",
      addresses: ["127.0.0.2", "127.0.0.4"],
      reason: "Listed: see https://zen.test/query?ip=127.0.0.2",
      ttl: 300,
    });
  });

  test("the reason is asked for only when wanted, and only when listed", async () => {
    dns.clearQueries();
    expect(await resolver().rblLookup("zen.test", "127.0.0.2", { reason: false })).toMatchObject({ status: "listed" });
    expect(await resolver().rblLookup("zen.test", "192.0.2.50")).toEqual({ status: "unlisted", query: "50.2.0.192.zen.test" });
    expect(dns.queries.map((q) => q.type)).toEqual(["A", "A"]);
  });

  test("IPv6 addresses are looked up by nibbles", async () => {
    expect(await resolver().rblLookup("zen.test", "2001:db8::1", { reason: false })).toMatchObject({ status: "listed", addresses: ["127.0.0.3"] });
  });

  test("a failing list is a failure, not unlisted", async () => {
    expect(await resolver().rblLookup("broken.test", "192.0.2.9")).toEqual({ status: "servfail", query: "9.2.0.192.broken.test" });
    expect(await resolver().rblLookup("zen.test", "not-an-ip")).toMatchObject({ status: "badname" });
  });

  test("domain lists (rhsbl)", async () => {
    expect(await resolver().rhsblLookup("dbl.test", "Spammer.Example.")).toEqual({
      status: "listed",
      query: "spammer.example.dbl.test",
      addresses: ["127.0.1.2"],
      reason: "Domain listed for spam",
      ttl: 300,
    });
    expect(await resolver().rhsblLookup("dbl.test", "honest.example")).toEqual({ status: "unlisted", query: "honest.example.dbl.test" });
  });
});
