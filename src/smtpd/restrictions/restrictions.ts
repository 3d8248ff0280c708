/**
 * The restriction engine: Postfix's smtpd_*_restrictions lists evaluated
 * word by word against a table of named restrictions. Each restriction
 * answers permit (the list ends, the request goes on to the next list),
 * reject (with Postfix's reply), or dunno (the next restriction decides).
 * `defer_if_permit`, `defer_if_reject` and `warn_if_reject` change what
 * later answers mean; names from smtpd_restriction_classes run their own
 * lists; an unknown name is a configuration error the client sees as
 * `451 4.3.5 Server configuration error`, as with Postfix.
 *
 * A table that cannot be read makes the restriction answer
 * `451 4.3.0 <name>: Temporary lookup failure` instead of guessing.
 *
 * Runs in smtpd as mail_owner; what it checks is untrusted client data.
 */
import { isTemporary, isValidHostname, rblLookup, rhsblLookup, type DnsblResult, type DnsQuerier } from "../../global/dns/index.ts";
import { reply, type SmtpdReply } from "../protocol/reply.ts";
import { printable } from "../../util/printable.ts";
import { TableError } from "../../global/tables/table.ts";
import { openTable } from "../../global/tables/open-table.ts";
import { lookupAddress } from "../../global/tables/address-lookup.ts";
import { parseIpAddress } from "../../util/net/cidr-match.ts";
import { addressKeys, checkAccess, domainKeys, mailAddressKeys } from "./access.ts";
import { RESOLVE_LOOP_REASON, type Resolution } from "../../global/rewrite/resolve.ts";
import { isAuthorizedDestination, isFinalClass, recipientStatus, resolveClientAddress } from "./recipient-checks.ts";
import { checkPolicyService } from "./policy-check.ts";
import { DUNNO, PERMIT, type CheckContext, type Decision, type Subject } from "./context.ts";

interface RestrictionRow {
  /** Takes the next word of the list as its argument (a table, a DNS zone, seconds). */
  argument: boolean;
  run(ctx: CheckContext, arg: string): Promise<Decision>;
}

const domainOf = (address: string) => (address.includes("@") ? address.slice(address.lastIndexOf("@") + 1).toLowerCase() : "");

/** A host name or address is fully qualified when it has a dot (or is an address literal). */
function isFqdn(domain: string): boolean {
  return domain.includes(".") || /^\[.*\]$/.test(domain);
}

async function clientAccess(ctx: CheckContext, spec: string): Promise<Decision> {
  const { name, address } = ctx.session.client;
  const keys = [...(name !== "unknown" ? domainKeys(name, true) : []), ...addressKeys(address)];
  return checkAccess(ctx, spec, keys, "client", evaluateRestrictions);
}

async function heloAccess(ctx: CheckContext, spec: string): Promise<Decision> {
  const helo = ctx.session.helo;
  if (helo === undefined) return DUNNO;
  return checkAccess(ctx, spec, domainKeys(helo, true), "helo", evaluateRestrictions);
}

async function mailAccess(ctx: CheckContext, spec: string, which: "sender" | "recipient"): Promise<Decision> {
  const address = which === "sender" ? ctx.session.sender : ctx.recipient?.address;
  if (address === undefined) return DUNNO;
  const keys = mailAddressKeys(address, ctx.config.str("recipient_delimiter"), ctx.config.str("smtpd_null_access_lookup_key"));
  return checkAccess(ctx, spec, keys, which, evaluateRestrictions);
}

/** Whether a mail domain exists for mail: an MX, else an address record; null MX says it takes no mail. */
async function mailDomainStatus(dns: DnsQuerier, domain: string): Promise<"ok" | "missing" | "nullmx" | "temp"> {
  const mx = await dns.query(domain, "MX");
  if (mx.status === "ok") {
    if (mx.records.length === 1 && (mx.records[0]!.exchange === "" || mx.records[0]!.exchange === ".")) return "nullmx";
    return "ok";
  }
  if (isTemporary(mx)) return "temp";
  if (mx.status === "nxdomain") return "missing";
  for (const type of ["A", "AAAA"] as const) {
    const r = await dns.query(domain, type);
    if (r.status === "ok") return "ok";
    if (isTemporary(r)) return "temp";
  }
  return "missing";
}

/**
 * The address resolved by the one resolver the queue manager also routes with. A resolution that
 * failed (the resolver's loop bound) is refused here, whichever restriction asked: it is never
 * treated as local. Permanent, since the same address fails the same way every time.
 */
async function resolveOrRefuse(ctx: CheckContext, address: string, subject: "sender" | "recipient"): Promise<Resolution | Decision> {
  const r = await resolveClientAddress(ctx.config, address);
  if (!r.failed) return r;
  ctx.env.warn(`resolve: <${address.replace(/[\x00-\x1f\x7f]/g, "?")}>: giving up: address resolution loop`);
  return ctx.reject(550, subject === "sender" ? "5.1.7" : RESOLVE_LOOP_REASON.dsn, RESOLVE_LOOP_REASON.text, subject);
}

function isDecision(r: Resolution | Decision): r is Decision {
  return "kind" in r;
}

async function unknownDomain(ctx: CheckContext, which: "sender" | "recipient"): Promise<Decision> {
  const address = which === "sender" ? ctx.session.sender : ctx.recipient?.address;
  if (!address) return DUNNO;
  // Postfix's reject_unknown_address: the resolved domain, unless it is ours or an address literal
  const r = await resolveOrRefuse(ctx, address, which);
  if (isDecision(r)) return r;
  if (isFinalClass(r)) return DUNNO;
  const domain = domainOf(r.address);
  if (!domain || domain.startsWith("[")) return DUNNO;
  const status = await mailDomainStatus(ctx.env.dns, domain);
  const dsn = which === "sender" ? "4.1.8" : "4.1.2";
  const code = ctx.config.int("unknown_address_reject_code");
  switch (status) {
    case "ok":
      return DUNNO;
    case "nullmx":
      return ctx.reject(556, "5.1.10", `Domain ${domain} does not accept mail (nullMX)`, which);
    case "missing":
      return ctx.reject(code, dsn, "Domain not found", which);
    case "temp":
      return ctx.tempfail("unknown_address_tempfail_action", ctx.rejectReply(450, "4.4.3", "Domain not found", which));
  }
}

/** "zone" or "zone=127.0.0.2" or "zone=127.0.0.[2..11]": which answers count as listed. */
function zoneFilter(arg: string): { zone: string; accept: (a: string) => boolean } {
  const eq = arg.indexOf("=");
  if (eq < 0) return { zone: arg, accept: () => true };
  const zone = arg.slice(0, eq);
  const pattern = arg.slice(eq + 1);
  const parts = pattern.match(/\[[^\]]*\]|[^.]+/g) ?? [];
  return {
    zone,
    accept: (address) => {
      const octets = address.split(".");
      if (octets.length !== 4 || parts.length !== 4) return address === pattern;
      return parts.every((p, i) => {
        const o = Number(octets[i]);
        const range = /^\[(.*)\]$/.exec(p);
        if (!range) return p === octets[i];
        return range[1]!.split(";").some((r) => {
          const m = /^(\d+)\.\.(\d+)$/.exec(r);
          return m ? o >= Number(m[1]) && o <= Number(m[2]) : Number(r) === o;
        });
      });
    },
  };
}

async function dnsblCheck(ctx: CheckContext, arg: string, what: string, className: string, subject: Subject, lookup: (zone: string) => Promise<DnsblResult> | undefined): Promise<Decision> {
  const { zone, accept } = zoneFilter(arg);
  const pending = lookup(zone);
  if (!pending) return DUNNO;
  const r = await pending;
  if (r.status === "unlisted") return DUNNO;
  if (r.status !== "listed") {
    if (isTemporary(r)) ctx.env.warn(`${zone}: RBL lookup error: Host or domain name not found. Name service error for name=${r.query} type=A: Host not found, try again`);
    return DUNNO;
  }
  const hits = r.addresses.filter(accept);
  if (hits.length === 0) return DUNNO;
  const code = ctx.config.int("maps_rbl_reject_code");
  const template = await rblTemplate(ctx, zone);
  const vars: Record<string, string> = {
    rbl_code: String(code),
    rbl_domain: zone,
    rbl_reason: r.reason ?? "",
    rbl_what: what,
    rbl_class: className,
    rbl_txt: r.reason ?? "",
    client_address: ctx.session.client.address,
    client_name: ctx.session.client.name,
  };
  for (const name of Object.keys(vars)) vars[name] = expandFiltered(vars[name]!);
  const text = expandTemplate(template, vars);
  const parsed = /^([45]\d\d)\s+(?:([45]\.\d{1,3}\.\d{1,3})\s+)?(.*)$/s.exec(text);
  const replyCode = parsed ? Number(parsed[1]) : code;
  const dsn = parsed?.[2] ?? `${String(replyCode)[0]}.7.1`;
  void subject;
  return { kind: "reject", reply: reply(replyCode, dsn, boundedReplyText(replyCode, dsn, parsed ? parsed[3]! : text)) };
}

/**
 * A value that goes into a reply template: every character outside
 * Postfix's default smtpd_expand_filter (TAB, space and printable ASCII)
 * becomes "_", as mac_expand's filter does. A DNS list's TXT text is the
 * list operator's: CR and LF in it must not start a reply line of their own.
 */
export function expandFiltered(value: string): string {
  return value.replace(/[^\t\x20-\x7e]/g, "_");
}

/** Postfix's smtpd_check_reject: "CODE DSN text" cut at 510 characters, then printable with spaces. */
export function boundedReplyText(code: number, dsn: string, text: string): string {
  const prefix = `${code} ${dsn} `.length;
  return printable(text.slice(0, Math.max(0, REPLY_TEXT_LIMIT - prefix)), false, " ");
}

/** RFC 5321's 512-octet reply line less CRLF (smtpd_check.c). */
const REPLY_TEXT_LIMIT = 510;

async function rblTemplate(ctx: CheckContext, zone: string): Promise<string> {
  for (const spec of ctx.config.list("rbl_reply_maps")) {
    const v = await openTable(spec, ctx.config).lookup(zone);
    if (v !== undefined) return v;
  }
  return ctx.config.raw("default_rbl_reply") ?? "";
}

/** $name, ${name}, ${name?text} and ${name:text} over `vars` (the RBL reply template). */
export function expandTemplate(template: string, vars: Record<string, string>): string {
  return template.replace(/\$(?:\{(\w+)(?:([?:])((?:[^{}]|\{[^{}]*\})*))?\}|(\w+))/g, (_m, braced: string | undefined, op: string | undefined, alt: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare!;
    const value = vars[name] ?? "";
    if (op === "?") return value ? expandTemplate(alt ?? "", vars) : "";
    if (op === ":") return value ? "" : expandTemplate(alt ?? "", vars);
    return value;
  });
}

async function senderLoginMismatch(ctx: CheckContext, mode: "both" | "authenticated" | "unauthenticated"): Promise<Decision> {
  const sender = ctx.session.sender;
  if (sender === undefined) return DUNNO;
  const maps = ctx.config.list("smtpd_sender_login_maps");
  if (maps.length === 0) return DUNNO;
  const login = ctx.session.sasl?.username;
  const found = await lookupAddress(
    maps.map((m) => openTable(m, ctx.config)),
    sender === "" ? ctx.config.str("smtpd_null_access_lookup_key") : sender,
    ctx.config.str("recipient_delimiter"),
  );
  const owners = found ? found.value.split(/[\s,]+/).filter(Boolean) : [];
  if (login !== undefined) {
    if (mode === "unauthenticated") return DUNNO;
    if (!owners.includes(login)) return ctx.reject(553, "5.7.1", `not owned by user ${login}`, "sender");
    return DUNNO;
  }
  if (mode === "authenticated") return DUNNO;
  if (owners.length > 0) return ctx.reject(553, "5.7.1", "not logged in", "sender");
  return DUNNO;
}

async function unlistedRecipient(ctx: CheckContext): Promise<Decision> {
  const rcpt = ctx.recipient;
  if (!rcpt) return DUNNO;
  return unknownRecipientDecision(ctx, rcpt.address, "recipient");
}

export async function unknownRecipientDecision(ctx: CheckContext, address: string, subject: "sender" | "recipient"): Promise<Decision> {
  const resolved = await resolveOrRefuse(ctx, address, subject);
  if (isDecision(resolved)) return resolved;
  const status = await recipientStatus(ctx.config, resolved, subject);
  if (status.known) return DUNNO;
  if ("moved" in status) return ctx.reject(status.code, subject === "sender" ? "5.1.0" : "5.1.6", status.moved, subject);
  const table = ctx.config.bool("show_user_unknown_table_name") ? ` in ${status.table}` : "";
  return ctx.reject(status.code, subject === "sender" ? "5.1.0" : "5.1.1", `User unknown${table}`, subject);
}

function relayDenied(ctx: CheckContext, code: number, dsn: string): Decision {
  const rcpt = ctx.recipient?.address ?? "";
  return { kind: "reject", reply: reply(code, dsn, `<${rcpt.replace(/[\x00-\x1f\x7f]/g, "?")}>: Relay access denied`) };
}

/** permit_auth_destination's answer, or a refusal when the recipient cannot be resolved. */
async function authorizedDestination(ctx: CheckContext): Promise<boolean | Decision | undefined> {
  const rcpt = ctx.recipient;
  if (!rcpt) return undefined;
  const r = await resolveOrRefuse(ctx, rcpt.address, "recipient");
  return isDecision(r) ? r : isAuthorizedDestination(ctx.config, r);
}

function helohostname(ctx: CheckContext): string | undefined {
  return ctx.session.helo;
}

/** The named restrictions. */
const RESTRICTIONS: Record<string, RestrictionRow> = {
  permit: { argument: false, run: async () => PERMIT },
  ok: { argument: false, run: async () => PERMIT },
  dunno: { argument: false, run: async () => DUNNO },
  reject: { argument: false, run: async (ctx) => ctx.reject(ctx.config.int("reject_code"), "5.7.1", "Access denied") },
  defer: { argument: false, run: async (ctx) => ctx.reject(ctx.config.int("defer_code"), "4.7.1", "Access denied") },
  defer_if_permit: {
    argument: false,
    async run(ctx) {
      ctx.deferIfPermit ??= ctx.rejectReply(ctx.config.int("defer_code"), "4.7.1", "Service unavailable");
      return DUNNO;
    },
  },
  defer_if_reject: {
    argument: false,
    async run(ctx) {
      ctx.deferIfReject = true;
      return DUNNO;
    },
  },
  warn_if_reject: {
    argument: false,
    async run(ctx) {
      ctx.warnIfReject = true;
      return DUNNO;
    },
  },
  sleep: {
    argument: true,
    async run(_ctx, arg) {
      const s = Number(arg);
      if (Number.isFinite(s) && s > 0) await Bun.sleep(Math.min(s, 60) * 1000);
      return DUNNO;
    },
  },
  permit_mynetworks: {
    argument: false,
    run: async (ctx) => ((await ctx.env.mynetworks.matches(ctx.session.client.name, ctx.session.client.address)) ? PERMIT : DUNNO),
  },
  permit_inet_interfaces: {
    argument: false,
    run: async (ctx) => ((await isInetInterface(ctx.session.client.address)) ? PERMIT : DUNNO),
  },
  permit_sasl_authenticated: { argument: false, run: async (ctx) => (ctx.session.sasl ? PERMIT : DUNNO) },
  permit_tls_all_clientcerts: { argument: false, run: async () => DUNNO },
  reject_plaintext_session: {
    argument: false,
    run: async (ctx) => (ctx.session.tls ? DUNNO : ctx.reject(ctx.config.int("plaintext_reject_code"), "4.7.1", "Session encryption is required")),
  },
  permit_auth_destination: {
    argument: false,
    async run(ctx) {
      const ok = await authorizedDestination(ctx);
      return typeof ok === "object" ? ok : ok ? PERMIT : DUNNO;
    },
  },
  reject_unauth_destination: {
    argument: false,
    async run(ctx) {
      const ok = await authorizedDestination(ctx);
      if (typeof ok === "object") return ok;
      return ok === false ? relayDenied(ctx, ctx.config.int("relay_domains_reject_code"), "5.7.1") : DUNNO;
    },
  },
  defer_unauth_destination: {
    argument: false,
    async run(ctx) {
      const ok = await authorizedDestination(ctx);
      if (typeof ok === "object") return ok;
      return ok === false ? relayDenied(ctx, 454, "4.7.1") : DUNNO;
    },
  },
  reject_unauth_pipelining: {
    argument: false,
    async run(ctx) {
      if (!ctx.session.pipelined || ctx.session.pipeliningAllowed) return DUNNO;
      return ctx.reject(503, "5.5.0", "Improper use of SMTP command pipelining");
    },
  },
  reject_unlisted_recipient: { argument: false, run: unlistedRecipient },
  check_recipient_maps: { argument: false, run: unlistedRecipient },
  reject_unlisted_sender: {
    argument: false,
    run: async (ctx) => (ctx.session.sender ? unknownRecipientDecision(ctx, ctx.session.sender, "sender") : DUNNO),
  },
  reject_unknown_sender_domain: { argument: false, run: (ctx) => unknownDomain(ctx, "sender") },
  reject_unknown_recipient_domain: { argument: false, run: (ctx) => unknownDomain(ctx, "recipient") },
  reject_non_fqdn_sender: {
    argument: false,
    async run(ctx) {
      const s = ctx.session.sender;
      if (!s) return DUNNO;
      return isFqdn(domainOf(s)) ? DUNNO : ctx.reject(ctx.config.int("non_fqdn_reject_code"), "5.5.2", "need fully-qualified address", "sender");
    },
  },
  reject_non_fqdn_recipient: {
    argument: false,
    async run(ctx) {
      const r = ctx.recipient?.address;
      if (!r) return DUNNO;
      return isFqdn(domainOf(r)) ? DUNNO : ctx.reject(ctx.config.int("non_fqdn_reject_code"), "5.5.2", "need fully-qualified address", "recipient");
    },
  },
  reject_non_fqdn_helo_hostname: { argument: false, run: nonFqdnHelo },
  reject_non_fqdn_hostname: { argument: false, run: nonFqdnHelo },
  reject_invalid_helo_hostname: { argument: false, run: invalidHelo },
  reject_invalid_hostname: { argument: false, run: invalidHelo },
  reject_unknown_helo_hostname: {
    argument: false,
    async run(ctx) {
      const helo = helohostname(ctx);
      if (helo === undefined || /^\[.*\]$/.test(helo)) return DUNNO;
      const status = await mailDomainStatus(ctx.env.dns, helo);
      if (status === "ok" || status === "nullmx") return DUNNO;
      const r = ctx.rejectReply(ctx.config.int("unknown_hostname_reject_code"), "4.7.1", "Host not found", "helo");
      return status === "temp" ? ctx.tempfail("reject_tempfail_action", r) : { kind: "reject", reply: r };
    },
  },
  reject_unknown_hostname: { argument: false, run: (ctx) => RESTRICTIONS.reject_unknown_helo_hostname!.run(ctx, "") },
  reject_unknown_client_hostname: { argument: false, run: (ctx) => unknownClient(ctx, "name") },
  reject_unknown_client: { argument: false, run: (ctx) => unknownClient(ctx, "name") },
  reject_unknown_reverse_client_hostname: { argument: false, run: (ctx) => unknownClient(ctx, "reverse") },
  reject_rbl_client: {
    argument: true,
    run: (ctx, arg) => dnsblCheck(ctx, arg, ctx.session.client.address, "Client host", "client", (zone) => rblLookup(ctx.env.dns, zone, ctx.session.client.address)),
  },
  reject_rhsbl_client: {
    argument: true,
    run: (ctx, arg) => {
      const name = ctx.session.client.name;
      return dnsblCheck(ctx, arg, name, "Client host", "client", (zone) => (name === "unknown" ? undefined : rhsblLookup(ctx.env.dns, zone, name)));
    },
  },
  reject_rhsbl_reverse_client: {
    argument: true,
    run: (ctx, arg) => {
      const name = ctx.env.names.reverseName;
      return dnsblCheck(ctx, arg, name, "Unverified Client host", "client", (zone) => (name === "unknown" ? undefined : rhsblLookup(ctx.env.dns, zone, name)));
    },
  },
  reject_rhsbl_sender: {
    argument: true,
    run: (ctx, arg) => {
      const d = domainOf(ctx.session.sender ?? "");
      return dnsblCheck(ctx, arg, d, "Sender address", "sender", (zone) => (d ? rhsblLookup(ctx.env.dns, zone, d) : undefined));
    },
  },
  reject_rhsbl_helo: {
    argument: true,
    run: (ctx, arg) => {
      const d = ctx.session.helo ?? "";
      return dnsblCheck(ctx, arg, d, "Helo command", "helo", (zone) => (d && isValidHostname(d) ? rhsblLookup(ctx.env.dns, zone, d) : undefined));
    },
  },
  reject_rhsbl_recipient: {
    argument: true,
    run: (ctx, arg) => {
      const d = domainOf(ctx.recipient?.address ?? "");
      return dnsblCheck(ctx, arg, d, "Recipient address", "recipient", (zone) => (d ? rhsblLookup(ctx.env.dns, zone, d) : undefined));
    },
  },
  permit_dnswl_client: {
    argument: true,
    async run(ctx, arg) {
      const { zone, accept } = zoneFilter(arg);
      const r = await rblLookup(ctx.env.dns, zone, ctx.session.client.address, { reason: false });
      return r.status === "listed" && r.addresses.some(accept) ? PERMIT : DUNNO;
    },
  },
  check_client_access: { argument: true, run: clientAccess },
  check_helo_access: { argument: true, run: heloAccess },
  check_sender_access: { argument: true, run: (ctx, spec) => mailAccess(ctx, spec, "sender") },
  check_recipient_access: { argument: true, run: (ctx, spec) => mailAccess(ctx, spec, "recipient") },
  check_policy_service: { argument: true, run: (ctx, arg) => checkPolicyService(ctx, arg, evaluateRestrictions) },
  reject_sender_login_mismatch: { argument: false, run: (ctx) => senderLoginMismatch(ctx, "both") },
  reject_authenticated_sender_login_mismatch: { argument: false, run: (ctx) => senderLoginMismatch(ctx, "authenticated") },
  reject_unauthenticated_sender_login_mismatch: { argument: false, run: (ctx) => senderLoginMismatch(ctx, "unauthenticated") },
  reject_known_sender_login_mismatch: { argument: false, run: (ctx) => senderLoginMismatch(ctx, "authenticated") },
};

async function nonFqdnHelo(ctx: CheckContext): Promise<Decision> {
  const helo = helohostname(ctx);
  if (helo === undefined) return DUNNO;
  if (/^\[.*\]$/.test(helo) || isFqdn(helo.replace(/\.$/, ""))) return DUNNO;
  return ctx.reject(ctx.config.int("non_fqdn_reject_code"), "5.5.2", "need fully-qualified hostname", "helo");
}

async function invalidHelo(ctx: CheckContext): Promise<Decision> {
  const helo = helohostname(ctx);
  if (helo === undefined) return DUNNO;
  const literal = /^\[(?:IPv6:)?([^\]]*)\]$/i.exec(helo);
  const valid = literal ? parseIpAddress(literal[1]!) !== undefined : isValidHostname(helo.replace(/\.$/, ""));
  return valid ? DUNNO : ctx.reject(ctx.config.int("invalid_hostname_reject_code"), "5.5.2", "Invalid name", "helo");
}

async function unknownClient(ctx: CheckContext, which: "name" | "reverse"): Promise<Decision> {
  const names = ctx.env.names;
  const status = which === "name" ? names.nameStatus : names.reverseNameStatus;
  if (status === "ok") return DUNNO;
  const text = `Client host rejected: cannot find your ${which === "name" ? "" : "reverse "}hostname, [${ctx.session.client.address}]`;
  const code = ctx.config.int("unknown_client_reject_code");
  const r = reply(code, `${String(code)[0]}.7.25`, text);
  if (status === "temp") return ctx.tempfail("reject_tempfail_action", reply(450, "4.7.25", text));
  return { kind: "reject", reply: r };
}

let interfaceAddresses: Set<string> | undefined;
async function isInetInterface(address: string): Promise<boolean> {
  if (!interfaceAddresses) {
    const { networkInterfaces } = await import("node:os");
    interfaceAddresses = new Set();
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) interfaceAddresses.add(a.address.toLowerCase());
  }
  return interfaceAddresses.has(address.toLowerCase());
}

export const RESTRICTION_NAMES: readonly string[] = Object.keys(RESTRICTIONS);

/** Evaluates a restriction list; DUNNO when it ran out without a decision. */
export async function evaluateRestrictions(ctx: CheckContext, words: readonly string[]): Promise<Decision> {
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const name = word.toLowerCase();
    const warnThis = ctx.warnIfReject;
    ctx.warnIfReject = false;
    let decision: Decision;
    const row = Object.hasOwn(RESTRICTIONS, name) ? RESTRICTIONS[name] : undefined;
    try {
      if (row) {
        let arg = "";
        if (row.argument) {
          const next = words[i + 1];
          if (next === undefined) {
            ctx.env.warn(`restriction ${name} requires an argument`);
            return { kind: "reject", reply: reply(451, "4.3.5", "Server configuration error") };
          }
          arg = next;
          i++;
        }
        decision = await row.run(ctx, arg);
      } else if (ctx.config.list("smtpd_restriction_classes").includes(word) && ctx.depth < 10) {
        ctx.depth++;
        try {
          decision = await evaluateRestrictions(ctx, ctx.config.list(word));
        } finally {
          ctx.depth--;
        }
      } else {
        ctx.env.warn(`unknown smtpd restriction: "${word}"`);
        return { kind: "reject", reply: reply(451, "4.3.5", "Server configuration error") };
      }
    } catch (err) {
      if (!(err instanceof TableError)) throw err;
      ctx.env.warn(`${err.message}`);
      decision = ctx.reject(451, "4.3.0", "Temporary lookup failure");
    }
    if (name === "warn_if_reject") continue;
    if (decision.kind === "reject") {
      if (warnThis) {
        ctx.env.info(`reject_warning: ${ctx.command} from ${ctx.session.client.name}[${ctx.session.client.address}]: ${replyText(decision.reply)}`);
        continue;
      }
      if (ctx.deferIfReject && decision.reply.code >= 500) decision = { kind: "reject", reply: softened(decision.reply) };
      return decision;
    }
    if (decision.kind === "permit") return decision;
  }
  return DUNNO;
}

function softened(r: SmtpdReply): SmtpdReply {
  return { code: 450, dsn: r.dsn ? `4${r.dsn.slice(1)}` : "4.7.1", lines: r.lines };
}

function replyText(r: SmtpdReply): string {
  return `${r.code} ${r.dsn ?? ""} ${r.lines[0] ?? ""}`.replace(/ +/g, " ");
}

/** Names a list may hold that need no table or DNS: for `postern check`-style validation of lists. */
export function knownRestriction(name: string): boolean {
  return Object.hasOwn(RESTRICTIONS, name.toLowerCase());
}

/** The restrictions that take the next word as their argument (a table, a DNS domain, a service). */
export const RESTRICTIONS_WITH_ARGUMENT: readonly string[] = RESTRICTION_NAMES.filter((n) => RESTRICTIONS[n]!.argument);
