/**
 * The Sendmail milter protocol (version 6, as Postfix's milter8 speaks it):
 * command and reply codes, the negotiation flags, and the packet codec.
 *
 * A packet is a 4-byte big-endian length (counting the code byte), a one
 * byte code, and the data. What we send is built here; what a milter sends
 * is read by PacketReader, which refuses a packet longer than Postfix's
 * limit (INT_MAX / 2) and, before that, anything longer than the bound its
 * caller gives, so a milter cannot make us buffer without end.
 *
 * Pure code, no I/O: used by the milter client (client.ts) in smtpd and
 * cleanup, as mail_owner. Everything read from a milter is untrusted.
 */

/** Commands (MTA to milter). */
export const SMFIC = {
  ABORT: "A",
  BODY: "B",
  CONNECT: "C",
  MACRO: "D",
  BODYEOB: "E",
  HELO: "H",
  QUIT_NC: "K",
  HEADER: "L",
  MAIL: "M",
  EOH: "N",
  OPTNEG: "O",
  QUIT: "Q",
  RCPT: "R",
  DATA: "T",
  UNKNOWN: "U",
} as const;

/** Replies (milter to MTA). */
export const SMFIR = {
  ADDRCPT: "+",
  DELRCPT: "-",
  ADDRCPT_PAR: "2",
  SHUTDOWN: "4",
  ACCEPT: "a",
  REPLBODY: "b",
  CONTINUE: "c",
  DISCARD: "d",
  CHGFROM: "e",
  CONN_FAIL: "f",
  ADDHEADER: "h",
  INSHEADER: "i",
  SETSYMLIST: "l",
  CHGHEADER: "m",
  PROGRESS: "p",
  QUARANTINE: "q",
  REJECT: "r",
  SKIP: "s",
  TEMPFAIL: "t",
  REPLYCODE: "y",
} as const;

/** Actions a milter may take (the second word of SMFIC_OPTNEG). */
export const SMFIF = {
  ADDHDRS: 1 << 0,
  CHGBODY: 1 << 1,
  ADDRCPT: 1 << 2,
  DELRCPT: 1 << 3,
  CHGHDRS: 1 << 4,
  QUARANTINE: 1 << 5,
  CHGFROM: 1 << 6,
  ADDRCPT_PAR: 1 << 7,
  SETSYMLIST: 1 << 8,
} as const;

/** Every action Postfix (and postern) lets a milter take. */
export const ALL_ACTIONS = Object.values(SMFIF).reduce((a, b) => a | b, 0);

/** Protocol steps a milter skips or does not answer (the third word of SMFIC_OPTNEG). */
export const SMFIP = {
  NOCONNECT: 1 << 0,
  NOHELO: 1 << 1,
  NOMAIL: 1 << 2,
  NORCPT: 1 << 3,
  NOBODY: 1 << 4,
  NOHDRS: 1 << 5,
  NOEOH: 1 << 6,
  NR_HDR: 1 << 7,
  NOUNKNOWN: 1 << 8,
  NODATA: 1 << 9,
  SKIP: 1 << 10,
  RCPT_REJ: 1 << 11,
  NR_CONN: 1 << 12,
  NR_HELO: 1 << 13,
  NR_MAIL: 1 << 14,
  NR_RCPT: 1 << 15,
  NR_DATA: 1 << 16,
  NR_UNKN: 1 << 17,
  NR_EOH: 1 << 18,
  NR_BODY: 1 << 19,
  HDR_LEADSPC: 1 << 20,
} as const;

const NR_MASK = SMFIP.NR_HDR | SMFIP.NR_CONN | SMFIP.NR_HELO | SMFIP.NR_MAIL | SMFIP.NR_RCPT | SMFIP.NR_DATA | SMFIP.NR_UNKN | SMFIP.NR_EOH | SMFIP.NR_BODY;
const V2_MASK = SMFIP.NOCONNECT | SMFIP.NOHELO | SMFIP.NOMAIL | SMFIP.NORCPT | SMFIP.NOBODY | SMFIP.NOHDRS | SMFIP.NOEOH;
const V3_MASK = V2_MASK | SMFIP.NOUNKNOWN;
const V4_MASK = V3_MASK | SMFIP.NODATA;
const V6_MASK = V4_MASK | SMFIP.SKIP | SMFIP.RCPT_REJ | NR_MASK | SMFIP.HDR_LEADSPC;

/** The protocol steps we can let a milter skip, per protocol version (Postfix's MILTER8_Vn_PROTO_MASK). */
export function protocolMask(version: number): number {
  if (version >= 6) return V6_MASK;
  if (version >= 4) return V4_MASK;
  if (version === 3) return V3_MASK;
  return V2_MASK;
}

/** Macro stages, as SETSYMLIST and the OPTNEG reply number them. */
export const SMFIM = { CONNECT: 0, HELO: 1, ENVFROM: 2, ENVRCPT: 3, DATA: 4, EOM: 5, EOH: 6 } as const;

/** Postfix's largest acceptable packet (milter8.c: INT_MAX / 2). */
export const MAX_PACKET = Math.floor(0x7fffffff / 2);
/** Body chunk size Postfix sends (MILTER_CHUNK_SIZE). */
export const CHUNK_SIZE = 65535;

export interface Packet {
  code: string;
  data: Buffer;
}

/** A packet ready to write: length, code, data. */
export function encodePacket(code: string, data: Uint8Array = new Uint8Array(0)): Buffer {
  const out = Buffer.allocUnsafe(5 + data.length);
  out.writeUInt32BE(data.length + 1, 0);
  out[4] = code.charCodeAt(0);
  out.set(data, 5);
  return out;
}

/** NUL-terminated strings, as the protocol's string arguments are (latin1: bytes pass unchanged). */
export function cstrings(...values: string[]): Buffer {
  return Buffer.concat(values.map((v) => Buffer.from(`${v}\0`, "latin1")));
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

export function optnegPacket(version: number, actions: number, protocol: number): Buffer {
  return encodePacket(SMFIC.OPTNEG, Buffer.concat([u32(version), u32(actions), u32(protocol)]));
}

/** SMFIC_CONNECT: host name, family ('4', '6', 'L' or 'U' for unknown), port, address. */
export function connectPacket(hostname: string, address: string, port: number): Buffer {
  const family = address.includes(":") ? "6" : address ? "4" : "U";
  if (family === "U") return encodePacket(SMFIC.CONNECT, Buffer.concat([cstrings(hostname), Buffer.from("U", "latin1")]));
  const p = Buffer.allocUnsafe(2);
  p.writeUInt16BE(port & 0xffff, 0);
  return encodePacket(SMFIC.CONNECT, Buffer.concat([cstrings(hostname), Buffer.from(family, "latin1"), p, cstrings(address)]));
}

/** SMFIC_MACRO: the command code the macros are for, then name/value pairs. */
export function macroPacket(forCode: string, macros: ReadonlyArray<readonly [string, string]>): Buffer {
  return encodePacket(SMFIC.MACRO, Buffer.concat([Buffer.from(forCode, "latin1"), cstrings(...macros.flat())]));
}

export class MilterProtocolError extends Error {}

/** Reads packets from a byte stream; push() what arrives, next() takes a complete packet. */
export class PacketReader {
  #chunks: Buffer[] = [];
  #length = 0;
  #limit: number;

  /** `limit`: the largest packet accepted (at most MAX_PACKET). */
  constructor(limit = MAX_PACKET) {
    this.#limit = Math.min(limit, MAX_PACKET);
  }

  push(chunk: Uint8Array): void {
    this.#chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.#length += chunk.byteLength;
  }

  get buffered(): number {
    return this.#length;
  }

  /** A complete packet, or undefined when more bytes are needed; throws on a length out of bounds. */
  next(): Packet | undefined {
    if (this.#length < 4) return undefined;
    const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#length);
    this.#chunks = [all];
    const len = all.readUInt32BE(0);
    if (len < 1) throw new MilterProtocolError("bad packet length: 0");
    if (len > this.#limit) throw new MilterProtocolError(`packet too long: ${len} > ${this.#limit}`);
    if (this.#length < 4 + len) return undefined;
    const code = String.fromCharCode(all[4]!);
    const data = Buffer.from(all.subarray(5, 4 + len));
    const rest = all.subarray(4 + len);
    this.#chunks = rest.length ? [rest] : [];
    this.#length = rest.length;
    return { code, data };
  }
}

/** Cursor over a packet's data, with the reads the protocol needs; a short or malformed packet throws. */
export class DataCursor {
  #data: Buffer;
  #pos = 0;

  constructor(data: Buffer) {
    this.#data = data;
  }

  get remaining(): number {
    return this.#data.length - this.#pos;
  }

  u32(): number {
    if (this.remaining < 4) throw new MilterProtocolError("packet too short for a 32-bit number");
    const n = this.#data.readUInt32BE(this.#pos);
    this.#pos += 4;
    return n;
  }

  /** A NUL-terminated string (latin1). */
  string(): string {
    const end = this.#data.indexOf(0, this.#pos);
    if (end < 0) throw new MilterProtocolError("string without a terminating null byte");
    const s = this.#data.toString("latin1", this.#pos, end);
    this.#pos = end + 1;
    return s;
  }

  rest(): Buffer {
    const r = this.#data.subarray(this.#pos);
    this.#pos = this.#data.length;
    return r;
  }

  end(): void {
    if (this.remaining !== 0) throw new MilterProtocolError(`${this.remaining} unexpected bytes at the end of a packet`);
  }
}

export interface Negotiated {
  version: number;
  actions: number;
  protocol: number;
  /** Macro lists the milter asked for, by stage (SMFIM_*). */
  macros: Map<number, string[]>;
}

/** The milter's SMFIC_OPTNEG reply: version, actions, protocol, then optional (stage, macro list) pairs. */
export function parseOptneg(data: Buffer): Negotiated {
  const c = new DataCursor(data);
  const version = c.u32();
  const actions = c.u32();
  const protocol = c.u32();
  const macros = new Map<number, string[]>();
  while (c.remaining > 0) {
    const stage = c.u32();
    const list = c.string();
    macros.set(stage, list.split(/[\s,]+/).filter(Boolean));
  }
  return { version, actions, protocol, macros };
}

/** The milter's reply, decoded and checked; `unknown` for a code the protocol does not have. */
export type MilterReply =
  | { code: "continue" | "accept" | "discard" | "reject" | "tempfail" | "shutdown" | "progress" | "skip" | "connfail" }
  | { code: "replycode"; text: string }
  | { code: "quarantine"; reason: string }
  | { code: "addheader"; name: string; value: string }
  | { code: "insheader"; index: number; name: string; value: string }
  | { code: "chgheader"; index: number; name: string; value: string }
  | { code: "replbody"; chunk: Buffer }
  | { code: "chgfrom"; sender: string; args: string }
  | { code: "addrcpt"; recipient: string; args: string }
  | { code: "delrcpt"; recipient: string }
  | { code: "setsymlist"; stage: number; macros: string[] };

const EMPTY_REPLIES: Record<string, MilterReply["code"]> = {
  [SMFIR.CONTINUE]: "continue",
  [SMFIR.ACCEPT]: "accept",
  [SMFIR.DISCARD]: "discard",
  [SMFIR.REJECT]: "reject",
  [SMFIR.TEMPFAIL]: "tempfail",
  [SMFIR.SHUTDOWN]: "shutdown",
  [SMFIR.PROGRESS]: "progress",
  [SMFIR.SKIP]: "skip",
  [SMFIR.CONN_FAIL]: "connfail",
};

/** Decodes one reply packet; throws MilterProtocolError on a malformed or unknown one. */
export function parseReply(p: Packet): MilterReply {
  const c = new DataCursor(p.data);
  const simple = EMPTY_REPLIES[p.code];
  if (simple) {
    c.end();
    return { code: simple } as MilterReply;
  }
  switch (p.code) {
    case SMFIR.REPLYCODE: {
      const text = c.string();
      c.end();
      return { code: "replycode", text };
    }
    case SMFIR.QUARANTINE: {
      const reason = c.string();
      c.end();
      return { code: "quarantine", reason };
    }
    case SMFIR.ADDHEADER: {
      const name = c.string();
      const value = c.string();
      c.end();
      return { code: "addheader", name, value };
    }
    case SMFIR.INSHEADER:
    case SMFIR.CHGHEADER: {
      const index = c.u32();
      const name = c.string();
      const value = c.string();
      c.end();
      return { code: p.code === SMFIR.INSHEADER ? "insheader" : "chgheader", index, name, value };
    }
    case SMFIR.REPLBODY:
      return { code: "replbody", chunk: c.rest() };
    case SMFIR.CHGFROM: {
      const sender = c.string();
      const args = c.remaining ? c.string() : "";
      c.end();
      return { code: "chgfrom", sender, args };
    }
    case SMFIR.ADDRCPT: {
      const recipient = c.string();
      c.end();
      return { code: "addrcpt", recipient, args: "" };
    }
    case SMFIR.ADDRCPT_PAR: {
      const recipient = c.string();
      const args = c.remaining ? c.string() : "";
      c.end();
      return { code: "addrcpt", recipient, args };
    }
    case SMFIR.DELRCPT: {
      const recipient = c.string();
      c.end();
      return { code: "delrcpt", recipient };
    }
    case SMFIR.SETSYMLIST: {
      const stage = c.u32();
      const list = c.string();
      c.end();
      return { code: "setsymlist", stage, macros: list.split(/[\s,]+/).filter(Boolean) };
    }
    default:
      throw new MilterProtocolError(`unknown reply code 0x${p.code.charCodeAt(0).toString(16)}`);
  }
}

/**
 * Postfix's check of a milter's SMFIR_REPLYCODE text (milter8_valid_smtp_reply): one or more
 * lines "4xx" or "5xx", an optional enhanced code of the same class, text; "\r\n" between lines,
 * all lines with the same code.
 */
export function validSmtpReply(text: string): boolean {
  const lines = text.split("\r\n");
  const first = /^([45]\d\d)[ -]/.exec(lines[0] ?? "");
  if (!first) return false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const last = i === lines.length - 1;
    if (!line.startsWith(first[1]!) || line[3] !== (last ? " " : "-")) {
      if (!(last && line === first[1])) return false;
    }
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(line)) return false;
    const dsn = /^\d{3}[ -](\d)\.\d{1,3}\.\d{1,3}(?: |$)/.exec(line);
    if (dsn && dsn[1] !== first[1]![0]) return false;
  }
  return true;
}
