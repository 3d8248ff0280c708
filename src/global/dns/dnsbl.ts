/**
 * DNS block and allow lists (RFC 5782) for reject_rbl_client,
 * permit_dnswl_client, reject_rhsbl_sender and friends: an address is
 * listed when `REVERSED-ADDRESS.ZONE` (octets, or nibbles for IPv6) has A
 * records, a domain when `DOMAIN.ZONE` has; the reason is the TXT records
 * there joined with " / " and cut at 500 characters (Postfix's
 * RBL_TXT_LIMIT), asked only once the name is known to be listed. The text
 * is the list operator's, untrusted: the caller filters it before it goes
 * into a reply or a log line.
 *
 * The caller filters the A records (Postfix's `zone=127.0.0.2` syntax,
 * rbl_reply_maps) and decides what a temporary failure means; this module
 * only tells listed, unlisted and failed apart.
 */
import { parseIpAddress } from "../../util/net/cidr-match.ts";
import { canonicalName, reversedAddressLabels, unmapIpv4 } from "./names.ts";
import { txtRecordText } from "./records.ts";
import type { DnsFailure, DnsQuerier } from "./result.ts";

export type DnsblResult =
  | {
      status: "listed";
      /** The name that was looked up. */
      query: string;
      /** The A records, e.g. ["127.0.0.2"]. */
      addresses: string[];
      /** The TXT records' text (at most RBL_TXT_LIMIT characters), when asked for and published. */
      reason?: string;
      ttl: number;
    }
  | { status: "unlisted"; query: string }
  | (DnsFailure & { query: string });

/** Postfix's bound on the TXT text of a DNS list entry (smtpd_check.c). */
export const RBL_TXT_LIMIT = 500;

/** The records' text joined with " / " as Postfix does, at most RBL_TXT_LIMIT characters. */
export function dnsblReason(texts: string[]): string {
  let out = "";
  for (let i = 0; i < texts.length && out.length < RBL_TXT_LIMIT; i++) {
    out += texts[i]!.slice(0, RBL_TXT_LIMIT - out.length);
    if (i + 1 < texts.length && RBL_TXT_LIMIT - out.length > 3) out += " / ";
  }
  return out;
}

async function listLookup(dns: DnsQuerier, query: string, wantReason: boolean): Promise<DnsblResult> {
  const a = await dns.query(query, "A");
  if (a.status === "nxdomain" || a.status === "nodata") return { status: "unlisted", query };
  if (a.status !== "ok") return { ...a, query };
  const listed: DnsblResult = { status: "listed", query, addresses: a.records.map((r) => r.address), ttl: a.ttl };
  if (wantReason) {
    const txt = await dns.query(query, "TXT");
    if (txt.status === "ok") listed.reason = dnsblReason(txt.records.map(txtRecordText));
  }
  return listed;
}

function zoneName(zone: string): string | DnsFailure {
  const z = canonicalName(zone);
  if (typeof z !== "string" || z === ".") return { status: "badname", message: typeof z === "string" ? "Empty DNS list zone" : z.problem };
  return z;
}

/** Looks `ip` up in the address list `zone` (e.g. "zen.spamhaus.org"). */
export async function rblLookup(dns: DnsQuerier, zone: string, ip: string, options: { reason?: boolean } = {}): Promise<DnsblResult> {
  const z = zoneName(zone);
  const parsed = parseIpAddress(ip);
  if (typeof z !== "string") return { ...z, query: ip };
  if (!parsed) return { status: "badname", message: `Not an IP address: "${ip}"`, query: ip };
  return listLookup(dns, `${reversedAddressLabels(unmapIpv4(parsed))}.${z}`, options.reason ?? true);
}

/** Looks `domain` up in the domain list `zone` (e.g. "dbl.spamhaus.org"). */
export async function rhsblLookup(dns: DnsQuerier, zone: string, domain: string, options: { reason?: boolean } = {}): Promise<DnsblResult> {
  const z = zoneName(zone);
  if (typeof z !== "string") return { ...z, query: domain };
  const d = canonicalName(domain);
  if (typeof d !== "string" || d === ".") return { status: "badname", message: typeof d === "string" ? "Empty domain name" : d.problem, query: domain };
  return listLookup(dns, `${d}.${z}`, options.reason ?? true);
}
