/**
 * Address resolution, Postfix's trivial-rewrite "resolve": where a recipient
 * goes (transport and next hop) and in which address class (local, relay,
 * default). Rewriting first: source routes dropped, `site!user` swapped
 * (swap_bangpath), `user%domain@local` unwrapped (allow_percent_hack),
 * unqualified addresses completed with $myorigin, domains lower-cased and a
 * trailing dot removed.
 *
 * Used by the queue manager (and the SMTP server's relay checks later).
 * Input is an address from a queue file: already validated for syntax;
 * nothing here trusts it beyond splitting it.
 */
import { networkInterfaces } from "node:os";
import type { Config } from "../config/config.ts";

export type AddressClass = "local" | "relay" | "default";

export interface Resolution {
  /** The rewritten recipient address. */
  address: string;
  transport: string;
  nexthop: string;
  addressClass: AddressClass;
}

/** Optional transport_maps lookup, injected by the caller that owns the tables. */
export type TransportLookup = (key: string) => Promise<string | undefined>;

function splitAddress(address: string): [string, string] {
  const at = address.lastIndexOf("@");
  return at < 0 ? [address, ""] : [address.slice(0, at), address.slice(at + 1)];
}

/** The own-machine addresses Postfix treats as local in `user@[addr]`. */
function interfaceAddresses(config: Config): Set<string> {
  const out = new Set<string>();
  const listed = [...config.list("inet_interfaces"), ...config.list("proxy_interfaces")].map((a) => a.toLowerCase().replace(/^\[|\]$/g, ""));
  if (listed.includes("all") || listed.includes("loopback-only")) {
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address.toLowerCase());
  }
  for (const a of listed) if (a !== "all" && a !== "loopback-only") out.add(a);
  return out;
}

export function isLocalDomain(config: Config, domain: string): boolean {
  const d = domain.toLowerCase().replace(/\.$/, "");
  if (d.startsWith("[") && d.endsWith("]")) {
    const ip = d.slice(1, -1).replace(/^ipv6:/, "");
    return interfaceAddresses(config).has(ip);
  }
  return config.list("mydestination").some((entry) => !entry.includes(":") && entry.toLowerCase().replace(/\.$/, "") === d);
}

/** relay_domains: a listed domain matches itself and its subdomains; ".domain" only subdomains. */
export function isRelayDomain(config: Config, domain: string): boolean {
  const d = domain.toLowerCase().replace(/\.$/, "");
  return config.list("relay_domains").some((raw) => {
    const entry = raw.toLowerCase();
    if (entry.includes(":")) return false;
    if (entry.startsWith(".")) return d.endsWith(entry);
    return d === entry || d.endsWith(`.${entry}`);
  });
}

/** Postfix's canonical form of a recipient address. */
export function rewriteAddress(config: Config, address: string): string {
  let a = address.trim();
  // source route: @a,@b:user@c -> user@c
  if (a.startsWith("@")) {
    const colon = a.indexOf(":");
    if (colon > 0) a = a.slice(colon + 1);
  }
  let [local, domain] = splitAddress(a);
  if (!domain && config.bool("swap_bangpath") && local.includes("!") && !local.startsWith('"')) {
    const bang = local.indexOf("!");
    domain = local.slice(0, bang);
    local = local.slice(bang + 1);
  }
  if (!domain) domain = config.str("myorigin");
  domain = domain.toLowerCase().replace(/\.$/, "");
  if (config.bool("allow_percent_hack") && !local.startsWith('"') && local.includes("%") && isLocalDomain(config, domain)) {
    const pct = local.lastIndexOf("%");
    domain = local.slice(pct + 1).toLowerCase();
    local = local.slice(0, pct);
  }
  return `${local}@${domain}`;
}

/** "local:$myhostname" -> ["local", "host"]; "smtp" -> ["smtp", ""]; "error:text" keeps the text whole. */
export function parseTransport(config: Config, spec: string): [string, string] {
  const colon = spec.indexOf(":");
  if (colon < 0) return [spec.trim(), ""];
  return [spec.slice(0, colon).trim(), config.expand(spec.slice(colon + 1)).trim()];
}

function parentDomains(domain: string): string[] {
  const out: string[] = [];
  let d = domain;
  for (let dot = d.indexOf("."); dot >= 0; dot = d.indexOf(".")) {
    d = d.slice(dot + 1);
    if (d) out.push(`.${d}`);
  }
  return out;
}

export async function resolveRecipient(config: Config, address: string, transportLookup?: TransportLookup): Promise<Resolution> {
  const rewritten = rewriteAddress(config, address);
  const [, domain] = splitAddress(rewritten);
  let addressClass: AddressClass;
  let spec: string;
  if (isLocalDomain(config, domain)) {
    addressClass = "local";
    spec = config.str("local_transport");
  } else if (isRelayDomain(config, domain)) {
    addressClass = "relay";
    spec = config.str("relay_transport");
  } else {
    addressClass = "default";
    spec = config.str("default_transport");
  }
  let [transport, nexthop] = parseTransport(config, spec);
  if (!nexthop) {
    if (addressClass === "local") nexthop = config.str("myhostname");
    else nexthop = config.str("relayhost") || domain;
  }
  if (transportLookup) {
    // Postfix's order: the full address, then the domain, then its parents (.example.com)
    const keys = [rewritten.toLowerCase(), domain, ...parentDomains(domain)];
    for (const key of keys) {
      const found = await transportLookup(key);
      if (found === undefined) continue;
      const [t, n] = parseTransport(config, found);
      if (t) transport = t;
      if (n) nexthop = n;
      else if (t && t !== "error" && t !== "discard" && addressClass !== "local") nexthop = config.str("relayhost") || domain;
      break;
    }
  }
  return { address: rewritten, transport, nexthop, addressClass };
}
