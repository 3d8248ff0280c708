/**
 * DNS messages on the wire (RFC 1035 4, EDNS0 from RFC 6891): encoding of
 * queries and of whole messages with name compression (the fake server in
 * the tests answers with it), and a bounded decoder.
 *
 * The decoder distrusts every byte it is given: each count is checked
 * against the bytes left before anything is allocated, every length against
 * the end of its section, compression pointers must point strictly backwards
 * (so a pointer loop cannot be built), names keep to 255 bytes and labels to
 * 63, RDATA of the known types must fill its length exactly, and at most one
 * OPT record is accepted. Anything else is a WireError, never a crash or a
 * hang.
 *
 * Limits: only class IN is interpreted; RDATA of other types is kept as
 * bytes; EDNS options are skipped; TXT strings are read as UTF-8.
 */
import { formatIpAddress, parseIPv4, parseIPv6 } from "../../util/net/cidr-match.ts";
import { labelsToText, MAX_LABEL, MAX_NAME_WIRE, nameToLabels } from "./names.ts";
import { CLASS_IN, recordTypeCode, rrtypeName, TYPE_OPT, type DnsRecord } from "./records.ts";

export class WireError extends Error {}

export interface Question {
  name: string;
  type: number;
  class: number;
}

export interface Edns {
  /** The largest UDP payload the sender can take. */
  payloadSize: number;
  version: number;
  dnssecOk: boolean;
}

export interface DnsMessage {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  ad: boolean;
  cd: boolean;
  /** The full response code, with the upper bits from the OPT record when there is one. */
  rcode: number;
  questions: Question[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
  edns?: Edns;
}

/** The UDP payload size postern offers (DNS flag day 2020). */
export const EDNS_PAYLOAD_SIZE = 1232;
/** A message cannot be longer than TCP's two-byte length prefix allows. */
export const MAX_MESSAGE = 65535;

const HEADER = 12;
const MIN_QUESTION = 5;
const MIN_RECORD = 11;

// ---------------------------------------------------------------- decoding

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) throw new WireError(`truncated message: ${what} runs past the end`);
  }
  u8(): number {
    this.need(1, "a byte");
    return this.buf[this.pos++]!;
  }
  u16(what = "a 16-bit field"): number {
    this.need(2, what);
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }
  u32(what = "a 32-bit field"): number {
    this.need(4, what);
    const b = this.buf;
    const v = ((b[this.pos]! << 24) | (b[this.pos + 1]! << 16) | (b[this.pos + 2]! << 8) | b[this.pos + 3]!) >>> 0;
    this.pos += 4;
    return v;
  }
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A possibly compressed name; `end` bounds the part written in place (RDATA). */
  name(end = this.buf.length): string {
    const buf = this.buf;
    const labels: Uint8Array[] = [];
    let pos = this.pos;
    // every jump must go below the start of the stretch it came from: no loops, at most ~16k jumps
    let floor = pos;
    let jumped = false;
    let wire = 1;
    for (;;) {
      const limit = jumped ? buf.length : end;
      if (pos >= limit) throw new WireError("truncated name");
      const len = buf[pos]!;
      if ((len & 0xc0) === 0xc0) {
        if (pos + 1 >= limit) throw new WireError("truncated compression pointer");
        const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
        if (!jumped) this.pos = pos + 2;
        if (target >= floor) throw new WireError("compression pointer does not point backwards");
        jumped = true;
        floor = target;
        pos = target;
        continue;
      }
      if ((len & 0xc0) !== 0) throw new WireError(`unknown label type 0x${(len & 0xc0).toString(16)}`);
      if (len === 0) {
        if (!jumped) this.pos = pos + 1;
        break;
      }
      if (len > MAX_LABEL) throw new WireError("label longer than 63 bytes");
      if (pos + 1 + len > limit) throw new WireError("truncated label");
      wire += len + 1;
      if (wire > MAX_NAME_WIRE) throw new WireError("name longer than 255 bytes");
      labels.push(buf.subarray(pos + 1, pos + 1 + len));
      pos += 1 + len;
    }
    return labelsToText(labels);
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: false });

function decodeRdata(r: Reader, type: number, end: number, base: { name: string; ttl: number }): DnsRecord {
  const length = end - r.pos;
  const fixed = (n: number, what: string) => {
    if (length !== n) throw new WireError(`${what} record with RDATA length ${length}`);
  };
  switch (rrtypeName(type)) {
    case "A":
      fixed(4, "A");
      return { ...base, type: "A", address: [...r.bytes(4, "A RDATA")].join(".") };
    case "AAAA":
      fixed(16, "AAAA");
      return { ...base, type: "AAAA", address: formatIpAddress({ family: 6, bytes: r.bytes(16, "AAAA RDATA") }) };
    case "MX": {
      const preference = r.u16("MX preference");
      return { ...base, type: "MX", preference, exchange: r.name(end) };
    }
    case "TXT": {
      const strings: string[] = [];
      if (length === 0) throw new WireError("TXT record without a string");
      while (r.pos < end) {
        const n = r.u8();
        if (r.pos + n > end) throw new WireError("TXT string runs past its record");
        strings.push(utf8.decode(r.bytes(n, "TXT string")));
      }
      return { ...base, type: "TXT", strings };
    }
    case "PTR":
      return { ...base, type: "PTR", target: r.name(end) };
    case "CNAME":
      return { ...base, type: "CNAME", target: r.name(end) };
    case "NS":
      return { ...base, type: "NS", target: r.name(end) };
    case "SOA": {
      const mname = r.name(end);
      const rname = r.name(end);
      if (end - r.pos !== 20) throw new WireError("SOA record with a bad length");
      return {
        ...base,
        type: "SOA",
        mname,
        rname,
        serial: r.u32(),
        refresh: r.u32(),
        retry: r.u32(),
        expire: r.u32(),
        minimum: r.u32(),
      };
    }
    case "TLSA": {
      if (length < 3) throw new WireError("TLSA record shorter than 3 bytes");
      const usage = r.u8();
      const selector = r.u8();
      const matchingType = r.u8();
      return { ...base, type: "TLSA", usage, selector, matchingType, data: r.bytes(end - r.pos, "TLSA data") };
    }
    case undefined:
      return { ...base, type: "OTHER", typeCode: type, data: r.bytes(length, "RDATA") };
  }
}

interface RawRecord {
  record?: DnsRecord;
  opt?: { payloadSize: number; ttl: number };
}

function decodeRecord(r: Reader): RawRecord {
  const name = r.name();
  const type = r.u16("record type");
  const cls = r.u16("record class");
  const ttl = r.u32("record TTL");
  const rdlength = r.u16("RDATA length");
  const end = r.pos + rdlength;
  if (end > r.buf.length) throw new WireError("RDATA runs past the end of the message");
  if (type === TYPE_OPT) {
    if (name !== ".") throw new WireError("OPT record with a name other than the root");
    r.pos = end; // options (cookies, padding, ...) are not used
    return { opt: { payloadSize: cls, ttl } };
  }
  // RFC 2181 8: a TTL with the top bit set is taken as zero
  const base = { name, ttl: ttl > 0x7fffffff ? 0 : ttl };
  if (cls !== CLASS_IN) {
    r.pos = end;
    return {};
  }
  const record = decodeRdata(r, type, end, base);
  if (r.pos !== end) throw new WireError(`${record.type} record shorter than its RDATA length`);
  return { record };
}

/** Decodes a whole message; throws WireError for anything malformed. */
export function decodeMessage(buf: Uint8Array): DnsMessage {
  if (buf.length < HEADER) throw new WireError(`message of ${buf.length} bytes is shorter than a header`);
  if (buf.length > MAX_MESSAGE) throw new WireError("message longer than 65535 bytes");
  const r = new Reader(buf);
  const id = r.u16();
  const flags = r.u16();
  const qd = r.u16();
  const an = r.u16();
  const ns = r.u16();
  const ar = r.u16();
  const left = buf.length - HEADER;
  if (qd * MIN_QUESTION + (an + ns + ar) * MIN_RECORD > left) throw new WireError("section counts exceed the message length");
  const questions: Question[] = [];
  for (let i = 0; i < qd; i++) questions.push({ name: r.name(), type: r.u16("question type"), class: r.u16("question class") });
  let opt: RawRecord["opt"];
  const section = (count: number, allowOpt: boolean): DnsRecord[] => {
    const out: DnsRecord[] = [];
    for (let i = 0; i < count; i++) {
      const raw = decodeRecord(r);
      if (raw.opt) {
        if (!allowOpt) throw new WireError("OPT record outside the additional section");
        if (opt) throw new WireError("more than one OPT record");
        opt = raw.opt;
      } else if (raw.record) out.push(raw.record);
    }
    return out;
  };
  const answers = section(an, false);
  const authorities = section(ns, false);
  const additionals = section(ar, true);
  if (r.pos !== buf.length) throw new WireError(`${buf.length - r.pos} bytes after the last record`);
  let rcode = flags & 0xf;
  let edns: Edns | undefined;
  if (opt) {
    rcode |= (opt.ttl >>> 24) << 4;
    edns = { payloadSize: opt.payloadSize, version: (opt.ttl >>> 16) & 0xff, dnssecOk: (opt.ttl & 0x8000) !== 0 };
  }
  return {
    id,
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    ad: (flags & 0x0020) !== 0,
    cd: (flags & 0x0010) !== 0,
    rcode,
    questions,
    answers,
    authorities,
    additionals,
    ...(edns ? { edns } : {}),
  };
}

// ---------------------------------------------------------------- encoding

class Writer {
  buf = new Uint8Array(512);
  len = 0;
  /** Offsets of names already written, by their lower-case text, for compression. */
  readonly offsets = new Map<string, number>();
  constructor(readonly compress: boolean) {}

  #room(n: number): void {
    if (this.len + n > MAX_MESSAGE) throw new WireError("message longer than 65535 bytes");
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.min(MAX_MESSAGE, Math.max(this.buf.length * 2, this.len + n)));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  u8(v: number): void {
    this.#room(1);
    this.buf[this.len++] = v & 0xff;
  }
  u16(v: number): void {
    this.#room(2);
    this.buf[this.len++] = (v >> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
  }
  u32(v: number): void {
    this.u16((v >>> 16) & 0xffff);
    this.u16(v & 0xffff);
  }
  bytes(b: Uint8Array): void {
    this.#room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  setU16(at: number, v: number): void {
    this.buf[at] = (v >> 8) & 0xff;
    this.buf[at + 1] = v & 0xff;
  }
  name(text: string, compress = this.compress): void {
    const labels = nameToLabels(text);
    if (!Array.isArray(labels)) throw new WireError(labels.problem);
    for (let i = 0; i < labels.length; i++) {
      const suffix = labelsToText(labels.slice(i));
      const at = this.offsets.get(suffix);
      if (compress && at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.len < 0x4000 && !this.offsets.has(suffix)) this.offsets.set(suffix, this.len);
      this.u8(labels[i]!.length);
      this.bytes(labels[i]!);
    }
    this.u8(0);
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function addressBytes(text: string, family: 4 | 6): Uint8Array {
  const b = family === 4 ? parseIPv4(text) : parseIPv6(text);
  if (!b) throw new WireError(`not an IPv${family} address: "${text}"`);
  return b;
}

const utf8Encoder = new TextEncoder();

function encodeRdata(w: Writer, record: DnsRecord): void {
  // RFC 3597 4: names in the RDATA of the RFC 1035 types may be compressed; MX, NS, CNAME, PTR, SOA are those
  switch (record.type) {
    case "A":
      return w.bytes(addressBytes(record.address, 4));
    case "AAAA":
      return w.bytes(addressBytes(record.address, 6));
    case "MX":
      w.u16(record.preference);
      return w.name(record.exchange);
    case "TXT":
      for (const s of record.strings) {
        const b = utf8Encoder.encode(s);
        if (b.length > 255) throw new WireError("TXT string longer than 255 bytes");
        w.u8(b.length);
        w.bytes(b);
      }
      return;
    case "PTR":
    case "CNAME":
    case "NS":
      return w.name(record.target);
    case "SOA":
      w.name(record.mname);
      w.name(record.rname);
      for (const v of [record.serial, record.refresh, record.retry, record.expire, record.minimum]) w.u32(v);
      return;
    case "TLSA":
      w.u8(record.usage);
      w.u8(record.selector);
      w.u8(record.matchingType);
      return w.bytes(record.data);
    case "OTHER":
      return w.bytes(record.data);
  }
}

function encodeRecord(w: Writer, record: DnsRecord): void {
  w.name(record.name);
  w.u16(recordTypeCode(record));
  w.u16(CLASS_IN);
  w.u32(record.ttl);
  const lengthAt = w.len;
  w.u16(0);
  encodeRdata(w, record);
  w.setU16(lengthAt, w.len - lengthAt - 2);
}

/** The parts of a message an encoder needs; flags default to false, counts follow the sections. */
export interface MessageSpec {
  id: number;
  qr?: boolean;
  opcode?: number;
  aa?: boolean;
  tc?: boolean;
  rd?: boolean;
  ra?: boolean;
  ad?: boolean;
  cd?: boolean;
  rcode?: number;
  questions?: Question[];
  answers?: DnsRecord[];
  authorities?: DnsRecord[];
  additionals?: DnsRecord[];
  edns?: Edns;
  /** Compress names (default: yes). */
  compress?: boolean;
}

/** Encodes a message; an EDNS rcode above 15 goes into the OPT record. */
export function encodeMessage(m: MessageSpec): Uint8Array {
  const w = new Writer(m.compress ?? true);
  const rcode = m.rcode ?? 0;
  if (rcode > 15 && !m.edns) throw new WireError(`rcode ${rcode} needs EDNS`);
  let flags = 0;
  if (m.qr) flags |= 0x8000;
  flags |= ((m.opcode ?? 0) & 0xf) << 11;
  if (m.aa) flags |= 0x0400;
  if (m.tc) flags |= 0x0200;
  if (m.rd) flags |= 0x0100;
  if (m.ra) flags |= 0x0080;
  if (m.ad) flags |= 0x0020;
  if (m.cd) flags |= 0x0010;
  flags |= rcode & 0xf;
  const questions = m.questions ?? [];
  const answers = m.answers ?? [];
  const authorities = m.authorities ?? [];
  const additionals = m.additionals ?? [];
  w.u16(m.id);
  w.u16(flags);
  w.u16(questions.length);
  w.u16(answers.length);
  w.u16(authorities.length);
  w.u16(additionals.length + (m.edns ? 1 : 0));
  for (const q of questions) {
    w.name(q.name);
    w.u16(q.type);
    w.u16(q.class);
  }
  for (const r of answers) encodeRecord(w, r);
  for (const r of authorities) encodeRecord(w, r);
  for (const r of additionals) encodeRecord(w, r);
  if (m.edns) {
    w.u8(0);
    w.u16(TYPE_OPT);
    w.u16(m.edns.payloadSize);
    w.u32((((rcode >> 4) & 0xff) << 24) | ((m.edns.version & 0xff) << 16) | (m.edns.dnssecOk ? 0x8000 : 0));
    w.u16(0);
  }
  return w.result();
}

export interface QuerySpec {
  id: number;
  name: string;
  type: number;
  /** Offer EDNS0 with this payload size (default 1232); 0 sends a plain RFC 1035 query. */
  payloadSize?: number;
}

/**
 * A recursive query: RD set, AD set (RFC 6840 5.7: ask a validating resolver to say whether the answer
 * was authenticated, which DANE needs), EDNS0 unless turned off. Throws WireError for a bad name.
 */
export function encodeQuery(q: QuerySpec): Uint8Array {
  const payloadSize = q.payloadSize ?? EDNS_PAYLOAD_SIZE;
  return encodeMessage({
    id: q.id,
    rd: true,
    ad: true,
    questions: [{ name: q.name, type: q.type, class: CLASS_IN }],
    ...(payloadSize > 0 ? { edns: { payloadSize, version: 0, dnssecOk: false } } : {}),
  });
}
