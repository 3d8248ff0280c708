/**
 * Fuzz target: the DNS wire codec (src/global/dns/wire.ts). The decoder reads
 * answers from the network (a resolver, or anyone who can race one over UDP),
 * so any bytes must give a message or a WireError, in bounded time (pointer
 * loops, counts larger than the message). The encoder is what the fake DNS
 * server of the tests answers with: a message encoded and decoded again must
 * be the same message, compressed or not.
 */
import { describe, expect, test } from "bun:test";
import { labelsToText } from "../../src/global/dns/names.ts";
import { formatIpAddress } from "../../src/util/net/cidr-match.ts";
import { RRTYPES, TYPE_OPT, type DnsRecord } from "../../src/global/dns/records.ts";
import { decodeMessage, encodeMessage, encodeQuery, WireError, type MessageSpec } from "../../src/global/dns/wire.ts";
import { bytesFrom, expectOnly, fc, fuzz, TEST_TIMEOUT_MS } from "./fuzz.ts";

/** Labels of any bytes (dots, backslashes, upper case, controls included) that fit a name; as the decoder writes them. */
const name: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      fc.constantFrom("example", "com", "mx", "a", "xn--bcher-kva", "_dmarc", "*"),
      fc.uint8Array({ minLength: 1, maxLength: 63 }).map((b) => Buffer.from(b).toString("latin1")),
      fc.uint8Array({ minLength: 1, maxLength: 4 }).map((b) => Buffer.from(b).toString("latin1")),
    ),
    { maxLength: 6 },
  )
  .map((labels) => labels.map((l) => Buffer.from(l, "latin1")))
  .filter((labels) => labels.reduce((n, l) => n + l.length + 1, 1) <= 255)
  .map((labels) => labelsToText(labels));

const ttl = fc.integer({ min: 0, max: 0x7fffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
/** A TXT character-string: any text whose UTF-8 form fits 255 bytes. */
const txtString = fc.string({ unit: "binary", maxLength: 80 }).filter((s) => Buffer.byteLength(s) <= 255);
const known = new Set<number>([...Object.values(RRTYPES), TYPE_OPT]);

const record: fc.Arbitrary<DnsRecord> = fc.oneof(
  fc.record({ type: fc.constant("A" as const), name, ttl, address: fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => [...b].join(".")) }),
  fc.record({ type: fc.constant("AAAA" as const), name, ttl, address: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((bytes) => formatIpAddress({ family: 6, bytes })) }),
  fc.record({ type: fc.constant("MX" as const), name, ttl, preference: u16, exchange: name }),
  fc.record({ type: fc.constant("TXT" as const), name, ttl, strings: fc.array(txtString, { minLength: 1, maxLength: 4 }) }),
  fc.record({ type: fc.constantFrom("PTR" as const, "CNAME" as const, "NS" as const), name, ttl, target: name }),
  fc.record({ type: fc.constant("SOA" as const), name, ttl, mname: name, rname: name, serial: u32, refresh: u32, retry: u32, expire: u32, minimum: u32 }),
  fc.record({ type: fc.constant("TLSA" as const), name, ttl, usage: fc.nat(255), selector: fc.nat(255), matchingType: fc.nat(255), data: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ type: fc.constant("OTHER" as const), name, ttl, typeCode: u16.filter((t) => !known.has(t)), data: fc.uint8Array({ maxLength: 64 }) }),
) as fc.Arbitrary<DnsRecord>;

const message: fc.Arbitrary<MessageSpec> = fc
  .record({
    id: u16,
    qr: fc.boolean(),
    opcode: fc.nat(15),
    aa: fc.boolean(),
    tc: fc.boolean(),
    rd: fc.boolean(),
    ra: fc.boolean(),
    ad: fc.boolean(),
    cd: fc.boolean(),
    rcode: fc.nat(15),
    questions: fc.array(fc.record({ name, type: u16, class: u16 }), { maxLength: 2 }),
    answers: fc.array(record, { maxLength: 5 }),
    authorities: fc.array(record, { maxLength: 2 }),
    additionals: fc.array(record, { maxLength: 2 }),
    edns: fc.option(fc.record({ payloadSize: u16, version: fc.nat(255), dnssecOk: fc.boolean() }), { nil: undefined }),
    compress: fc.boolean(),
  })
  .chain((m) => (m.edns ? fc.nat(4095).map((rcode) => ({ ...m, rcode })) : fc.constant(m)))
  .map((m) => {
    const { edns, ...rest } = m;
    return edns ? { ...rest, edns } : rest;
  });

/** What decodeMessage gives back for a spec: the same fields, flags defaulted, records as given. */
function expected(m: MessageSpec) {
  const { compress: _compress, ...spec } = m;
  return { ...spec };
}

describe("DNS wire format", () => {
  test("encode then decode gives back the message, compressed or not", () => {
    fuzz(0xd115, 1500, message, (m) => {
      const bytes = expectOnly(() => encodeMessage(m), WireError);
      if (bytes instanceof Error) {
        // only a message too long for DNS may be refused
        expect(bytes.message).toContain("longer than 65535");
        return;
      }
      const back = decodeMessage(bytes);
      expect(back).toMatchObject(expected(m));
      expect(back.answers).toEqual(m.answers!);
      expect(back.authorities).toEqual(m.authorities!);
      expect(back.additionals).toEqual(m.additionals!);
    });
  }, TEST_TIMEOUT_MS);

  test("queries for any name decode as that question", () => {
    fuzz(0xd116, 500, fc.tuple(name, u16, u16, fc.constantFrom(0, 512, 1232, 4096)), ([qname, id, type, payloadSize]) => {
      const back = decodeMessage(encodeQuery({ id, name: qname, type, payloadSize }));
      expect(back.questions).toEqual([{ name: qname, type, class: 1 }]);
      expect(back.edns?.payloadSize).toBe(payloadSize === 0 ? undefined : payloadSize);
    });
  }, TEST_TIMEOUT_MS);

  test("random and mutated bytes give a message or a WireError", () => {
    // a header with small counts, then bytes that look like labels, pointers and lengths
    const header = fc.tuple(u16, u16, fc.nat(3), fc.nat(6), fc.nat(3), fc.nat(3)).map((h) => {
      const b = Buffer.alloc(12);
      for (const [i, v] of h.entries()) b.writeUInt16BE(v, i * 2);
      return b;
    });
    fuzz(0xd117, 2000, fc.tuple(header, bytesFrom([0, 1, 3, 12, 0xc0, 0xc0, 0x3f, 0x40, 0x80, 41, 15, 16, 6, 0xff], 300)), ([head, body]) => {
      expectOnly(() => decodeMessage(Buffer.concat([head, body])), WireError);
    });
    const mutation = fc.tuple(fc.nat(), fc.oneof(fc.constantFrom(0, 0xc0, 0xc0 | 0x3f, 63, 64, 0xff), fc.nat(255)), fc.constantFrom("set", "insert", "delete"));
    fuzz(0xd118, 2000, fc.tuple(message, fc.array(mutation, { minLength: 1, maxLength: 4 })), ([m, mutations]) => {
      let bytes: number[];
      try {
        bytes = [...encodeMessage(m)];
      } catch {
        return;
      }
      for (const [at, value, kind] of mutations) {
        const i = at % (bytes.length + 1);
        if (kind === "set" && i < bytes.length) bytes[i] = value;
        else if (kind === "insert") bytes.splice(i, 0, value);
        else bytes.splice(i, 1);
      }
      expectOnly(() => decodeMessage(Uint8Array.from(bytes)), WireError);
    });
  }, TEST_TIMEOUT_MS);

  test("chains of compression pointers are walked in bounded time", () => {
    // record i's owner name points at record i-1's, which points further back: a message of n records makes
    // the decoder follow n*(n-1)/2 pointers; the longest such chain (pointers reach only the first 16 KB: ~1,360 records) must stay cheap
    fuzz(0xd119, 6, fc.integer({ min: 1, max: 1360 }), (n) => {
      const b = Buffer.alloc(19 + 12 * n);
      b.writeUInt16BE(1, 4);
      b.writeUInt16BE(n, 6);
      b.set([1, 0x61, 0, 0, 1, 0, 1], 12); // question "a" A IN
      for (let i = 0; i < n; i++) {
        const at = 19 + 12 * i;
        b.writeUInt16BE(0xc000 | (i === 0 ? 12 : at - 12), at);
        b.writeUInt16BE(65280, at + 2); // a private-use type: kept as bytes
        b.writeUInt16BE(1, at + 4);
      }
      const m = expectOnly(() => decodeMessage(b), WireError);
      if (m instanceof Error) throw m;
      expect(m.answers.length).toBe(n);
      expect(m.answers.every((r) => r.name === "a")).toBe(true);
    });
  }, TEST_TIMEOUT_MS);
});
