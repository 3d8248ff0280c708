/**
 * Address resolution, Postfix's trivial-rewrite "resolve": where a recipient
 * goes (transport and next hop) and in which address class (local, relay,
 * default), as Postfix's resolver loop does it: source routes dropped,
 * local domains stripped, `site!user` swapped (swap_bangpath) and
 * `user%domain` unwrapped (allow_percent_hack) once no domain or a local one
 * is left, an address without a domain completed with the last local
 * domain or $myhostname; domains lower-cased and a trailing dot removed.
 * transport_maps in transport(5)'s order.
 *
 * Used by the queue manager (and the SMTP server's relay checks later).
 * Input is an address from a queue file: already validated for syntax;
 * nothing here trusts it beyond splitting it.
 */
import { networkInterfaces } from "node:os";
import type { Config } from "../config/config.ts";
import { splitExtension } from "../tables/address-lookup.ts";

export type AddressClass = "local" | "relay" | "default";

export interface Resolution {
  /** The rewritten recipient address. */
  address: string;
  transport: string;
  nexthop: string;
  addressClass: AddressClass;
}

/**
 * Optional transport_maps lookup, injected by the caller that owns the tables. `partial` keys (all
 * but the full address) go only to tables of literal keys, as Postfix's transport(5) lookups do:
 * a regexp: or pcre: table sees the full recipient address once.
 */
export type TransportLookup = (key: string, partial: boolean) => Promise<string | undefined>;

function splitAddress(address: string): [string, string] {
  const at = address.lastIndexOf("@");
  return at < 0 ? [address, ""] : [address.slice(0, at), address.slice(at + 1)];
}

/** A trailing dot goes, but not from "a.." or "@." (bogus forms are left for the diagnostics). */
function stripTrailingDot(domain: string): string {
  return domain.length > 1 && domain.endsWith(".") && !domain.endsWith("..") ? domain.slice(0, -1) : domain;
}

/** The own-machine addresses Postfix treats as local in `user@[addr]`. */
function interfaceAddresses(config: Config): Set<string> {
  const out = new Set<string>();
  const listed = [...config.list("inet_interfaces"), ...config.list("proxy_interfaces")].map((a) => a.toLowerCase().replace(/^\[|\]$/g, ""));
  const all = listed.includes("all");
  if (all || listed.includes("loopback-only")) {
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (all || a.internal) out.add(a.address.toLowerCase());
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

/**
 * Postfix's rewrite of an address without "@" in the local context (rewrite_tree): a source route
 * goes; `site!user` becomes `user@site` (swap_bangpath, the first "!"), else `user%site` becomes
 * `user@site` (allow_percent_hack, the last "%").
 */
function rewriteLocalPart(config: Config, local: string): string {
  if (local.includes("@")) return local;
  if (config.bool("swap_bangpath")) {
    const bang = local.indexOf("!");
    if (bang >= 0) return `${local.slice(bang + 1)}@${local.slice(0, bang)}`;
  }
  if (config.bool("allow_percent_hack")) {
    const pct = local.lastIndexOf("%");
    if (pct >= 0) return `${local.slice(0, pct)}@${local.slice(pct + 1)}`;
  }
  return local;
}

/**
 * Postfix's resolver loop (trivial-rewrite's resolve_addr): a local domain is stripped off; what is
 * left is rewritten again when it still holds "@", or "!" or "%" that swap_bangpath or
 * allow_percent_hack turn into a domain, and so on until a remote domain is reached or none is
 * left. An address that ends without a domain is local and gets the last local domain back
 * (or $myhostname). So `site!user@here` goes to `user@site`, `user%there@here` to `user@there`.
 */
export function rewriteForDelivery(config: Config, address: string): { address: string; local: boolean } {
  let a = address.trim();
  // source route: @a,@b:user@c -> user@c
  if (a.startsWith("@")) {
    const colon = a.indexOf(":");
    if (colon > 0 && colon < a.length - 1) a = a.slice(colon + 1);
  }
  let saved: string | undefined;
  for (let round = 0; round < 100; round++) {
    const at = a.lastIndexOf("@");
    if (at >= 0) {
      const domain = stripTrailingDot(a.slice(at + 1)).toLowerCase();
      if (domain && !isLocalDomain(config, domain)) return { address: `${a.slice(0, at)}@${domain}`, local: false };
      a = a.slice(0, at);
      if (domain) saved = domain;
    }
    const routes = (text: string) => text.includes("@") || (config.bool("swap_bangpath") && text.includes("!")) || (config.bool("allow_percent_hack") && text.includes("%"));
    // a quoted local part with routing operators is looked into (Postfix's resolve_dequoted, on by default)
    if (a.length >= 2 && a.startsWith('"') && a.endsWith('"')) {
      const inner = a.slice(1, -1).replace(/\\(.)/g, "$1");
      if (routes(inner)) a = inner;
    }
    if (a.includes("@")) continue;
    if (routes(a)) {
      a = rewriteLocalPart(config, a);
      continue;
    }
    break;
  }
  return { address: `${a}@${saved ?? config.str("myhostname").toLowerCase()}`, local: true };
}

/** The rewritten recipient address (see rewriteForDelivery). */
export function rewriteAddress(config: Config, address: string): string {
  return rewriteForDelivery(config, address).address;
}

/** "local:$myhostname" -> ["local", "host"] (parameter values are expanded); "smtp" -> ["smtp", ""]; "error:text" keeps the text whole. */
export function parseTransport(config: Config, spec: string): [string, string] {
  const colon = spec.indexOf(":");
  if (colon < 0) return [spec.trim(), ""];
  return [spec.slice(0, colon).trim(), config.expand(spec.slice(colon + 1)).trim()];
}

/** A transport_maps result: "transport:nexthop", either part may be empty; nothing is expanded. */
function splitTableResult(value: string): [string, string] {
  const colon = value.indexOf(":");
  if (colon < 0) return [value.trim(), ""];
  return [value.slice(0, colon).trim(), value.slice(colon + 1).trim()];
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

/**
 * transport(5)'s search order: user+extension@domain, user@domain, domain, .parent domains, "*";
 * every key after the first only in tables of literal keys.
 */
function transportKeys(config: Config, address: string, domain: string): Array<{ key: string; partial: boolean }> {
  const keys = [{ key: address.toLowerCase(), partial: false }];
  const [local] = splitAddress(address);
  const split = splitExtension(local, config.str("recipient_delimiter"), {
    ownerRequestSpecial: config.bool("owner_request_special"),
    doubleBounceSender: config.str("double_bounce_sender"),
  });
  if (split) keys.push({ key: `${split.user}@${domain}`.toLowerCase(), partial: true });
  for (const key of [domain, ...parentDomains(domain), "*"]) keys.push({ key, partial: true });
  return keys;
}

export async function resolveRecipient(config: Config, address: string, transportLookup?: TransportLookup): Promise<Resolution> {
  const rewritten = rewriteForDelivery(config, address);
  const [, domain] = splitAddress(rewritten.address);
  let addressClass: AddressClass;
  let spec: string;
  if (rewritten.local) {
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
    for (const { key, partial } of transportKeys(config, rewritten.address, domain)) {
      const found = await transportLookup(key, partial);
      if (found === undefined) continue;
      // Postfix's update_entry: an empty transport keeps the channel; an empty next hop means the
      // recipient's domain, or for error: and retry: "Address is undeliverable"
      const [t, n] = splitTableResult(found);
      if (n) nexthop = n;
      else if (t === "error" || t === "retry") nexthop = "Address is undeliverable";
      else nexthop = domain;
      if (t) transport = t;
      break;
    }
  }
  return { address: rewritten.address, transport, nexthop, addressClass };
}
