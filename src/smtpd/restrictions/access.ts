/**
 * Access maps (Postfix's access(5)): check_client_access,
 * check_helo_access, check_sender_access and check_recipient_access look
 * keys up in a table of any type, in Postfix's order, and the first value
 * found decides:
 *
 *   OK, 2xx text                permit (this list ends)
 *   REJECT [text], 4xx/5xx text refuse, with access_map_reject_code or the given code
 *   DEFER [text]                refuse temporarily (access_map_defer_code)
 *   DEFER_IF_PERMIT, DEFER_IF_REJECT [text]
 *   DUNNO                       no decision: stop looking in this table
 *   HOLD, DISCARD, PREPEND, WARN, INFO [text]
 *   FILTER transport:nexthop    the message goes to that content filter (queue attribute `filter`)
 *   REDIRECT, BCC user@domain   all recipients replaced by it (attribute `redirect`); one more recipient
 *   anything else               a restriction list, evaluated in place
 *
 * Keys: host names with their parent domains (example.com matches
 * sub.example.com, as parent_domain_matches_subdomains has it for
 * smtpd_access_maps), addresses with their IPv4 network prefixes
 * (192.0.2, 192.0, 192), and mail addresses as user+ext@domain,
 * user@domain, domain and parents, user+ext@, user@. Partial keys go to
 * fixed-string tables only; regexp:, pcre: and cidr: see each whole key.
 *
 * Table values come from the administrator (or a policy server, policy-check.ts); keys from the client.
 */
import { splitList } from "../../global/config/value-text.ts";
import { parseReplyText } from "../protocol/reply.ts";
import { openTable } from "../../global/tables/open-table.ts";
import { splitExtension } from "../../global/tables/address-lookup.ts";
import { parseIpAddress } from "../../util/net/cidr-match.ts";
import { DUNNO, PERMIT, type CheckContext, type Decision, type Subject } from "./context.ts";

export interface AccessKey {
  key: string;
  /** Only fixed-string tables see it. */
  partial: boolean;
}

/** The domain and its parents: a.b.example.com, b.example.com, example.com, com. */
export function domainKeys(domain: string, first: boolean): AccessKey[] {
  const d = domain.toLowerCase().replace(/\.$/, "");
  if (!d) return [];
  const out: AccessKey[] = [{ key: d, partial: !first }];
  let rest = d;
  for (let dot = rest.indexOf("."); dot >= 0; dot = rest.indexOf(".")) {
    rest = rest.slice(dot + 1);
    if (rest) out.push({ key: rest, partial: true });
  }
  return out;
}

/** A client address and, for IPv4, its network prefixes. */
export function addressKeys(address: string): AccessKey[] {
  const out: AccessKey[] = [{ key: address, partial: false }];
  const ip = parseIpAddress(address);
  if (ip?.family === 4) {
    const octets = address.split(".");
    for (let n = 3; n >= 1; n--) out.push({ key: octets.slice(0, n).join("."), partial: true });
  }
  return out;
}

/** Keys for a mail address; the null address is smtpd_null_access_lookup_key. */
export function mailAddressKeys(address: string, delimiter: string, nullKey: string): AccessKey[] {
  if (address === "") return [{ key: nullKey, partial: false }];
  const at = address.lastIndexOf("@");
  const local = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? "" : address.slice(at + 1);
  const split = splitExtension(local, delimiter);
  const out: AccessKey[] = [{ key: address, partial: false }];
  if (split && domain) out.push({ key: `${split.user}@${domain}`, partial: true });
  if (domain) out.push(...domainKeys(domain, false));
  out.push({ key: `${local}@`, partial: true });
  if (split) out.push({ key: `${split.user}@`, partial: true });
  return out;
}

/** Looks the keys up in `spec`; the first value found decides, DUNNO when none is found. */
export async function checkAccess(
  ctx: CheckContext,
  spec: string,
  keys: readonly AccessKey[],
  subject: Subject,
  evaluate: (ctx: CheckContext, words: string[]) => Promise<Decision>,
): Promise<Decision> {
  const table = openTable(spec, ctx.config);
  for (const k of keys) {
    if (k.partial && table.kind !== "fixed") continue;
    const value = await table.lookup(k.key);
    if (value !== undefined) return accessResult(ctx, value, subject, evaluate);
  }
  return DUNNO;
}

export async function accessResult(
  ctx: CheckContext,
  value: string,
  subject: Subject,
  evaluate: (ctx: CheckContext, words: string[]) => Promise<Decision>,
): Promise<Decision> {
  const trimmed = value.trim();
  const word = trimmed.split(/\s+/)[0] ?? "";
  const text = trimmed.slice(word.length).trim();
  const config = ctx.config;
  const { name, what } = ctx.subjectText(subject);
  const stage = ctx.command;
  switch (word.toUpperCase()) {
    case "OK":
      return PERMIT;
    case "REJECT":
      return ctx.reject(config.int("access_map_reject_code"), "5.7.1", text || "Access denied", subject);
    case "DEFER":
      return ctx.reject(config.int("access_map_defer_code"), "4.7.1", text || "Access denied", subject);
    case "DEFER_IF_REJECT":
      ctx.deferIfReject = true;
      return DUNNO;
    case "DEFER_IF_PERMIT":
      ctx.deferIfPermit ??= ctx.rejectReply(config.int("access_map_defer_code"), "4.7.1", text || "Service unavailable", subject);
      return DUNNO;
    case "DUNNO":
      return DUNNO;
    case "HOLD":
      ctx.actions.push({ kind: "hold", reason: text ? `<${name}>: ${what} ${text}` : `<${name}>: ${what} triggers HOLD action`, stage, subject: ctx.recipient?.written ?? "" });
      return DUNNO;
    case "DISCARD":
      ctx.actions.push({ kind: "discard", reason: text ? `<${name}>: ${what} ${text}` : `<${name}>: ${what} triggers DISCARD action`, stage, subject: ctx.recipient?.written ?? "" });
      return PERMIT;
    case "PREPEND":
      if (!/^[\x21-\x39\x3b-\x7e]+:/.test(text)) {
        ctx.env.warn(`access table result "${trimmed}": PREPEND needs "headername: headervalue"`);
        return DUNNO;
      }
      ctx.actions.push({ kind: "prepend", header: text });
      return DUNNO;
    case "WARN":
      ctx.env.warn(`${stage} from ${ctx.session.client.name}[${ctx.session.client.address}]: <${name}>: ${what} ${text}`);
      return DUNNO;
    case "INFO":
      ctx.env.info(`info: ${stage} from ${ctx.session.client.name}[${ctx.session.client.address}]: <${name}>: ${what} ${text}`);
      return DUNNO;
    case "FILTER":
      // Postfix's check: a content filter is transport:destination
      if (!/^[^\s:]+:\S*$/.test(text)) {
        ctx.env.warn(`access table result "${trimmed}": FILTER needs transport:destination`);
        return DUNNO;
      }
      ctx.actions.push({ kind: "filter", filter: text, reason: `<${name}>: ${what} triggers FILTER ${text}`, stage, subject: ctx.recipient?.written ?? "" });
      return DUNNO;
    case "REDIRECT":
    case "BCC": {
      if (!text.includes("@") || /[\s\x00-\x1f\x7f<>]/.test(text)) {
        ctx.env.warn(`access table result "${trimmed}": ${word.toUpperCase()} needs a user@domain target`);
        return DUNNO;
      }
      const kind = word.toUpperCase() === "BCC" ? "bcc" : "redirect";
      ctx.actions.push({ kind, address: text, reason: `<${name}>: ${what} triggers ${word.toUpperCase()} ${text}`, stage, subject: ctx.recipient?.written ?? "" });
      return DUNNO;
    }
  }
  if (/^2\d\d(\s|$)/.test(trimmed)) return PERMIT;
  const r = parseReplyText(trimmed);
  if (r) {
    const dsn = r.dsn ?? `${String(r.code)[0]}.7.1`;
    return ctx.reject(r.code, dsn, r.text || "Access denied", subject);
  }
  // a restriction list (or a restriction class) as the result
  if (ctx.depth > 10) {
    ctx.env.warn(`access table result "${trimmed}": restrictions nested too deeply`);
    return { kind: "reject", reply: { code: 451, dsn: "4.3.5", lines: ["Server configuration error"] } };
  }
  ctx.depth++;
  try {
    return await evaluate(ctx, splitList(trimmed));
  } finally {
    ctx.depth--;
  }
}
