/**
 * MX lookup for direct delivery (RFC 5321 5.1): the exchanges sorted by
 * preference, shuffled among equal preferences so load spreads as RFC 5321
 * asks; a domain without MX records (NODATA) gets its implicit MX, the
 * domain itself at preference 0; a null MX (RFC 7505: one record, exchange
 * ".") says the domain takes no mail.
 *
 * Distrusts the answer: exchanges are deduplicated (the best preference
 * kept), and a "." exchange among real ones is dropped rather than tried.
 * Address lookups of the exchanges are the caller's (lookupAddresses), as
 * are the "loops back to myself" and smtp_mx_address_limit rules.
 */
import { canonicalName } from "./names.ts";
import type { DnsFailure, DnsQuerier } from "./result.ts";

export interface MxHost {
  preference: number;
  exchange: string;
}

export type MxResult =
  | {
      status: "ok";
      /** In the order to try them. */
      hosts: MxHost[];
      /** No MX records: hosts is the domain itself (RFC 5321 5.1 implicit MX). */
      implicit: boolean;
      ttl: number;
      /** The resolver vouched for the MX answer (the AD bit): DANE's "secure MX". */
      authenticated: boolean;
    }
  | { status: "nullmx" }
  | DnsFailure;

/** Sorts by preference and shuffles each group of equal preference with `random` (Fisher-Yates). */
export function orderMxHosts(hosts: readonly MxHost[], random: () => number = Math.random): MxHost[] {
  const sorted = [...hosts].sort((a, b) => a.preference - b.preference);
  const out: MxHost[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j < sorted.length && sorted[j]!.preference === sorted[i]!.preference) j++;
    const group = sorted.slice(i, j);
    for (let k = group.length - 1; k > 0; k--) {
      const r = Math.floor(random() * (k + 1));
      const pick = Math.min(k, Math.max(0, r));
      [group[k], group[pick]] = [group[pick]!, group[k]!];
    }
    out.push(...group);
    i = j;
  }
  return out;
}

export async function lookupMx(dns: DnsQuerier, domain: string, random: () => number = Math.random): Promise<MxResult> {
  const result = await dns.query(domain, "MX");
  if (result.status === "nodata") {
    const name = canonicalName(domain);
    if (typeof name !== "string") return { status: "badname", message: name.problem };
    return { status: "ok", hosts: [{ preference: 0, exchange: name }], implicit: true, ttl: 0, authenticated: result.authenticated === true };
  }
  if (result.status !== "ok") return result;
  const records = result.records;
  if (records.length === 1 && records[0]!.exchange === ".") return { status: "nullmx" };
  const best = new Map<string, number>();
  for (const r of records) {
    if (r.exchange === ".") continue;
    const seen = best.get(r.exchange);
    if (seen === undefined || r.preference < seen) best.set(r.exchange, r.preference);
  }
  // only "." records, more than one of them: still a domain that takes no mail
  if (best.size === 0) return { status: "nullmx" };
  const hosts = [...best].map(([exchange, preference]) => ({ preference, exchange }));
  return { status: "ok", hosts: orderMxHosts(hosts, random), implicit: false, ttl: result.ttl, authenticated: result.authenticated };
}
