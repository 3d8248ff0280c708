/**
 * From one next-hop destination to the server addresses to try, in order,
 * as Postfix's smtp(8) finds them: MX records sorted by preference (equal
 * preferences shuffled), the domain's own addresses when it has no MX
 * (implicit MX), or just the host's addresses for [host], LMTP and when DNS
 * lookups are off. inet_protocols picks the address families. With loop
 * detection (SMTP to port 25), the list is cut at the first MX host that is
 * this machine, and mail whose best MX is this machine "loops back to
 * myself".
 *
 * DNS outcomes become Postfix's reasons and status codes: a name that does
 * not exist bounces (5.4.4), a null MX bounces (5.1.10), a resolver that
 * cannot answer defers (4.4.3). Everything the DNS says is untrusted input;
 * the resolver (src/global/dns) validates it.
 */
import { networkInterfaces } from "node:os";
import { formatIpAddress, parseIpAddress } from "../util/net/cidr-match.ts";
import type { AddressFamily } from "../global/dns/addresses.ts";
import { lookupHostAddresses } from "../global/dns/host-lookup.ts";
import { lookupMx } from "../global/dns/mx.ts";
import { isTemporary, nameServiceError, type DnsFailure, type DnsQuerier } from "../global/dns/result.ts";
import type { HostLookupMethod } from "../global/dns/settings.ts";
import type { Destination } from "./nexthop.ts";
import type { Failure } from "./failure.ts";

export interface Endpoint {
  /** The server's name for logs (MX host, relay host, or the address itself). */
  host: string;
  /** IP address, or a unix-domain socket path. */
  address: string;
  port: number;
  family: 4 | 6 | "unix";
  /** MX preference (0 for non-MX destinations). */
  pref: number;
  /**
   * What DNSSEC vouched for on the way to this server, for DANE: the MX
   * answer (undefined when no MX lookup led here) and the host's address
   * answers. Addresses from /etc/hosts or the system's lookups are not secure.
   */
  dnssec?: { mx?: boolean; address: boolean };
}

export interface Route {
  endpoints: Endpoint[];
  /** Why no (or not every) server could be found. */
  failure?: Failure;
  /** This machine is one of the MX hosts: do not go on to fallback relays. */
  iAmMx: boolean;
  /** The failure is a mail loop: do not go on to fallback relays. */
  loop: boolean;
  /** The best MX preference, for connection reuse. */
  bestPref: number;
}

export interface RoutingContext {
  dns: DnsQuerier;
  families: AddressFamily[];
  hostLookup: HostLookupMethod[];
  /** This machine's addresses (inet_interfaces, proxy_interfaces) for loop detection. */
  ownAddresses: ReadonlySet<string>;
  randomize: boolean;
  random?: () => number;
}

/** "name=example.com type=MX" style text for the families asked. */
function addressType(families: readonly AddressFamily[]): string {
  return families.includes("ipv4") ? "A" : "AAAA";
}

function dnsFailure(name: string, type: string, result: DnsFailure): Failure {
  const reason = `Host or domain name not found. ${nameServiceError(name, type, result)}`;
  if (isTemporary(result)) return { dsn: "4.4.3", reason };
  if (result.status === "formerr" || result.status === "rcode") return { dsn: "5.4.3", reason };
  return { dsn: "5.4.4", reason };
}

/** This machine's addresses as Postfix's own_inet_addr_list sees them. */
export function ownAddresses(inetInterfaces: readonly string[], proxyInterfaces: readonly string[]): Set<string> {
  const out = new Set<string>();
  const words = [...inetInterfaces, ...proxyInterfaces].map((w) => w.toLowerCase().replace(/^\[|\]$/g, ""));
  if (words.includes("all") || words.includes("loopback-only")) {
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) {
        const ip = parseIpAddress(a.address.split("%")[0]!);
        if (ip) out.add(formatIpAddress(ip));
      }
    }
  }
  for (const w of words) {
    const ip = parseIpAddress(w);
    if (ip) out.add(formatIpAddress(ip));
  }
  return out;
}

interface HostAddresses {
  addresses: Array<{ family: 4 | 6; address: string }>;
  failure?: Failure;
  /** The addresses came from authenticated DNS answers. */
  secure: boolean;
}

async function hostAddresses(ctx: RoutingContext, host: string): Promise<HostAddresses> {
  const r = await lookupHostAddresses(ctx.dns, host, ctx.families, ctx.hostLookup);
  if (r.status === "ok") return { addresses: r.addresses.map((a) => ({ family: a.family, address: a.address })), secure: r.authenticated };
  if (r.status === "nodata" && parseIpAddress(host)) {
    return { addresses: [], failure: { dsn: "5.4.4", reason: `unable to look up host ${host}: address family not enabled by inet_protocols` }, secure: false };
  }
  return { addresses: [], failure: dnsFailure(host, addressType(ctx.families), r), secure: false };
}

/** Fisher-Yates within each run of equal preference; the list stays sorted by preference. */
function shuffleEqualPreferences(list: Endpoint[], random: () => number): Endpoint[] {
  const out: Endpoint[] = [];
  for (let i = 0; i < list.length; ) {
    let j = i;
    while (j < list.length && list[j]!.pref === list[i]!.pref) j++;
    const group = list.slice(i, j);
    for (let k = group.length - 1; k > 0; k--) {
      const r = Math.min(k, Math.floor(random() * (k + 1)));
      [group[k], group[r]] = [group[r]!, group[k]!];
    }
    out.push(...group);
    i = j;
  }
  return out;
}

/** The server addresses for one destination, or why there are none. */
export async function routeDestination(ctx: RoutingContext, dest: Destination, loopDetect: boolean): Promise<Route> {
  if (dest.unix !== undefined) {
    return { endpoints: [{ host: "", address: dest.unix, port: 0, family: "unix", pref: 0 }], iAmMx: false, loop: false, bestPref: 0 };
  }
  const useMx = dest.mx && ctx.hostLookup.includes("dns") && !parseIpAddress(dest.host);
  if (!useMx) {
    const found = await hostAddresses(ctx, dest.host);
    if (!found.addresses.length) return { endpoints: [], failure: found.failure, iAmMx: false, loop: false, bestPref: 0 };
    if (loopDetect && found.addresses.some((a) => ctx.ownAddresses.has(a.address))) {
      return { endpoints: [], failure: { dsn: "5.4.6", reason: `mail for ${dest.host} loops back to myself` }, iAmMx: false, loop: true, bestPref: 0 };
    }
    let endpoints: Endpoint[] = found.addresses.map((a) => ({ host: dest.host, address: a.address, port: dest.port, family: a.family, pref: 0, dnssec: { address: found.secure } }));
    if (ctx.randomize) endpoints = shuffleEqualPreferences(endpoints, ctx.random ?? Math.random);
    return { endpoints, iAmMx: false, loop: false, bestPref: 0 };
  }

  const mx = await lookupMx(ctx.dns, dest.host, ctx.random);
  if (mx.status === "nullmx") return { endpoints: [], failure: { dsn: "5.1.10", reason: `Domain ${dest.host} does not accept mail (nullMX)` }, iAmMx: false, loop: false, bestPref: 0 };
  if (mx.status === "nxdomain") {
    // Postfix falls back to the address lookup, which reports the missing name as such
    return { endpoints: [], failure: dnsFailure(dest.host, addressType(ctx.families), mx), iAmMx: false, loop: false, bestPref: 0 };
  }
  if (mx.status !== "ok") return { endpoints: [], failure: dnsFailure(dest.host, "MX", mx), iAmMx: false, loop: false, bestPref: 0 };

  const bestPref = mx.hosts[0]?.preference ?? 0;
  const lookups = await Promise.all(mx.hosts.map((h) => hostAddresses(ctx, h.exchange)));
  let endpoints: Endpoint[] = [];
  let failure: Failure | undefined;
  lookups.forEach((found, i) => {
    const h = mx.hosts[i]!;
    for (const a of found.addresses) endpoints.push({ host: h.exchange, address: a.address, port: dest.port, family: a.family, pref: h.preference, dnssec: { mx: mx.authenticated, address: found.secure } });
    // a temporary failure dominates earlier and later permanent ones
    if (found.failure && !failure?.dsn.startsWith("4")) failure = found.failure;
  });
  if (!endpoints.length) {
    return { endpoints: [], failure: failure ?? { dsn: "4.4.3", reason: `no MX host for ${dest.host} has a valid address record` }, iAmMx: false, loop: false, bestPref };
  }
  let iAmMx = false;
  if (loopDetect) {
    const self = endpoints.find((e) => ctx.ownAddresses.has(e.address));
    if (self) {
      iAmMx = true;
      const bestFound = endpoints[0]!.pref;
      endpoints = endpoints.filter((e) => e.pref < self.pref);
      if (!endpoints.length) {
        const loopFailure: Failure =
          bestPref !== bestFound
            ? { dsn: "4.4.4", reason: `unable to find primary relay for ${dest.host}` }
            : { dsn: "5.4.6", reason: `mail for ${dest.host} loops back to myself` };
        return { endpoints, failure: loopFailure, iAmMx, loop: true, bestPref };
      }
    }
  }
  if (ctx.randomize) endpoints = shuffleEqualPreferences(endpoints, ctx.random ?? Math.random);
  return { endpoints, ...(failure ? { failure } : {}), iAmMx, loop: false, bestPref };
}
