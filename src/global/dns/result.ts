/**
 * What a DNS question comes back with: a value, never an exception. `ok`
 * carries the records and their TTL; the failures tell apart what an MTA
 * must treat differently: the name does not exist (nxdomain), it exists
 * without records of the type (nodata), the server failed (servfail), said
 * no (refused), did not understand (formerr, other rcodes), nothing came
 * back in time (timeout), the network failed or the answers were garbage
 * (network), or the name cannot be asked at all (badname).
 *
 * Also the texts Postfix logs for these outcomes ("Host not found, try
 * again", ...) and the DnsQuerier interface the lookup helpers are written
 * against, so tests and other resolvers can stand in.
 */
import type { RecordOf, RRType } from "./records.ts";

export interface DnsOk<R> {
  status: "ok";
  records: R[];
  /** The owner name of the records: the query name, or where its CNAME chain led. */
  canonicalName: string;
  /** Seconds the answer may still be used (the smallest TTL of the records and CNAMEs used). */
  ttl: number;
  /** The server set the AD bit: a validating resolver vouches for the answer (DNSSEC). */
  authenticated: boolean;
  source: "dns" | "cache" | "hosts";
}

export type DnsFailure =
  | { status: "nxdomain"; authenticated?: boolean }
  | { status: "nodata"; authenticated?: boolean }
  | { status: "servfail" }
  | { status: "refused" }
  | { status: "formerr" }
  | { status: "rcode"; rcode: number }
  | { status: "timeout" }
  | { status: "network"; code: string; message: string }
  | { status: "badname"; message: string };

export type DnsResult<R> = DnsOk<R> | DnsFailure;

export interface QueryOptions {
  /** Apply resolv.conf's search list and ndots (default: no; MTA lookups use fully-qualified names). */
  search?: boolean;
}

/** What the lookup helpers need from a resolver. */
export interface DnsQuerier {
  query<T extends RRType>(name: string, type: T, options?: QueryOptions): Promise<DnsResult<RecordOf<T>>>;
}

/** A failure that may go away: the caller should defer, not bounce. */
export function isTemporary(result: { status: string }): boolean {
  switch (result.status) {
    case "servfail":
    case "timeout":
    case "network":
    case "refused":
      return true;
    default:
      return false;
  }
}

/** The name does not exist or has no records of the type: a definite "no". */
export function isNotFound(result: { status: string }): boolean {
  return result.status === "nxdomain" || result.status === "nodata";
}

/** The text Postfix's resolver library gives for an outcome (h_errno's strings). */
export function dnsFailureText(result: DnsFailure): string {
  switch (result.status) {
    case "nxdomain":
      return "Host not found";
    case "nodata":
      return "Host found but no data record of requested type";
    case "servfail":
    case "timeout":
    case "network":
    case "refused":
      return "Host not found, try again";
    case "formerr":
    case "rcode":
      return "Non-recoverable error";
    case "badname":
      return "Invalid domain name";
  }
}

/** Postfix's shape: `Name service error for name=example.com type=MX: Host not found, try again`. */
export function nameServiceError(name: string, type: string, result: DnsFailure): string {
  return `Name service error for name=${name} type=${type}: ${dnsFailureText(result)}`;
}
