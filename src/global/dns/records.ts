/**
 * DNS resource records as postern's resolver hands them out: plain values,
 * one shape per record type, names in lower case without the trailing dot
 * (the root is "."), bytes that are not printable in a label written as
 * `\DDD` (so a name never carries a newline or a space into a log line).
 *
 * Runs in every role that looks names up; holds no state.
 */

/** The record types postern asks for by name (RFC 1035, 3596, 6698). */
export const RRTYPES = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, TLSA: 52 } as const;
export type RRType = keyof typeof RRTYPES;

/** The OPT pseudo-record type (EDNS0, RFC 6891); never a record the caller sees. */
export const TYPE_OPT = 41;
export const CLASS_IN = 1;

/** Response codes (RFC 1035 4.1.1, RFC 6895). */
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export function rrtypeName(code: number): RRType | undefined {
  for (const [name, value] of Object.entries(RRTYPES)) if (value === code) return name as RRType;
  return undefined;
}

interface RecordBase {
  /** Owner name. */
  name: string;
  ttl: number;
}

export interface ARecord extends RecordBase {
  type: "A";
  address: string;
}
export interface AaaaRecord extends RecordBase {
  type: "AAAA";
  address: string;
}
export interface MxRecord extends RecordBase {
  type: "MX";
  preference: number;
  /** "." for a null MX (RFC 7505). */
  exchange: string;
}
export interface TxtRecord extends RecordBase {
  type: "TXT";
  /** The record's character-strings as published (each at most 255 bytes); txtRecordText joins them. */
  strings: string[];
}
export interface PtrRecord extends RecordBase {
  type: "PTR";
  target: string;
}
export interface CnameRecord extends RecordBase {
  type: "CNAME";
  target: string;
}
export interface NsRecord extends RecordBase {
  type: "NS";
  target: string;
}
export interface TlsaRecord extends RecordBase {
  type: "TLSA";
  usage: number;
  selector: number;
  matchingType: number;
  data: Uint8Array;
}
export interface SoaRecord extends RecordBase {
  type: "SOA";
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  /** The negative-caching TTL (RFC 2308). */
  minimum: number;
}
/** A type postern does not interpret: its RDATA as received. */
export interface OtherRecord extends RecordBase {
  type: "OTHER";
  typeCode: number;
  data: Uint8Array;
}

export type DnsRecord =
  | ARecord
  | AaaaRecord
  | MxRecord
  | TxtRecord
  | PtrRecord
  | CnameRecord
  | NsRecord
  | TlsaRecord
  | SoaRecord
  | OtherRecord;

/** The record shape a query of type T answers with. */
export type RecordOf<T extends RRType> = Extract<DnsRecord, { type: T }>;

/** The TXT record as one string: its character-strings joined without separator (RFC 7208 3.3, RFC 6376 3.6.2.2). */
export function txtRecordText(record: TxtRecord): string {
  return record.strings.join("");
}

/** The numeric type of a record. */
export function recordTypeCode(record: DnsRecord): number {
  return record.type === "OTHER" ? record.typeCode : RRTYPES[record.type];
}
