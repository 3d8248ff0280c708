/**
 * Host addresses by the methods smtp_host_lookup / lmtp_host_lookup name:
 * `dns` (postern's resolver, A/AAAA) and `native` (the system library's
 * getaddrinfo, which also reads /etc/hosts and whatever nsswitch.conf
 * lists). With both, the next method is tried when the previous one found
 * nothing; a temporary failure of any method is reported over a "not found"
 * of another, so mail is deferred rather than bounced.
 *
 * The native path blocks a thread of Bun's pool, not the event loop.
 */
import { formatIpAddress, parseIpAddress } from "../../util/net/cidr-match.ts";
import { lookupAddresses, type AddressFamily, type AddressResult, type HostAddress } from "./addresses.ts";
import type { DnsQuerier } from "./result.ts";
import { isTemporary } from "./result.ts";
import type { HostLookupMethod } from "./settings.ts";

/** getaddrinfo through Bun's system backend, as Postfix's "native" lookups. */
export async function nativeLookupAddresses(name: string, families: readonly AddressFamily[]): Promise<AddressResult> {
  const literal = parseIpAddress(name);
  if (literal) {
    if (!families.includes(literal.family === 4 ? "ipv4" : "ipv6")) return { status: "nodata" };
    return { status: "ok", addresses: [{ family: literal.family, address: formatIpAddress(literal), ttl: 0 }], canonicalName: name, authenticated: false };
  }
  const family = families.length === 1 ? (families[0] === "ipv4" ? 4 : 6) : 0;
  let found: { address: string; family: number }[];
  try {
    found = await Bun.dns.lookup(name, { family, backend: "system" });
  } catch (err) {
    const code = String((err as { code?: unknown }).code ?? "");
    if (/AGAIN|TIMEOUT|SERVFAIL|CONNREFUSED/i.test(code)) return { status: "servfail" };
    if (/NODATA/i.test(code)) return { status: "nodata" };
    return { status: "nxdomain" };
  }
  const addresses: HostAddress[] = [];
  for (const a of found) {
    const parsed = parseIpAddress(a.address);
    if (!parsed || !families.includes(parsed.family === 4 ? "ipv4" : "ipv6")) continue;
    const text = formatIpAddress(parsed);
    if (!addresses.some((x) => x.address === text)) addresses.push({ family: parsed.family, address: text, ttl: 0 });
  }
  addresses.sort((a, b) => a.family - b.family);
  if (addresses.length === 0) return { status: "nodata" };
  return { status: "ok", addresses, canonicalName: name, authenticated: false };
}

export async function lookupHostAddresses(
  dns: DnsQuerier,
  name: string,
  families: readonly AddressFamily[],
  methods: readonly HostLookupMethod[],
): Promise<AddressResult> {
  let failure: AddressResult | undefined;
  for (const method of methods) {
    const r = method === "dns" ? await lookupAddresses(dns, name, families) : await nativeLookupAddresses(name, families);
    if (r.status === "ok") return r;
    if (!failure || (isTemporary(r) && !isTemporary(failure))) failure = r;
  }
  return failure ?? { status: "nodata" };
}
