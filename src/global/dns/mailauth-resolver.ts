/**
 * postern's resolver in the shape mailauth asks for: an async
 * `resolver(name, rrtype)` with the results and errors of node's
 * `dns.promises.resolve`. TXT records stay arrays of their strings
 * (mailauth joins them), MX records are `{ exchange, priority }`, and a
 * failure throws an Error whose `code` mailauth reads: ENOTFOUND (no such
 * name), ENODATA (no record of the type), ETIMEOUT, ESERVFAIL, EREFUSED,
 * EFORMERR, EBADNAME, ECONNREFUSED/EBADRESP for network trouble.
 *
 * Importing this file does not import mailauth; the role that uses
 * mailauth passes `mailauthResolver(resolver)` as its `resolver` option.
 */
import { RRTYPES, type DnsRecord, type RRType } from "./records.ts";
import type { DnsFailure, DnsQuerier } from "./result.ts";

/**
 * mailauth's declared DNSResolver type. MX, SOA and TLSA answers are objects at run time, as node's
 * resolve() gives them; the declaration only names the string shapes.
 */
export type MailauthResolver = (name: string, rrtype: string) => Promise<string[][] | string[]>;

/** Node's error code for a failure. */
export function nodeErrorCode(f: DnsFailure): string {
  switch (f.status) {
    case "nxdomain":
      return "ENOTFOUND";
    case "nodata":
      return "ENODATA";
    case "servfail":
      return "ESERVFAIL";
    case "refused":
      return "EREFUSED";
    case "formerr":
      return "EFORMERR";
    case "rcode":
      return f.rcode === 4 ? "ENOTIMP" : "EBADRESP";
    case "timeout":
      return "ETIMEOUT";
    case "network":
      return f.code === "EBADRESP" ? "EBADRESP" : "ECONNREFUSED";
    case "badname":
      return "EBADNAME";
  }
}

function syscallOf(type: string): string {
  return `query${type.charAt(0)}${type.slice(1).toLowerCase()}`;
}

/** An Error shaped like node's DNS errors: `queryTxt ENOTFOUND example.com`, with code, syscall and hostname. */
export function dnsError(f: DnsFailure, name: string, type: string): Error & { code: string; syscall: string; hostname: string } {
  const code = nodeErrorCode(f);
  const syscall = syscallOf(type);
  return Object.assign(new Error(`${syscall} ${code} ${name}`), { code, syscall, hostname: name });
}

export function mailauthResolver(dns: DnsQuerier): MailauthResolver {
  return async (name: string, rrtype: string = "A") => (await answer(dns, name, rrtype)) as string[][] | string[];
}

async function answer(dns: DnsQuerier, name: string, rrtype: string): Promise<unknown> {
  const type = rrtype.toUpperCase();
  if (!(type in RRTYPES)) {
    throw Object.assign(new Error(`${syscallOf(type)} ENOTIMP ${name}`), { code: "ENOTIMP", syscall: syscallOf(type), hostname: name });
  }
  const result = await dns.query(name, type as RRType);
  if (result.status !== "ok") throw dnsError(result, name, type);
  if (type === "SOA") {
    const s = result.records.find((r) => r.type === "SOA");
    if (s) return { nsname: s.mname, hostmaster: s.rname, serial: s.serial, refresh: s.refresh, retry: s.retry, expire: s.expire, minttl: s.minimum };
  }
  return result.records.map(nodeShape);
}

/** One record as node's resolve() gives it. */
function nodeShape(r: DnsRecord): unknown {
  switch (r.type) {
    case "A":
    case "AAAA":
      return r.address;
    case "MX":
      return { exchange: r.exchange === "." ? "" : r.exchange, priority: r.preference };
    case "TXT":
      return [...r.strings];
    case "PTR":
    case "CNAME":
    case "NS":
      return r.target;
    case "TLSA":
      return { certUsage: r.usage, selector: r.selector, match: r.matchingType, data: r.data.slice().buffer };
    case "SOA":
      return { nsname: r.mname, hostmaster: r.rname, serial: r.serial, refresh: r.refresh, retry: r.retry, expire: r.expire, minttl: r.minimum };
    case "OTHER":
      return r.data;
  }
}
