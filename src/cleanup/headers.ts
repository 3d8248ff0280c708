/**
 * The header part of Postfix's cleanup for local submissions:
 *
 * - headers named in message_drop_headers are removed (Bcc, Resent-Bcc,
 *   Content-Length, Return-Path by default);
 * - addresses in sender and recipient headers (From, Sender, Reply-To, To,
 *   Cc, ... and their Resent- forms) are canonicalized like the envelope
 *   (unqualified ones get @$myorigin), then mapped by the canonical maps
 *   (looked up beforehand, canonical-maps.ts), in place, keeping display
 *   names and comments;
 * - Received: headers are counted for hopcount_limit;
 * - missing headers are added after the others: Message-Id, Date, From
 *   (the Resent- forms when the message has Resent- headers), and
 *   undisclosed_recipients_header when there is no To/Cc and it is set.
 *
 * Header text is latin1 ("binary") so every byte of the message survives;
 * generated text is UTF-8 and converted on the way in. The message is
 * untrusted; the header token limit bounds address parsing.
 */
import type { CanonicalOptions } from "../global/address/canonical.ts";
import { canonicalizeAddress } from "../global/address/canonical.ts";
import { rewriteAddressHeader } from "../global/address/header-rewrite.ts";
import { externalizeAddress, formatDisplayName } from "../global/address/quote.ts";
import { headerClass } from "../global/message/header-names.ts";
import { headerNameLength, type HeaderField } from "../global/message/header-split.ts";
import { mailDate, messageIdStamp } from "../global/message/mail-date.ts";
import type { CleanupSettings } from "./settings.ts";
import type { HeaderAddressMap } from "./canonical-maps.ts";

export const toLatin1 = (s: string) => Buffer.from(s, "utf8").toString("latin1");
export const fromLatin1 = (s: string) => Buffer.from(s, "latin1").toString("utf8");

export interface HeaderInput {
  headers: readonly HeaderField[];
  queueId: string;
  /** Canonical envelope sender ("" is the null sender). */
  sender: string;
  fullName?: string;
  rewriteContext: "local" | "remote";
  arrival: Date;
  now: Date;
  /** canonical(5) results for header addresses, looked up beforehand (canonical-maps.ts headerAddressMap). */
  addressMap?: HeaderAddressMap;
}

export interface HeaderOutput {
  /** Header texts in order (latin1), without line ends. */
  lines: string[];
  receivedCount: number;
  /** Info log lines for this message ("message-id=<...>"), without the queue ID. */
  logs: string[];
  warnings: string[];
}

/** The latin1 form of each settings' options, made once (the settings live as long as their configuration). */
const latin1Options = new WeakMap<CanonicalOptions, CanonicalOptions>();

function headerOptions(opts: CanonicalOptions): CanonicalOptions {
  let out = latin1Options.get(opts);
  if (!out) {
    out = { ...opts, myorigin: toLatin1(opts.myorigin), mydomain: toLatin1(opts.mydomain), remoteDomain: toLatin1(opts.remoteDomain) };
    latin1Options.set(opts, out);
  }
  return out;
}

function valueOf(text: string): string {
  return text.slice(text.indexOf(":") + 1).trim();
}

/**
 * How header addresses are canonicalized in `context`, or undefined when the headers are not
 * rewritten at all: remote submissions (sendmail -G, clients outside local_header_rewrite_clients)
 * are rewritten only towards remote_header_rewrite_domain.
 */
export function headerCanonicalizer(context: "local" | "remote", settings: CleanupSettings): ((address: string) => string) | undefined {
  if (context !== "local" && settings.remote.remoteDomain === "") return undefined;
  const canon = headerOptions(context === "local" ? settings.local : settings.remote);
  return (a: string) => canonicalizeAddress(a, canon);
}

export function cleanHeaders(input: HeaderInput, settings: CleanupSettings): HeaderOutput {
  const out: HeaderOutput = { lines: [], receivedCount: 0, logs: [], warnings: [] };
  const seen = new Set<string>();
  let resent = false;
  const canonicalize = headerCanonicalizer(input.rewriteContext, settings);
  const rewriting = canonicalize !== undefined;
  const map = input.addressMap;
  const rewriteAs = (kind: "S" | "R") => (a: string) => {
    const c = canonicalize!(a);
    return map?.get(`${kind}\0${c}`) ?? c;
  };
  const rewriteSender = rewriteAs("S");
  const rewriteRecipient = rewriteAs("R");
  for (const h of input.headers) {
    const cls = headerClass(h.name);
    if (cls) {
      seen.add(cls.name);
      if (cls.resent) resent = true;
      if (cls.name === "Received") out.receivedCount++;
      if (cls.name === "Message-Id") out.logs.push(`message-id=${fromLatin1(valueOf(h.text))}`);
      if (cls.name === "Resent-Message-Id") out.logs.push(`resent-message-id=${fromLatin1(valueOf(h.text))}`);
    }
    if (settings.dropHeaders.has(h.name.toLowerCase())) continue;
    if (rewriting && (cls?.sender || cls?.recipient)) out.lines.push(rewriteAddressHeader(h.text, cls.sender ? rewriteSender : rewriteRecipient, settings.headerAddressTokenLimit).text);
    else out.lines.push(h.text);
  }

  if (!rewriting && !settings.alwaysAddMissingHeaders) {
    if (!seen.has("Message-Id")) out.logs.push("message-id=<>");
    return out;
  }
  const prefix = resent ? "Resent-" : "";
  if (!seen.has(`${prefix}Message-Id`)) {
    const id = `<${messageIdStamp(input.now)}.${input.queueId}@${settings.myhostname}>`;
    out.lines.push(toLatin1(`${prefix}Message-Id: ${id}`));
    out.logs.push(`${resent ? "resent-" : ""}message-id=${id}`);
    seen.add(`${prefix}Message-Id`);
  }
  if (!seen.has("Message-Id")) out.logs.push("message-id=<>");
  if (!seen.has(`${prefix}Date`)) out.lines.push(`${prefix}Date: ${mailDate(input.arrival)}`);
  if (!seen.has(`${prefix}From`)) {
    let from = "MAILER-DAEMON";
    if (input.sender !== "") {
      const address = externalizeAddress(input.sender);
      const name = input.fullName ? formatDisplayName(input.fullName) : "";
      from = name ? `${name} <${address}>` : address;
    }
    out.lines.push(toLatin1(`${prefix}From: ${from}`));
  }
  const visible = ["To", "Cc", "Resent-To", "Resent-Cc"].some((n) => seen.has(n));
  const undisclosed = settings.undisclosedRecipientsHeader;
  if (!visible && undisclosed) {
    if (headerNameLength(undisclosed) > 0) out.lines.push(toLatin1(undisclosed));
    else out.warnings.push(`bad undisclosed_recipients_header header text "${undisclosed}" -- need "headername: headervalue"`);
  }
  return out;
}
