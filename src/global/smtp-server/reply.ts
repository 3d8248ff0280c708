/**
 * SMTP server replies: a three-digit code, an optional enhanced status code
 * (RFC 3463) and text, possibly several lines. Replies carry Postfix's words;
 * the engine and the restriction checks build them here and nowhere else.
 *
 * Text that came from a client (an address in "<x>: Relay access denied") is
 * made printable before it goes into a reply or the log.
 */
import { printable as utilPrintable } from "../../util/printable.ts";

export interface SmtpReply {
  code: number;
  /** Enhanced status code, e.g. "5.7.1"; absent for replies Postfix sends without one. */
  dsn?: string;
  /** One entry per line. */
  lines: string[];
}

export function reply(code: number, dsn: string | undefined, ...lines: string[]): SmtpReply {
  return dsn === undefined ? { code, lines } : { code, dsn, lines };
}

/** "554 5.7.1 text" (the first line), as the log shows a reply. */
export function replyLogText(r: SmtpReply): string {
  return `${r.code}${r.dsn ? ` ${r.dsn}` : ""} ${r.lines[0] ?? ""}`.trimEnd();
}

/** The wire form: "250-a\r\n250 b\r\n"; the enhanced code goes on every line, as Postfix does. */
export function formatReply(r: SmtpReply): string {
  const lines = r.lines.length ? r.lines : [""];
  return lines
    .map((text, i) => {
      const sep = i < lines.length - 1 ? "-" : " ";
      const line = `${r.code}${sep}${r.dsn ? `${r.dsn} ` : ""}${text}`;
      // an empty SASL challenge is "334 " (RFC 4954); elsewhere no trailing blanks
      return (r.code === 334 ? line : line.trimEnd()) + "\r\n";
    })
    .join("");
}

/** Client text made safe for replies and log lines: controls and non-ASCII bytes become "?" (src/util/printable.ts). */
export function printable(text: string, allowUtf8 = false): string {
  return utilPrintable(text, allowUtf8);
}

/**
 * Parses a reply written in a table or restriction ("554 5.7.1 text",
 * "450 text", "5.7.1 text" with a default code). Returns undefined when the
 * text does not start with a 4xx/5xx code.
 */
export function parseReplyText(text: string): { code: number; dsn?: string; text: string } | undefined {
  const m = /^([45]\d\d)(?:[ -]+([45]\.\d{1,3}\.\d{1,3}))?(?:\s+(.*))?$/s.exec(text.trim());
  if (!m) return undefined;
  return { code: Number(m[1]), ...(m[2] ? { dsn: m[2] } : {}), text: m[3] ?? "" };
}

/** Enhanced code for a reply code when the text has none: x.7.1 for policy, as Postfix's access maps. */
export function defaultDsn(code: number, detail = "7.1"): string {
  return `${String(code)[0]}.${detail}`;
}

/** Fixes an enhanced code's class to agree with the reply code (a 4xx reply with a 5.x.x code and back). */
export function alignDsn(code: number, dsn: string): string {
  return `${String(code)[0]}${dsn.slice(1)}`;
}
