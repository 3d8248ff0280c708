/**
 * A and AAAA lookups of a host name for the protocols inet_protocols
 * enables, asked in parallel and told apart as Postfix needs: any address
 * found is success (the other family's failure does not matter); otherwise
 * a temporary failure of either family wins over "not found", so mail is
 * deferred rather than bounced; NXDOMAIN only when every family says so.
 *
 * An IP address given as the name is returned as it is, without a query.
 * Ordering between the families (smtp_address_preference) is the caller's.
 */
import { formatIpAddress, parseIpAddress } from "../../util/net/cidr-match.ts";
import type { DnsFailure, DnsQuerier, DnsResult } from "./result.ts";
import { isTemporary } from "./result.ts";

export type AddressFamily = "ipv4" | "ipv6";

export interface HostAddress {
  family: 4 | 6;
  address: string;
  ttl: number;
}

export type AddressResult =
  | {
      status: "ok";
      /** IPv4 first, then IPv6, each in the server's order. */
      addresses: HostAddress[];
      /** The name the records belong to (after CNAMEs). */
      canonicalName: string;
      /** Every family's answer was DNSSEC-authenticated (or the name was an address). */
      authenticated: boolean;
    }
  | DnsFailure;

/** The families inet_protocols names: all, ipv4, ipv6 (any case, comma or space separated). */
export function familiesFromInetProtocols(words: readonly string[]): AddressFamily[] | { problem: string } {
  const out = new Set<AddressFamily>();
  for (const w of words.map((x) => x.toLowerCase())) {
    if (w === "all") {
      out.add("ipv4");
      out.add("ipv6");
    } else if (w === "ipv4" || w === "ipv6") out.add(w);
    else return { problem: `inet_protocols: unknown protocol "${w}"` };
  }
  if (out.size === 0) return { problem: "inet_protocols: no protocol enabled" };
  return [...out];
}

/** The order failures are reported in when no family found an address: the most actionable first. */
function worst(results: DnsFailure[]): DnsFailure {
  const temporary = results.find((r) => isTemporary(r));
  if (temporary) return temporary;
  const other = results.find((r) => r.status !== "nxdomain" && r.status !== "nodata");
  if (other) return other;
  if (results.some((r) => r.status === "nodata")) return { status: "nodata" };
  return results[0] ?? { status: "nodata" };
}

export async function lookupAddresses(dns: DnsQuerier, name: string, families: readonly AddressFamily[]): Promise<AddressResult> {
  const literal = parseIpAddress(name);
  if (literal) {
    const wanted = families.includes(literal.family === 4 ? "ipv4" : "ipv6");
    if (!wanted) return { status: "nodata" };
    return { status: "ok", addresses: [{ family: literal.family, address: formatIpAddress(literal), ttl: 0 }], canonicalName: name, authenticated: true };
  }
  const asks: Promise<{ family: 4 | 6; result: DnsResult<{ address: string; ttl: number }> }>[] = [];
  if (families.includes("ipv4")) asks.push(dns.query(name, "A").then((result) => ({ family: 4 as const, result })));
  if (families.includes("ipv6")) asks.push(dns.query(name, "AAAA").then((result) => ({ family: 6 as const, result })));
  if (asks.length === 0) return { status: "nodata" };
  const answers = await Promise.all(asks);
  const addresses: HostAddress[] = [];
  let canonical: string | undefined;
  let authenticated = true;
  const failures: DnsFailure[] = [];
  for (const { family, result } of answers) {
    if (result.status === "ok") {
      canonical ??= result.canonicalName;
      authenticated &&= result.authenticated;
      for (const r of result.records) addresses.push({ family, address: r.address, ttl: r.ttl });
    } else failures.push(result);
  }
  if (addresses.length > 0) return { status: "ok", addresses, canonicalName: canonical!, authenticated };
  return worst(failures);
}
