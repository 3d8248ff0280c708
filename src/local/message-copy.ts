/**
 * The bytes local delivery writes: the envelope lines Postfix's mail_copy()
 * prepends (the mbox `From sender  date` separator, Return-Path:,
 * X-Original-To:, Delivered-To:), the message with `>From ` quoting for
 * mbox files, a final newline when the message lacks one, and the blank
 * line that ends an mbox entry.
 *
 * Runs in the local delivery agent (prefixes) and in its workers (bodies).
 * The message content is untrusted and copied byte for byte, apart from the
 * quoting.
 */

import { asctime as asctimeSeconds } from "../util/asctime.ts";
import { mailDate } from "../global/message/mail-date.ts";

/** asctime(3) in local time, without its newline: `Sat Nov 21 06:26:45 2026`. */
export function asctime(d: Date): string {
  return asctimeSeconds(Math.floor(d.getTime() / 1000));
}

/** RFC 5322 dates (Postfix's mail_date) come from the shared module. */
export { mailDate };

const LOCAL_SPECIALS = /[\x00-\x20()<>@,;:\\".[\]\x7f]/;

/**
 * Postfix's quote_822_local: the local part is quoted when it holds
 * characters that an RFC 822 atom cannot (a dot-atom stays as it is).
 */
export function quoteLocalPart(address: string): string {
  const at = address.lastIndexOf("@");
  const local = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? "" : address.slice(at);
  const needs = local === "" ? false : local.split(".").some((part) => part === "" || LOCAL_SPECIALS.test(part));
  if (!needs) return address;
  return `"${local.replace(/["\\]/g, (c) => `\\${c}`)}"${domain}`;
}

export interface EnvelopeLines {
  /** Prepend the `From sender  date` line (mbox files and commands). */
  fromLine: boolean;
  /** Envelope sender for From_ and Return-Path:; "" is the null sender. */
  sender: string;
  returnPath: boolean;
  /** X-Original-To: value, or undefined/"" for none. */
  originalTo?: string;
  /** Delivered-To: value, or undefined for none. */
  deliveredTo?: string;
  now?: Date;
}

/** The lines that go before the message. */
export function envelopePrefix(e: EnvelopeLines): string {
  let out = "";
  const sender = quoteLocalPart(e.sender);
  if (e.fromLine) out += `From ${e.sender === "" ? "MAILER-DAEMON" : sender}  ${asctime(e.now ?? new Date())}\n`;
  if (e.returnPath) out += `Return-Path: <${e.sender === "" ? "" : sender}>\n`;
  if (e.originalTo) out += `X-Original-To: ${quoteLocalPart(e.originalTo)}\n`;
  if (e.deliveredTo !== undefined) out += `Delivered-To: ${quoteLocalPart(e.deliveredTo)}\n`;
  return out;
}

const FROM_ = [0x46, 0x72, 0x6f, 0x6d, 0x20]; // "From "

function startsWithFrom(content: Uint8Array, at: number): boolean {
  if (at + 5 > content.length) return false;
  for (let i = 0; i < 5; i++) if (content[at + i] !== FROM_[i]) return false;
  return true;
}

export interface BodyOptions {
  /** Prefix lines beginning with "From " with ">" (mbox). */
  quote: boolean;
  /** Append an empty line (the end of an mbox entry). */
  blank: boolean;
  /** Prefix lines beginning with "." with another "." (pipe(8) flag `.`). */
  dot?: boolean;
}

/**
 * prefix + content (quoted as asked) + a newline if the content does not end
 * with one + the optional blank line.
 */
export function formatDelivery(prefix: string, content: Uint8Array, opts: BodyOptions): Uint8Array {
  const head = Buffer.from(prefix, "utf8");
  const mark = (at: number): number => (opts.quote && startsWithFrom(content, at) ? 0x3e : opts.dot && content[at] === 0x2e ? 0x2e : 0); // '>' or '.'
  // count the lines that need a mark so the output is allocated once
  let quotes = 0;
  if (opts.quote || opts.dot) {
    for (let i = 0; i < content.length; i = content.indexOf(10, i) + 1 || content.length) {
      if (mark(i)) quotes++;
    }
  }
  const needsNewline = content.length > 0 && content[content.length - 1] !== 10;
  const out = new Uint8Array(head.length + content.length + quotes + (needsNewline ? 1 : 0) + (opts.blank ? 1 : 0));
  out.set(head, 0);
  let o = head.length;
  if (quotes === 0) {
    out.set(content, o);
    o += content.length;
  } else {
    let i = 0;
    while (i < content.length) {
      const nl = content.indexOf(10, i);
      const end = nl < 0 ? content.length : nl + 1;
      const m = mark(i);
      if (m) out[o++] = m;
      out.set(content.subarray(i, end), o);
      o += end - i;
      i = end;
    }
  }
  if (needsNewline) out[o++] = 10;
  if (opts.blank) out[o++] = 10;
  return out;
}

/** Lower-cased Delivered-To: values of the message header (Postfix's loop detection). */
export function deliveredToAddresses(content: Uint8Array): Set<string> {
  const out = new Set<string>();
  const text = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  let i = 0;
  while (i < text.length) {
    const nl = text.indexOf(10, i);
    const end = nl < 0 ? text.length : nl;
    const line = text.toString("latin1", i, end).replace(/\r$/, "");
    if (line === "") break; // end of the header
    if (line[0] !== " " && line[0] !== "\t") {
      const colon = line.indexOf(":");
      if (colon <= 0 || !/^[!-9;-~]+$/.test(line.slice(0, colon).trimEnd())) break; // not a header: the body started
      if (line.slice(0, colon).trimEnd().toLowerCase() === "delivered-to") {
        out.add(Buffer.from(line.slice(colon + 1).trim(), "latin1").toString("utf8").toLowerCase());
      }
    }
    i = end + 1;
  }
  return out;
}

