/**
 * Address resolution, Postfix's trivial-rewrite "resolve": the one answer to
 * "where does this recipient go". The SMTP server's relay and recipient
 * checks and the queue manager's routing all call resolveRecipient(), so
 * they cannot disagree about an address (Postfix's smtpd and qmgr both ask
 * trivial-rewrite for the same reason).
 *
 * The resolver loop (resolve_addr): a local domain ($mydestination, our
 * interface addresses) is stripped off; what is left is rewritten again
 * while it still holds `@`, or `!` (swap_bangpath, the first one) or `%`
 * (allow_percent_hack, the last one) that turn into a domain; a local part
 * that needs quotes (it holds `@`, blanks, specials) is one quoted token,
 * looked into for them only with resolve_dequoted (default yes); an empty local part becomes $empty_address_recipient; an address
 * left without a domain gets @$myhostname and is resolved again. The loop
 * ends at the first domain that is not local, or when nothing is left to
 * strip: then the last local domain comes back. So `site!user@here` goes
 * to `user@site`, `user%there@here` to `user@there`, however deep.
 *
 * The loop is bounded as Postfix bounds it (length of the address + 100
 * rounds, more than any address can use, since every round but a few
 * consumes an operator). An address that reaches the bound is failed
 * (Postfix's RESOLVE_FLAG_FAIL): never treated as local; its transport is
 * error:, so the queue manager bounces it, and the SMTP server refuses it.
 * An address that ends without a valid domain (empty, not a host name, not
 * an address literal), or that starts with "-" while allow_min_user is off
 * (a pipe command could take it for an option), is invalid
 * (RESOLVE_FLAG_ERROR): error:5.1.3 for the queue manager, a syntax error
 * for the SMTP server.
 *
 * Then the address class, in Postfix's order: local (the domain was
 * stripped), virtual alias (virtual_alias_domains), virtual mailbox
 * (virtual_mailbox_domains), relay (relay_domains), default. "Routed" is
 * set for every class when the final local part still holds `@`, `%` or
 * `!`, whatever swap_bangpath and allow_percent_hack say (the next hop may
 * honour them): the SMTP server does not count routed mail as addressed to
 * us (allow_untrusted_routing). Then the class's transport and next hop,
 * then transport_maps in transport(5)'s order (not for virtual alias
 * domains, whose addresses cleanup has already expanded: what is left is
 * unknown, as with Postfix). Last, relocated_maps: a recipient that moved
 * goes to error: with "5.1.6 User has moved to NEW", whatever its class.
 *
 * Runs in the queue manager and in smtpd, as mail_owner. Input is an
 * address in internal form: from a queue file, or from an SMTP client
 * after smtpd's canonicalization; nothing here trusts it beyond splitting
 * it. A domain-list or transport table that cannot be read throws
 * TableError: the caller answers with a temporary error (smtpd 451 4.3.0,
 * the queue manager defers).
 *
 * The domain lists (mydestination and the class lists) are Postfix's
 * string lists (src/global/access/domain-list.ts): names, /file/name and
 * type:table entries alike. A domain found in the lists of two classes
 * gets Postfix's warning "do not list domain X in BOTH A and B"
 * (helpful_warnings), in the log of whoever resolved it.
 *
 * XXX: append_dot_mydomain is not applied inside the loop (Postfix's
 * rewrite_tree does).
 */
import { networkInterfaces } from "../../util/os-lazy.ts";
import type { Config } from "../config/config.ts";
import { isValidHostname } from "../dns/reverse.ts";
import { parseIpAddress } from "../../util/net/cidr-match.ts";
import { localPartNeedsQuotes } from "../address/quote.ts";
import { lookupAddress, splitExtension } from "../tables/address-lookup.ts";
import { openTables } from "../tables/open-table.ts";
import { TableError } from "../tables/table.ts";
import { domainListMatches, type DomainListName } from "../access/domain-list.ts";
import { log } from "../../util/log.ts";

/** Postfix's address classes, in the order the resolver tries them. */
export type AddressClass = "local" | "virtual_alias" | "virtual_mailbox" | "relay" | "default";

export interface Resolution {
  /** The rewritten recipient address: local part @ final domain. */
  address: string;
  addressClass: AddressClass;
  /** Sender-specified routing is left in the final local part (`@`, `%` or `!`): Postfix's RESOLVE_FLAG_ROUTED. */
  routed: boolean;
  transport: string;
  nexthop: string;
  /**
   * The resolver gave up (its loop bound): Postfix's RESOLVE_FLAG_FAIL. The class is then "default",
   * routed is set and the transport is error: with RESOLVE_LOOP_REASON, so nothing takes it for ours.
   */
  failed: boolean;
  /**
   * The final domain is no domain (empty, not a host name, not an address literal): Postfix's
   * RESOLVE_FLAG_ERROR. The class is "default" and the transport error:5.1.3 bad address syntax;
   * smtpd answers 501 5.1.3 Bad recipient address syntax, as Postfix's smtpd_check_addr does.
   */
  invalid: boolean;
  /** relocated_maps has the address: the transport is error: with "5.1.6 User has moved to NEW". */
  relocated?: boolean;
}

/** What a failed resolution bounces with; smtpd refuses with the same status and text. */
export const RESOLVE_LOOP_REASON = { dsn: "5.1.3", text: "Address resolution loop" } as const;

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

/**
 * Postfix's resolve_local: $mydestination (names, /file/name, type:table; see domain-list.ts), then the
 * machine's own addresses for an address literal. Throws TableError when the list cannot answer: the
 * caller's temporary failure, never "not local".
 */
export async function isLocalDomain(config: Config, domain: string): Promise<boolean> {
  const d = domain.toLowerCase().replace(/\.$/, "");
  if (await domainListMatches(config, "mydestination", d)) return true;
  if (d.startsWith("[") && d.endsWith("]")) {
    const ip = d.slice(1, -1).replace(/^ipv6:/, "");
    return interfaceAddresses(config).has(ip);
  }
  return false;
}

/** The class of a domain that the resolver loop did not strip (so not local), in Postfix's order. */
async function remoteClassOf(config: Config, domain: string): Promise<AddressClass> {
  if (await domainListMatches(config, "virtual_alias_domains", domain)) return "virtual_alias";
  if (await domainListMatches(config, "virtual_mailbox_domains", domain)) return "virtual_mailbox";
  if (await domainListMatches(config, "relay_domains", domain)) return "relay";
  return "default";
}

/**
 * The other lists Postfix's resolver nags about for a domain of each class (resolve.c, with
 * helpful_warnings): the class that won is named first. relay_domains is not compared with
 * mydestination (it used to default to $mydestination).
 */
export const OVERLAPPING_LISTS: Readonly<Record<AddressClass, readonly DomainListName[]>> = {
  local: ["virtual_alias_domains", "virtual_mailbox_domains"],
  virtual_alias: ["virtual_mailbox_domains", "relay_domains"],
  virtual_mailbox: ["relay_domains"],
  relay: [],
  default: [],
};

const CLASS_LIST: Readonly<Record<AddressClass, DomainListName | undefined>> = {
  local: "mydestination",
  virtual_alias: "virtual_alias_domains",
  virtual_mailbox: "virtual_mailbox_domains",
  relay: "relay_domains",
  default: undefined,
};

/** Postfix's words for a domain in two classes' lists. */
export function overlapWarning(domain: string, first: string, second: string): string {
  return `do not list domain ${domain} in BOTH ${first} and ${second}`;
}

/**
 * Postfix's "do not list domain X in BOTH A and B" warnings for a resolved domain (helpful_warnings).
 * A list that cannot answer here is passed over: the warning is advice, the resolution stands.
 */
async function warnOverlaps(config: Config, addressClass: AddressClass, domain: string): Promise<void> {
  const own = CLASS_LIST[addressClass];
  if (!own || !config.bool("helpful_warnings")) return;
  for (const other of OVERLAPPING_LISTS[addressClass]) {
    try {
      if (await domainListMatches(config, other, domain)) log.warn(overlapWarning(domain, own, other));
    } catch (err) {
      if (!(err instanceof TableError)) throw err;
    }
  }
}

/**
 * Postfix's rewrite_tree on an address without "@" in the local context: `site!user` becomes
 * `user@site` (swap_bangpath, the first "!"), else `user%site` becomes `user@site`
 * (allow_percent_hack, the last "%").
 */
function rewriteLocalPart(local: string, bangpath: boolean, percentHack: boolean): string {
  if (local.includes("@")) return local;
  if (bangpath) {
    const bang = local.indexOf("!");
    if (bang >= 0) return `${local.slice(bang + 1)}@${local.slice(0, bang)}`;
  }
  if (percentHack) {
    const pct = local.lastIndexOf("%");
    if (pct >= 0) return `${local.slice(0, pct)}@${local.slice(pct + 1)}`;
  }
  return local;
}

type LoopResult = { kind: "failed" } | { kind: "remote" | "local"; address: string; domain: string };

/** Postfix's resolve_addr loop (see the module header); bounded by the address length + 100 rounds. */
async function resolveLoop(config: Config, address: string, maxRounds: number): Promise<LoopResult> {
  const bangpath = config.bool("swap_bangpath");
  const percentHack = config.bool("allow_percent_hack");
  const dequoted = config.bool("resolve_dequoted");
  const routes = (text: string) => text.includes("@") || (bangpath && text.includes("!")) || (percentHack && text.includes("%"));
  let a = address.trim();
  // source route: @a,@b:user@c -> user@c
  if (a.startsWith("@")) {
    const colon = a.indexOf(":");
    if (colon > 0 && colon < a.length - 1) a = a.slice(colon + 1);
  }
  /** The last local domain stripped; "" for a bare trailing "@" (kept, so the address stays invalid). */
  let saved: string | undefined;
  for (let round = 0; round <= maxRounds; round++) {
    const at = a.lastIndexOf("@");
    if (at >= 0) {
      const domain = stripTrailingDot(a.slice(at + 1)).toLowerCase();
      if (domain && !(await isLocalDomain(config, domain))) return { kind: "remote", address: `${a.slice(0, at)}@${domain}`, domain };
      a = a.slice(0, at);
      saved = domain;
    }
    // a local part that needs quotes is one quoted token: looked into only with resolve_dequoted
    if (a.length >= 2 && a.startsWith('"') && a.endsWith('"')) {
      const inner = a.slice(1, -1).replace(/\\(.)/g, "$1");
      if (dequoted && routes(inner)) {
        a = inner;
        continue;
      }
      if (inner === "") a = "";
    } else if (routes(a) && (dequoted || !localPartNeedsQuotes(a))) {
      a = rewriteLocalPart(a, bangpath, percentHack);
      continue;
    }
    if (a === "") {
      a = config.str("empty_address_recipient");
      continue;
    }
    if (saved === undefined) {
      a = `${a}@${config.str("myhostname").toLowerCase()}`;
      continue;
    }
    return { kind: saved ? "local" : "remote", address: `${a}@${saved}`, domain: saved };
  }
  return { kind: "failed" };
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

/**
 * Postfix's final-domain check: an address literal `[IPv4]` or `[IPv6:address]`, else a host name
 * (valid_hostname; with non-ASCII labels, the name's A-label form).
 */
function isValidDomain(domain: string): boolean {
  if (domain.startsWith("[")) {
    const m = /^\[(ipv6:)?([^\]]*)\]$/i.exec(domain);
    if (!m) return false;
    const ip = parseIpAddress(m[2]!);
    return ip !== undefined && (ip.family === 6) === (m[1] !== undefined);
  }
  // node:url only for the rare non-ASCII name: a daemon that never sees one does not load it (issue 16)
  const ascii = /^[\x00-\x7f]*$/.test(domain) ? domain : (process.getBuiltinModule("node:url") as typeof import("node:url")).domainToASCII(domain);
  return ascii !== "" && isValidHostname(ascii);
}

/** Postfix's RESOLVE_FLAG_ROUTED: the first `@`, `!` or `%` of the address is not the one before its domain. */
function isRouted(address: string): boolean {
  return /[@!%]/.test(splitAddress(address)[0]);
}

const TRANSPORT_PARAM = { local: "local_transport", virtual_mailbox: "virtual_transport", relay: "relay_transport", default: "default_transport" } as const;

export interface ResolveOptions {
  transportLookup?: TransportLookup;
  /** The loop bound; Postfix's (address length + 100) unless a test asks for less. */
  maxRounds?: number;
}

/**
 * Resolves one recipient: the rewritten address, its class, whether it is routed, its transport
 * and next hop, and whether the resolver failed. The one resolver of the program (see the module
 * header); `transportLookup` may also be passed alone, as the queue manager does.
 */
export async function resolveRecipient(config: Config, address: string, options?: ResolveOptions | TransportLookup): Promise<Resolution> {
  const opts: ResolveOptions = typeof options === "function" ? { transportLookup: options } : (options ?? {});
  const loop = await resolveLoop(config, address, opts.maxRounds ?? address.length + 100);
  if (loop.kind === "failed") {
    return { address, addressClass: "default", routed: true, transport: "error", nexthop: `${RESOLVE_LOOP_REASON.dsn} ${RESOLVE_LOOP_REASON.text}`, failed: true, invalid: false };
  }
  const { address: rewritten, domain } = loop;
  const routed = isRouted(rewritten);
  // Postfix's RESOLVE_FLAG_ERROR (user@, user@bad_name!, user@[::1]): the queue manager bounces it
  // ... and, unless allow_min_user, one that starts with "-": a delivery command could take it for an option
  if (!isValidDomain(domain) || (rewritten.startsWith("-") && !config.bool("allow_min_user"))) {
    return { address: rewritten, addressClass: "default", routed, transport: "error", nexthop: "5.1.3 bad address syntax", failed: false, invalid: true };
  }
  const addressClass = loop.kind === "local" ? "local" : await remoteClassOf(config, domain);
  await warnOverlaps(config, addressClass, domain);
  if (addressClass === "virtual_alias") {
    const table = config.bool("show_user_unknown_table_name") ? " in virtual alias table" : "";
    return relocated(config, { address: rewritten, addressClass, routed, transport: "error", nexthop: `5.1.1 User unknown${table}`, failed: false, invalid: false });
  }
  const spec = config.str(TRANSPORT_PARAM[addressClass]);
  let [transport, nexthop] = parseTransport(config, spec);
  if (!nexthop) {
    if (addressClass === "local") nexthop = config.str("myhostname");
    else if (addressClass === "virtual_mailbox") nexthop = domain;
    else nexthop = config.str("relayhost") || domain;
  }
  if (opts.transportLookup) {
    for (const { key, partial } of transportKeys(config, rewritten, domain)) {
      const found = await opts.transportLookup(key, partial);
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
  return relocated(config, { address: rewritten, addressClass, routed, transport, nexthop, failed: false, invalid: false });
}

/**
 * Postfix's last resolver step: a recipient in relocated_maps bounces, whatever its class and
 * transport, with "5.1.6 User has moved to NEW" (NEW is the table's value). The address is looked
 * up as canonical(5) addresses are (user+ext@domain, user@domain, user and @domain; the bare local
 * part only in a local domain). A table that cannot be read throws TableError: the caller defers.
 */
async function relocated(config: Config, r: Resolution): Promise<Resolution> {
  const specs = config.list("relocated_maps");
  if (specs.length === 0) return r;
  const found = await lookupAddress(openTables(specs, config), r.address, config.str("recipient_delimiter"), { localDomain: r.addressClass === "local" });
  if (!found) return r;
  return { ...r, transport: "error", nexthop: `5.1.6 User has moved to ${found.value}`, relocated: true };
}
