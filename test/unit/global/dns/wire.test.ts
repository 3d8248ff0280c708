import { describe, expect, test } from "bun:test";
import { decodeMessage, encodeMessage, encodeQuery, WireError, type DnsMessage } from "../../../../src/global/dns/wire.ts";
import { RRTYPES, type DnsRecord } from "../../../../src/global/dns/records.ts";

/** Bytes from a readable list: numbers are bytes, strings are ASCII, `name("a.b")` are labels. */
function bytes(...parts: (number | string | number[])[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === "number") out.push(p);
    else if (typeof p === "string") for (const c of p) out.push(c.charCodeAt(0));
    else out.push(...p);
  }
  return Uint8Array.from(out);
}
const u16 = (v: number) => [v >> 8, v & 0xff];
const u32 = (v: number) => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
function name(text: string): number[] {
  const out: number[] = [];
  for (const label of text.split(".")) {
    out.push(label.length);
    for (const c of label) out.push(c.charCodeAt(0));
  }
  out.push(0);
  return out;
}

/** A response to "example.com MX" with two MX records, names compressed, as a server would send it. */
const MX_RESPONSE = bytes(
  u16(0xbeef), // id
  u16(0x8180), // QR, RD, RA, NOERROR
  u16(1), u16(2), u16(0), u16(0),
  name("example.com"), u16(15), u16(1), // question at offset 12
  [0xc0, 12], u16(15), u16(1), u32(300), u16(8), u16(10), [3], "mx1", [0xc0, 12], // mx1.example.com
  [0xc0, 12], u16(15), u16(1), u32(300), u16(8), u16(20), [3], "mx2", [0xc0, 12],
);

describe("encoding queries", () => {
  test("a query is the golden packet: RD and AD set, one question, EDNS0 OPT with a 1232-byte payload", () => {
    const q = encodeQuery({ id: 0x1234, name: "example.com.", type: RRTYPES.MX });
    const golden = bytes(
      u16(0x1234),
      u16(0x0120), // RD | AD
      u16(1), u16(0), u16(0), u16(1),
      name("example.com"), u16(15), u16(1),
      [0], u16(41), u16(1232), u32(0), u16(0), // OPT: root, type 41, class = payload, ttl 0, no options
    );
    expect([...q]).toEqual([...golden]);
  });

  test("without EDNS the query has no additional record", () => {
    const q = encodeQuery({ id: 1, name: "example.com", type: RRTYPES.A, payloadSize: 0 });
    expect([...q]).toEqual([...bytes(u16(1), u16(0x0120), u16(1), u16(0), u16(0), u16(0), name("example.com"), u16(1), u16(1))]);
  });

  test("a bad name cannot be encoded", () => {
    expect(() => encodeQuery({ id: 1, name: `${"a".repeat(64)}.example`, type: 1 })).toThrow(WireError);
    expect(() => encodeQuery({ id: 1, name: "a..b", type: 1 })).toThrow(WireError);
  });
});

describe("decoding answers", () => {
  test("the golden MX response decodes, compression pointers followed", () => {
    const m = decodeMessage(MX_RESPONSE);
    expect(m).toMatchObject({ id: 0xbeef, qr: true, rd: true, ra: true, tc: false, aa: false, rcode: 0 });
    expect(m.questions).toEqual([{ name: "example.com", type: 15, class: 1 }]);
    expect(m.answers).toEqual([
      { name: "example.com", ttl: 300, type: "MX", preference: 10, exchange: "mx1.example.com" },
      { name: "example.com", ttl: 300, type: "MX", preference: 20, exchange: "mx2.example.com" },
    ]);
    expect(m.edns).toBeUndefined();
  });

  test("the encoder compresses names exactly as the golden packet does", () => {
    const m = decodeMessage(MX_RESPONSE);
    const again = encodeMessage({ id: m.id, qr: true, rd: true, ra: true, questions: m.questions, answers: m.answers });
    expect([...again]).toEqual([...MX_RESPONSE]);
  });

  test("every record type decodes from hand-built RDATA", () => {
    const rr = (owner: number[], type: number, rdata: number[]) => [...owner, ...u16(type), ...u16(1), ...u32(60), ...u16(rdata.length), ...rdata];
    const tlsaData = [0xde, 0xad, 0xbe, 0xef];
    const txt = [3, ..."abc"].map((c) => (typeof c === "string" ? c.charCodeAt(0) : c)).concat([2, 0x64, 0x65]);
    const soa = [...name("ns.example"), ...name("hostmaster.example"), ...u32(2024010101), ...u32(7200), ...u32(900), ...u32(1209600), ...u32(120)];
    const answers = [
      rr(name("a.example"), 1, [192, 0, 2, 1]),
      rr(name("a.example"), 28, [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
      rr(name("t.example"), 16, txt),
      rr(name("1.2.0.192.in-addr.arpa"), 12, name("host.example")),
      rr(name("www.example"), 5, name("a.example")),
      rr(name("example"), 2, name("ns.example")),
      rr(name("_25._tcp.mx.example"), 52, [3, 1, 1, ...tlsaData]),
      rr(name("example"), 6, soa),
      rr(name("x.example"), 99, [1, 2, 3]),
    ];
    const packet = bytes(u16(7), u16(0x8180), u16(0), u16(answers.length), u16(0), u16(0), ...answers);
    const m = decodeMessage(packet);
    expect(m.answers).toEqual([
      { name: "a.example", ttl: 60, type: "A", address: "192.0.2.1" },
      { name: "a.example", ttl: 60, type: "AAAA", address: "2001:db8::1" },
      { name: "t.example", ttl: 60, type: "TXT", strings: ["abc", "de"] },
      { name: "1.2.0.192.in-addr.arpa", ttl: 60, type: "PTR", target: "host.example" },
      { name: "www.example", ttl: 60, type: "CNAME", target: "a.example" },
      { name: "example", ttl: 60, type: "NS", target: "ns.example" },
      { name: "_25._tcp.mx.example", ttl: 60, type: "TLSA", usage: 3, selector: 1, matchingType: 1, data: Uint8Array.from(tlsaData) },
      { name: "example", ttl: 60, type: "SOA", mname: "ns.example", rname: "hostmaster.example", serial: 2024010101, refresh: 7200, retry: 900, expire: 1209600, minimum: 120 },
      { name: "x.example", ttl: 60, type: "OTHER", typeCode: 99, data: Uint8Array.from([1, 2, 3]) },
    ]);
    // and they encode back to the same bytes (no compression: the golden packet has none)
    expect([...encodeMessage({ id: 7, qr: true, rd: true, ra: true, answers: m.answers, compress: false })]).toEqual([...packet]);
  });

  test("OPT gives the EDNS data and the extended rcode; the AD bit is read", () => {
    const packet = bytes(u16(9), u16(0x81a0), u16(0), u16(0), u16(0), u16(1), [0], u16(41), u16(4096), u32(0x01008000), u16(0));
    const m = decodeMessage(packet);
    expect(m.edns).toEqual({ payloadSize: 4096, version: 0, dnssecOk: true });
    expect(m.rcode).toBe(16); // BADVERS: upper bits 1, lower bits 0
    expect(m.ad).toBe(true);
    expect(m.additionals).toEqual([]);
  });

  test("names: upper case is folded, odd bytes escaped, a TTL with the top bit set reads as 0", () => {
    const owner = [4, 0x41, 0x2e, 0x20, 0x0a, 7, ..."Example".split("").map((c) => c.charCodeAt(0)), 0];
    const packet = bytes(u16(1), u16(0x8000), u16(0), u16(1), u16(0), u16(0), owner, u16(1), u16(1), u32(0x80000000), u16(4), [10, 0, 0, 1]);
    expect(decodeMessage(packet).answers).toEqual([{ name: "a\\.\\032\\010.example", ttl: 0, type: "A", address: "10.0.0.1" }]);
  });

  test("records of another class are skipped", () => {
    const packet = bytes(u16(1), u16(0x8000), u16(0), u16(1), u16(0), u16(0), name("a.example"), u16(16), u16(3), u32(0), u16(4), [3], "abc");
    expect(decodeMessage(packet).answers).toEqual([]);
  });
});

describe("malformed packets are rejected with WireError", () => {
  const header = (qd: number, an: number, ns = 0, ar = 0) => [...u16(1), ...u16(0x8180), ...u16(qd), ...u16(an), ...u16(ns), ...u16(ar)];
  const cases: [string, Uint8Array][] = [
    ["shorter than a header", bytes(u16(1), u16(0x8180), u16(0))],
    ["counts larger than the message", bytes(header(0, 65535))],
    ["a question cut short", bytes(header(1, 0), name("example.com"), u16(1))],
    ["a pointer to itself", bytes(header(1, 0), [0xc0, 12], u16(1), u16(1))],
    ["a pointer forwards", bytes(header(1, 0), [0xc0, 20], u16(1), u16(1), [0, 0, 0, 0])],
    ["a pointer loop through two names", bytes(header(2, 0), [1], "a", [0xc0, 21], u16(1), u16(1), [1], "b", [0xc0, 12], u16(1), u16(1))],
    ["a reserved label type", bytes(header(1, 0), [0x40, 0], u16(1), u16(1))],
    ["a label past the end", bytes(header(1, 0), [20], "abc")],
    ["a pointer cut in half", bytes(header(1, 0), [0xc0])],
    ["a name longer than 255 bytes", bytes(header(1, 0), ...Array(5).fill([63, ..."x".repeat(63)].map((c) => (typeof c === "string" ? c.charCodeAt(0) : c))), [0], u16(1), u16(1))],
    ["RDATA past the end", bytes(header(0, 1), name("a"), u16(1), u16(1), u32(1), u16(400), [1, 2, 3, 4])],
    ["an A record of 5 bytes", bytes(header(0, 1), name("a"), u16(1), u16(1), u32(1), u16(5), [1, 2, 3, 4, 5])],
    ["an AAAA record of 4 bytes", bytes(header(0, 1), name("a"), u16(28), u16(1), u32(1), u16(4), [1, 2, 3, 4])],
    ["a TXT string longer than its record", bytes(header(0, 1), name("a"), u16(16), u16(1), u32(1), u16(3), [5], "ab")],
    ["an empty TXT record", bytes(header(0, 1), name("a"), u16(16), u16(1), u32(1), u16(0))],
    ["an MX name running out of its RDATA", bytes(header(0, 1), name("a"), u16(15), u16(1), u32(1), u16(4), u16(10), [3], "mx1", [0], [0])],
    ["an MX shorter than its RDATA length", bytes(header(0, 1), name("a"), u16(15), u16(1), u32(1), u16(6), u16(10), [1], "m", [0], [0, 0], [0])],
    ["an SOA with a short tail", bytes(header(0, 1), name("a"), u16(6), u16(1), u32(1), u16(6), [0], [0], u32(1))],
    ["a TLSA shorter than 3 bytes", bytes(header(0, 1), name("a"), u16(52), u16(1), u32(1), u16(2), [3, 1])],
    ["bytes after the last record", bytes(header(0, 0), [0])],
    ["two OPT records", bytes(header(0, 0, 0, 2), [0], u16(41), u16(512), u32(0), u16(0), [0], u16(41), u16(512), u32(0), u16(0))],
    ["an OPT record among the answers", bytes(header(0, 1), [0], u16(41), u16(512), u32(0), u16(0))],
    ["an OPT record with a name", bytes(header(0, 0, 0, 1), name("a"), u16(41), u16(512), u32(0), u16(0))],
  ];
  for (const [what, packet] of cases) {
    test(what, () => {
      expect(() => decodeMessage(packet)).toThrow(WireError);
    });
  }

  test("thousands of random mutations of a valid answer either decode or throw WireError, never anything else", () => {
    // xorshift32, seeded: the same mutations every run
    let s = 0x2545f491;
    const rand = () => {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return (s >>> 0) / 0x100000000;
    };
    const base = encodeMessage({
      id: 1,
      qr: true,
      questions: [{ name: "example.com", type: 16, class: 1 }],
      answers: [
        { name: "example.com", ttl: 60, type: "TXT", strings: ["v=spf1 -all", "x".repeat(200)] },
        { name: "example.com", ttl: 60, type: "MX", preference: 5, exchange: "mx.example.com" },
        { name: "example.com", ttl: 60, type: "SOA", mname: "ns.example.com", rname: "h.example.com", serial: 1, refresh: 2, retry: 3, expire: 4, minimum: 5 },
      ],
      edns: { payloadSize: 1232, version: 0, dnssecOk: false },
    });
    let decoded = 0;
    let rejected = 0;
    for (let i = 0; i < 5000; i++) {
      const p = Uint8Array.from(base);
      const flips = 1 + Math.floor(rand() * 4);
      for (let f = 0; f < flips; f++) p[Math.floor(rand() * p.length)] = Math.floor(rand() * 256);
      const cut = rand() < 0.2 ? p.subarray(0, Math.floor(rand() * p.length)) : p;
      try {
        decodeMessage(cut);
        decoded++;
      } catch (err) {
        expect(err).toBeInstanceOf(WireError);
        rejected++;
      }
    }
    expect(decoded).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
  });
});

describe("round trips", () => {
  test("a message with every section survives encode and decode", () => {
    const answers: DnsRecord[] = [
      { name: "www.example.org", ttl: 10, type: "CNAME", target: "example.org" },
      { name: "example.org", ttl: 20, type: "A", address: "198.51.100.7" },
    ];
    const authorities: DnsRecord[] = [{ name: "example.org", ttl: 30, type: "NS", target: "ns1.example.org" }];
    const additionals: DnsRecord[] = [{ name: "ns1.example.org", ttl: 40, type: "AAAA", address: "2001:db8:0:1::53" }];
    const packet = encodeMessage({
      id: 4242,
      qr: true,
      aa: true,
      rd: true,
      ra: true,
      rcode: 0,
      questions: [{ name: "www.example.org", type: 1, class: 1 }],
      answers,
      authorities,
      additionals,
      edns: { payloadSize: 1232, version: 0, dnssecOk: false },
    });
    const m: DnsMessage = decodeMessage(packet);
    expect(m).toMatchObject({ id: 4242, aa: true, answers, authorities, additionals, edns: { payloadSize: 1232, version: 0, dnssecOk: false } });
  });

  test("TXT strings keep their boundaries, including empty strings and UTF-8", () => {
    const strings = ["", "a".repeat(255), "b", "naïve"];
    const packet = encodeMessage({ id: 1, qr: true, answers: [{ name: "t.example", ttl: 1, type: "TXT", strings }] });
    expect((decodeMessage(packet).answers[0] as { strings: string[] }).strings).toEqual(strings);
    expect(() => encodeMessage({ id: 1, answers: [{ name: "t.example", ttl: 1, type: "TXT", strings: ["c".repeat(256)] }] })).toThrow(WireError);
  });
});
