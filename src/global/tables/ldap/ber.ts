/**
 * The slice of ASN.1 BER (X.690) that LDAPv3 (RFC 4511) needs: definite
 * lengths, one-byte tags, INTEGER, BOOLEAN, ENUMERATED, OCTET STRING, NULL
 * and constructed values. Writing builds nested buffers; reading walks a
 * buffer with bounds checks on every length, and throws BerError for
 * anything malformed.
 *
 * Used by the ldap: table in whichever process looks it up; what it reads
 * comes from an LDAP server and is untrusted: no length may point past its
 * enclosing value, integers are limited to 32 bits, and the caller bounds
 * the size of a whole message before it is read.
 */

export class BerError extends Error {}

/** Universal tags. */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  ENUMERATED: 0x0a,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV with `tag` around `content`. */
export function tlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(content.length), content]);
}

export function constructed(tag: number, ...parts: Uint8Array[]): Buffer {
  return tlv(tag, Buffer.concat(parts));
}

export function integer(n: number, tag: number = TAG.INTEGER): Buffer {
  if (!Number.isInteger(n) || n < -0x80000000 || n > 0x7fffffff) throw new BerError(`integer out of range: ${n}`);
  const bytes: number[] = [];
  let v = n;
  do {
    bytes.unshift(v & 0xff);
    v >>= 8;
  } while (!((v === 0 && (bytes[0]! & 0x80) === 0) || (v === -1 && (bytes[0]! & 0x80) !== 0)));
  return tlv(tag, Buffer.from(bytes));
}

export function enumerated(n: number): Buffer {
  return integer(n, TAG.ENUMERATED);
}

export function boolean(b: boolean): Buffer {
  return tlv(TAG.BOOLEAN, Buffer.from([b ? 0xff : 0]));
}

export function octetString(s: string | Uint8Array, tag: number = TAG.OCTET_STRING): Buffer {
  return tlv(tag, typeof s === "string" ? Buffer.from(s, "utf8") : s);
}

/** A decoded TLV: its tag and content, a view into the message. */
export interface Element {
  tag: number;
  content: Buffer;
}

/**
 * How long the TLV at the start of `input` is, header included; undefined
 * when more bytes are needed to tell. Throws for an indefinite or absurd length.
 */
export function elementLength(input: Buffer, maxBytes: number): number | undefined {
  if (input.length < 2) return undefined;
  const first = input[1]!;
  if (first < 0x80) return 2 + first;
  const count = first & 0x7f;
  if (count === 0) throw new BerError("indefinite length");
  if (count > 4) throw new BerError("length field too long");
  if (input.length < 2 + count) return undefined;
  let n = 0;
  for (let i = 0; i < count; i++) n = n * 256 + input[2 + i]!;
  if (n > maxBytes) throw new BerError(`element of ${n} bytes exceeds the limit of ${maxBytes}`);
  return 2 + count + n;
}

/** Reads the TLVs of one constructed value, in order. */
export class BerReader {
  #pos = 0;

  constructor(readonly buffer: Buffer) {}

  get done(): boolean {
    return this.#pos >= this.buffer.length;
  }

  peekTag(): number | undefined {
    return this.done ? undefined : this.buffer[this.#pos];
  }

  read(expectedTag?: number): Element {
    const rest = this.buffer.subarray(this.#pos);
    if (rest.length < 2) throw new BerError("truncated element");
    const total = elementLength(rest, rest.length);
    if (total === undefined || total > rest.length) throw new BerError("element longer than its container");
    const tag = rest[0]!;
    if ((tag & 0x1f) === 0x1f) throw new BerError("multi-byte tags are not used by LDAP");
    if (expectedTag !== undefined && tag !== expectedTag) {
      throw new BerError(`expected tag 0x${expectedTag.toString(16)}, got 0x${tag.toString(16)}`);
    }
    const header = rest[1]! < 0x80 ? 2 : 2 + (rest[1]! & 0x7f);
    this.#pos += total;
    return { tag, content: rest.subarray(header, total) };
  }

  readInteger(tag: number = TAG.INTEGER): number {
    const { content } = this.read(tag);
    if (content.length === 0 || content.length > 4) throw new BerError("integer of bad length");
    return content.readIntBE(0, content.length);
  }

  readEnumerated(): number {
    return this.readInteger(TAG.ENUMERATED);
  }

  readString(tag: number = TAG.OCTET_STRING): string {
    return this.read(tag).content.toString("utf8");
  }

  /** The content of a constructed value, as a reader of its own. */
  readConstructed(tag: number): BerReader {
    return new BerReader(this.read(tag).content);
  }
}
