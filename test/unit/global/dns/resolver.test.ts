import { afterAll, describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Resolver } from "../../../../src/global/dns/resolver.ts";
import { txtRecordText } from "../../../../src/global/dns/records.ts";
import { encodeMessage } from "../../../../src/global/dns/wire.ts";
import { startFakeDns, useFakeDns } from "../../../helpers/fake-dns.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";

/** A 2048-bit RSA public key as a DKIM key record publishes it (about 400 bytes of base64). */
function dkimKeyRecord(): string {
  const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const der = publicKey.export({ type: "spki", format: "der" });
  return `v=DKIM1; k=rsa; p=${der.toString("base64")}`;
}
const DKIM = dkimKeyRecord();

const dns = useFakeDns({
  "example.com": {
    A: ["192.0.2.10", "192.0.2.11"],
    AAAA: ["2001:db8::10"],
    MX: [[10, "mx1.example.com"]],
    NS: ["ns1.example.com", "ns2.example.com"],
    TXT: ["v=spf1 ip4:192.0.2.0/24 -all", ["first part, ", "second part"]],
    SOA: ["ns1.example.com", "hostmaster.example.com", 2024, 3600, 600, 86400, 120],
  },
  "sel._domainkey.example.com": { TXT: [DKIM] },
  "www.example.com": { CNAME: "web.example.com" },
  "web.example.com": { CNAME: "example.com" },
  "10.2.0.192.in-addr.arpa": { PTR: ["example.com"] },
  "_25._tcp.mx1.example.com": { TLSA: [[3, 1, 1, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"]], authenticated: true },
  "servfail.example": { rcode: "SERVFAIL" },
  "refused.example": { rcode: "REFUSED" },
  "formerr.example": { rcode: "FORMERR" },
  "dropped.example": { A: ["192.0.2.99"], drop: true },
  "slow.example": { A: ["192.0.2.98"], delayMs: 150 },
  "truncated.example": { TXT: ["only over TCP"], truncate: true },
  "big.example": { TXT: Array.from({ length: 12 }, (_, i) => `${i}:${"z".repeat(200)}`) },
  "ttl.example": { A: ["192.0.2.7"], ttl: 30 },
  "aaaa-fails.example": { A: ["192.0.2.6"], rcode: "SERVFAIL", faultTypes: ["AAAA"] },
  "sub.search.example": { A: ["192.0.2.5"] },
});

const resolver = (extra: Parameters<typeof dns.resolverOptions>[0] = {}) => new Resolver(dns.resolverOptions({ cacheSize: 0, ...extra }));

describe("record types", () => {
  test("A and AAAA", async () => {
    const a = await resolver().query("example.com", "A");
    expect(a.status === "ok" && a.records.map((r) => r.address)).toEqual(["192.0.2.10", "192.0.2.11"]);
    expect(a).toMatchObject({ status: "ok", canonicalName: "example.com", ttl: 300, authenticated: false, source: "dns" });
    const aaaa = await resolver().query("EXAMPLE.com.", "AAAA");
    expect(aaaa.status === "ok" && aaaa.records).toEqual([{ type: "AAAA", name: "example.com", ttl: 300, address: "2001:db8::10" }]);
  });

  test("MX, NS, PTR, SOA", async () => {
    const r = resolver();
    const mx = await r.query("example.com", "MX");
    expect(mx.status === "ok" && mx.records).toEqual([{ type: "MX", name: "example.com", ttl: 300, preference: 10, exchange: "mx1.example.com" }]);
    const ns = await r.query("example.com", "NS");
    expect(ns.status === "ok" && ns.records.map((x) => x.target)).toEqual(["ns1.example.com", "ns2.example.com"]);
    const ptr = await r.query("10.2.0.192.in-addr.arpa", "PTR");
    expect(ptr.status === "ok" && ptr.records.map((x) => x.target)).toEqual(["example.com"]);
    const soa = await r.query("example.com", "SOA");
    expect(soa.status === "ok" && soa.records[0]).toMatchObject({ mname: "ns1.example.com", rname: "hostmaster.example.com", serial: 2024, minimum: 120 });
  });

  test("CNAME chains are followed within the answer; a CNAME question gets the CNAME itself", async () => {
    const r = resolver();
    const a = await r.query("www.example.com", "A");
    expect(a).toMatchObject({ status: "ok", canonicalName: "example.com" });
    expect(a.status === "ok" && a.records.map((x) => [x.name, x.address])).toEqual([
      ["example.com", "192.0.2.10"],
      ["example.com", "192.0.2.11"],
    ]);
    const c = await r.query("www.example.com", "CNAME");
    expect(c.status === "ok" && c.records.map((x) => x.target)).toEqual(["web.example.com"]);
  });

  test("TLSA, with the AD bit of the server passed on", async () => {
    const t = await resolver().lookupTlsa(25, "mx1.example.com");
    expect(t).toMatchObject({ status: "ok", authenticated: true });
    expect(t.status === "ok" && t.records[0]).toMatchObject({ usage: 3, selector: 1, matchingType: 1 });
    expect(t.status === "ok" && Buffer.from(t.records[0]!.data).toString("hex")).toBe("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    expect(dns.queriesFor("_25._tcp.mx1.example.com", "TLSA").length).toBeGreaterThan(0);
  });
});

describe("TXT records", () => {
  test("each record keeps its strings; joined text on request", async () => {
    const t = await resolver().query("example.com", "TXT");
    expect(t.status === "ok" && t.records.map((r) => r.strings)).toEqual([["v=spf1 ip4:192.0.2.0/24 -all"], ["first part, ", "second part"]]);
    expect(t.status === "ok" && t.records.map(txtRecordText)).toEqual(["v=spf1 ip4:192.0.2.0/24 -all", "first part, second part"]);
  });

  test("a 2048-bit DKIM key published as 255-byte strings joins back exactly", async () => {
    expect(DKIM.length).toBeGreaterThan(255);
    const t = await resolver().query("sel._domainkey.example.com", "TXT");
    expect(t.status).toBe("ok");
    if (t.status !== "ok") return;
    expect(t.records).toHaveLength(1);
    expect(t.records[0]!.strings.length).toBe(Math.ceil(DKIM.length / 255));
    expect(t.records[0]!.strings[0]!.length).toBe(255);
    expect(txtRecordText(t.records[0]!)).toBe(DKIM);
  });
});

describe("outcomes told apart", () => {
  test("NXDOMAIN, NODATA, SERVFAIL, REFUSED, FORMERR", async () => {
    const r = resolver();
    expect(await r.query("nonexistent.example.com", "A")).toEqual({ status: "nxdomain" });
    expect(await r.query("example.com", "PTR")).toEqual({ status: "nodata" });
    // an empty non-terminal exists: NODATA, not NXDOMAIN
    expect(await r.query("_domainkey.example.com", "TXT")).toEqual({ status: "nodata" });
    expect(await r.query("servfail.example", "A")).toEqual({ status: "servfail" });
    expect(await r.query("refused.example", "A")).toEqual({ status: "refused" });
    expect(await r.query("formerr.example", "A")).toEqual({ status: "formerr" });
  });

  test("no answer in time is a timeout", async () => {
    const before = dns.queriesFor("dropped.example").length;
    expect(await resolver({ timeoutMs: 200, attempts: 2 }).query("dropped.example", "A")).toEqual({ status: "timeout" });
    expect(dns.queriesFor("dropped.example").length - before).toBe(2);
  });

  test("a late answer within the timeout is still taken", async () => {
    const r = await resolver({ timeoutMs: 3000 }).query("slow.example", "A");
    expect(r.status === "ok" && r.records[0]!.address).toBe("192.0.2.98");
  });

  test("a closed port is a network failure (connection refused)", async () => {
    const gone = await startFakeDns({});
    const options = gone.resolverOptions({ timeoutMs: 2000, attempts: 2 });
    await gone.stop();
    const r = await new Resolver(options).query("example.com", "A");
    expect(r).toMatchObject({ status: "network", code: "ECONNREFUSED" });
  });

  test("a name that cannot be asked is refused without a packet", async () => {
    const before = dns.queries.length;
    const r = await resolver().query(`${"x".repeat(64)}.example.com`, "A");
    expect(r).toMatchObject({ status: "badname" });
    expect(await resolver().query("", "A")).toMatchObject({ status: "badname" });
    expect(dns.queries.length).toBe(before);
  });

  test("one failing family does not touch the other", async () => {
    const r = resolver();
    expect((await r.query("aaaa-fails.example", "A")).status).toBe("ok");
    expect((await r.query("aaaa-fails.example", "AAAA")).status).toBe("servfail");
  });
});

describe("transport", () => {
  test("TC=1 over UDP: the question is asked again over TCP", async () => {
    dns.clearQueries();
    const r = await resolver().query("truncated.example", "TXT");
    expect(r.status === "ok" && r.records.map(txtRecordText)).toEqual(["only over TCP"]);
    expect(dns.queriesFor("truncated.example").map((q) => q.transport)).toEqual(["udp", "tcp"]);
  });

  test("an answer larger than the 1232-byte EDNS payload comes over TCP", async () => {
    dns.clearQueries();
    const r = await resolver().query("big.example", "TXT");
    expect(r.status === "ok" && r.records.length).toBe(12);
    const asked = dns.queriesFor("big.example");
    expect(asked.map((q) => q.transport)).toEqual(["udp", "tcp"]);
    expect(asked[0]!.edns).toBe(true);
  });

  test("every query has its own random ID (and source port)", async () => {
    dns.clearQueries();
    const r = resolver();
    for (let i = 0; i < 20; i++) await r.query("example.com", "A");
    const ids = new Set(dns.queries.map((q) => q.id));
    const ports = new Set(dns.queries.map((q) => q.sourcePort));
    expect(dns.queries.length).toBe(20);
    expect(ids.size).toBeGreaterThan(15);
    expect(ports.size).toBeGreaterThan(15);
  });

  test("a server that does not know EDNS is asked again without it", async () => {
    const old = await startFakeDns({ "example.net": { A: ["198.51.100.1"] } }, { noEdns: true });
    const r = await new Resolver(old.resolverOptions()).query("example.net", "A");
    expect(r.status === "ok" && r.records[0]!.address).toBe("198.51.100.1");
    expect(old.queries.map((q) => q.edns)).toEqual([true, false]);
  });

  test("answers with a wrong ID or question are not believed", async () => {
    let mode: "id" | "question" = "id";
    const spoofing = await startFakeDns(
      {},
      {
        respond: (query) => {
          const id = (query[0]! << 8) | query[1]!;
          const qname = mode === "id" ? "example.com" : "evil.example";
          return encodeMessage({
            id: mode === "id" ? (id + 1) & 0xffff : id,
            qr: true,
            questions: [{ name: qname, type: 1, class: 1 }],
            answers: [{ type: "A", name: qname, ttl: 300, address: "203.0.113.66" }],
          });
        },
      },
    );
    const r = new Resolver(spoofing.resolverOptions({ timeoutMs: 200 }));
    expect(await r.query("example.com", "A")).toEqual({ status: "timeout" });
    mode = "question";
    expect(await r.query("example.com", "A")).toEqual({ status: "timeout" });
  });

  test("malformed answers (a compression loop) are a network failure, not a crash", async () => {
    const broken = await startFakeDns(
      {},
      {
        respond: (query) => {
          const reply = Uint8Array.from(query);
          reply[2] = 0x81; // QR, RD
          reply[7] = 1; // one answer
          reply[11] = 0; // no OPT
          const q = reply.subarray(0, 12 + (query.length - 12 - 11)); // header + question, without the OPT record
          const loop = [0xc0, q.length, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]; // owner points at itself
          return Uint8Array.from([...q, ...loop]);
        },
      },
    );
    const r = await new Resolver(broken.resolverOptions({ timeoutMs: 200 })).query("example.com", "A");
    expect(r).toMatchObject({ status: "network", code: "EBADRESP" });
  });

  test("the next server is asked after a SERVFAIL or a timeout", async () => {
    const failing = await startFakeDns({ "example.org": { rcode: "SERVFAIL" } });
    const silent = await startFakeDns({ "example.org": { drop: true } });
    const good = await startFakeDns({ "example.org": { A: ["198.51.100.2"] } });
    const servers = [failing, silent, good].map((s) => s.resolverOptions().servers[0]!);
    const r = await new Resolver({ servers, timeoutMs: 200, attempts: 1, hostsFile: null }).query("example.org", "A");
    expect(r.status === "ok" && r.records[0]!.address).toBe("198.51.100.2");
    expect([failing.queries.length, silent.queries.length, good.queries.length]).toEqual([1, 1, 1]);
    const allBad = await new Resolver({ servers: servers.slice(0, 2), timeoutMs: 200, attempts: 1, hostsFile: null }).query("example.org", "A");
    expect(allBad).toEqual({ status: "servfail" });
  });
});

describe("cache", () => {
  test("answers are reused for their TTL, with the TTL counted down, then asked again", async () => {
    let now = 5_000_000;
    const r = resolver({ cacheSize: 100, now: () => now });
    dns.clearQueries();
    const first = await r.query("ttl.example", "A");
    expect(first).toMatchObject({ status: "ok", ttl: 30, source: "dns" });
    now += 10_000;
    const second = await r.query("TTL.example.", "A");
    expect(second).toMatchObject({ status: "ok", ttl: 20, source: "cache" });
    expect(second.status === "ok" && second.records[0]!.ttl).toBe(20);
    expect(dns.queriesFor("ttl.example").length).toBe(1);
    now += 20_000;
    expect(await r.query("ttl.example", "A")).toMatchObject({ status: "ok", ttl: 30, source: "dns" });
    expect(dns.queriesFor("ttl.example").length).toBe(2);
  });

  test("negative answers are cached for the SOA minimum; failures are not cached", async () => {
    let now = 1_000;
    const neg = await startFakeDns({ "example.net": { A: ["198.51.100.3"] }, "bad.example.net": { rcode: "SERVFAIL" } }, { negativeTtl: 60 });
    const r = new Resolver(neg.resolverOptions({ now: () => now }));
    expect(await r.query("gone.example.net", "A")).toEqual({ status: "nxdomain" });
    expect(await r.query("example.net", "MX")).toEqual({ status: "nodata" });
    now += 59_000;
    expect(await r.query("gone.example.net", "A")).toEqual({ status: "nxdomain" });
    expect(await r.query("example.net", "MX")).toEqual({ status: "nodata" });
    expect(neg.queriesFor("gone.example.net").length).toBe(1);
    expect(neg.queriesFor("example.net", "MX").length).toBe(1);
    now += 1_000;
    await r.query("gone.example.net", "A");
    expect(neg.queriesFor("gone.example.net").length).toBe(2);
    await r.query("bad.example.net", "A");
    await r.query("bad.example.net", "A");
    expect(neg.queriesFor("bad.example.net").length).toBe(2);
  });

  test("a negative answer without SOA is not cached (RFC 2308 5)", async () => {
    const bare = await startFakeDns({ "example.net": { A: ["198.51.100.3"] } }, { negativeSoa: false });
    const r = new Resolver(bare.resolverOptions());
    expect(await r.query("gone.example.net", "A")).toEqual({ status: "nxdomain" });
    expect(await r.query("gone.example.net", "A")).toEqual({ status: "nxdomain" });
    expect(bare.queriesFor("gone.example.net").length).toBe(2);
  });

  test("the cache is bounded, and size 0 turns it off", async () => {
    const small = resolver({ cacheSize: 2 });
    for (const n of ["example.com", "ttl.example", "sub.search.example"]) await small.query(n, "A");
    expect(small.cacheSize).toBe(2);
    dns.clearQueries();
    const off = resolver({ cacheSize: 0 });
    await off.query("example.com", "A");
    await off.query("example.com", "A");
    expect(dns.queriesFor("example.com", "A").length).toBe(2);
    expect(off.cacheSize).toBe(0);
  });

  test("identical questions in flight share one packet", async () => {
    dns.clearQueries();
    const r = resolver();
    const all = await Promise.all(Array.from({ length: 10 }, () => r.query("slow.example", "A")));
    expect(all.every((x) => x.status === "ok")).toBe(true);
    expect(dns.queriesFor("slow.example").length).toBe(1);
  });
});

describe("local answers and search", () => {
  const dir = tempDir("postern-dns-hosts-");
  afterAll(() => removeDir(dir));

  test("the hosts file answers A, AAAA and PTR first, without a packet", async () => {
    const hosts = join(dir, "hosts");
    writeFileSync(hosts, "127.0.0.1 localhost\n::1 localhost ip6-localhost\n192.0.2.200 Printer.Example.com printer # office\n");
    const r = resolver({ hostsFile: hosts, cacheSize: 100 });
    dns.clearQueries();
    expect(await r.query("printer.example.com", "A")).toMatchObject({ status: "ok", source: "hosts", records: [{ address: "192.0.2.200" }] });
    expect(await r.query("printer", "A")).toMatchObject({ status: "ok", records: [{ address: "192.0.2.200" }] });
    expect(await r.query("localhost", "AAAA")).toMatchObject({ status: "ok", records: [{ address: "::1" }] });
    expect(await r.query("1.0.0.127.in-addr.arpa", "PTR")).toMatchObject({ status: "ok", records: [{ target: "localhost" }] });
    expect(await r.query("200.2.0.192.in-addr.arpa", "PTR")).toMatchObject({ status: "ok", records: [{ target: "printer.example.com" }] });
    // a loopback address the file does not name is not asked about either
    expect(await r.query("2.0.0.127.in-addr.arpa", "PTR")).toEqual({ status: "nxdomain" });
    expect(dns.queries).toEqual([]);
    // a name in the file without an address of the family goes to DNS
    await r.query("printer.example.com", "AAAA");
    expect(dns.queriesFor("printer.example.com", "AAAA").length).toBe(1);
  });

  test("localhost never leaves the machine, even without a hosts file", async () => {
    dns.clearQueries();
    const r = resolver({ hostsFile: null });
    expect(await r.query("localhost", "A")).toMatchObject({ status: "ok", records: [{ address: "127.0.0.1" }] });
    expect(await r.query("mail.localhost", "AAAA")).toMatchObject({ status: "ok", records: [{ address: "::1" }] });
    expect(dns.queries).toEqual([]);
  });

  test("the system's /etc/hosts answers localhost", async () => {
    dns.clearQueries();
    const r = resolver({ hostsFile: "/etc/hosts" });
    expect(await r.query("localhost", "A")).toMatchObject({ status: "ok", source: "hosts", records: [{ address: "127.0.0.1" }] });
    expect(await r.query("1.0.0.127.in-addr.arpa", "PTR")).toMatchObject({ status: "ok", source: "hosts" });
    expect(dns.queries).toEqual([]);
  });

  test("search list and ndots, only when asked for", async () => {
    const r = resolver({ search: ["nowhere.example", "search.example"], ndots: 1 });
    dns.clearQueries();
    const hit = await r.query("sub", "A", { search: true });
    expect(hit.status === "ok" && hit.records[0]!.address).toBe("192.0.2.5");
    expect(dns.queries.map((q) => q.name)).toEqual(["sub.nowhere.example", "sub.search.example"]);
    // a name with enough dots is tried as it is first; a trailing dot turns the search off
    dns.clearQueries();
    await r.query("example.com", "A", { search: true });
    expect(dns.queries.map((q) => q.name)).toEqual(["example.com"]);
    dns.clearQueries();
    expect(await r.query("sub.", "A", { search: true })).toEqual({ status: "nxdomain" });
    expect(dns.queries.map((q) => q.name)).toEqual(["sub"]);
    // without search, a short name is asked as it is
    dns.clearQueries();
    expect(await r.query("sub", "A")).toEqual({ status: "nxdomain" });
    expect(dns.queries.map((q) => q.name)).toEqual(["sub"]);
  });
});
