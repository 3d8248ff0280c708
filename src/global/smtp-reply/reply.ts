/**
 * SMTP replies as a client reads them (RFC 5321 4.2): one or more lines
 * `ddd-text` ending with `ddd text` (or a bare `ddd`), the enhanced status
 * code of RFC 3463 when the first line carries one, and the one-line text
 * Postfix logs (the lines, codes included, joined by spaces).
 *
 * Used by the SMTP and LMTP client; the server's replies are its own.
 * Distrusts the peer: a line that does not start with three digits, a
 * continuation line with another code, or a reply of more than
 * MAX_REPLY_LINES lines is a ReplySyntaxError, never a guess. What is kept
 * of a reply is bounded as Postfix's smtp_chat_resp() bounds it: each line
 * made printable ("?") and cut at REPLY_TEXT_LIMIT characters, and lines are
 * kept only while the text kept so far is shorter than REPLY_TEXT_LIMIT; the
 * rest is read and dropped. A reply therefore keeps at most about twice
 * REPLY_TEXT_LIMIT characters, however much the server sends, and so does
 * every defer reason, log line and bounce text made from it.
 */
import { printable } from "../../util/printable.ts";

export interface RemoteReply {
  code: number;
  /** Each line as received (made printable, cut at REPLY_TEXT_LIMIT), code included, without CRLF. */
  lines: string[];
  /** "2.1.0" when the first line's text starts with an enhanced status code. */
  enhanced?: string;
  /** Lines were cut or dropped at REPLY_TEXT_LIMIT. */
  truncated?: true;
}

export class ReplySyntaxError extends Error {
  constructor(readonly line: string) {
    super(`malformed SMTP reply line "${printable(line.slice(0, 100), true)}${line.length > 100 ? "..." : ""}"`);
    this.name = "ReplySyntaxError";
  }
}

/** A server that talks more than this in one reply is not a mail server (EHLO lists stay far below). */
export const MAX_REPLY_LINES = 1000;

/** The reply text kept: Postfix's line_length_limit default (2048), per line and for a whole reply. */
export const REPLY_TEXT_LIMIT = 2048;

const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)/;

/** Collects lines until a reply is complete. */
export class ReplyAssembler {
  #lines: string[] = [];
  #count = 0;
  #kept = 0;
  #truncated = false;
  #code = 0;

  /** Feeds one line (without CRLF); returns the reply when this line ended it. */
  push(line: string): RemoteReply | undefined {
    const m = /^([2-5]\d\d)([ -]|$)/.exec(line);
    if (!m) throw new ReplySyntaxError(line);
    const code = Number(m[1]);
    if (this.#count > 0 && code !== this.#code) throw new ReplySyntaxError(line);
    this.#code = code;
    this.#count++;
    if (this.#kept < REPLY_TEXT_LIMIT) {
      if (line.length > REPLY_TEXT_LIMIT) this.#truncated = true;
      const kept = printable(line.slice(0, REPLY_TEXT_LIMIT), true);
      this.#lines.push(kept);
      this.#kept += kept.length + 1;
    } else this.#truncated = true;
    if (m[2] === "-") {
      if (this.#count >= MAX_REPLY_LINES) throw new ReplySyntaxError(line);
      return undefined;
    }
    const lines = this.#lines;
    const truncated = this.#truncated;
    this.#lines = [];
    this.#count = 0;
    this.#kept = 0;
    this.#truncated = false;
    const reply = makeReply(code, lines);
    return truncated ? { ...reply, truncated: true } : reply;
  }

  /** Whether part of a reply has been read. */
  get pending(): boolean {
    return this.#count > 0;
  }
}

export function makeReply(code: number, lines: string[]): RemoteReply {
  const e = ENHANCED.exec((lines[0] ?? "").slice(4));
  // the enhanced code's class must agree with the reply code (RFC 3463 2)
  const enhanced = e && e[1] === String(code)[0] ? `${e[1]}.${Number(e[2])}.${Number(e[3])}` : undefined;
  return enhanced ? { code, lines, enhanced } : { code, lines };
}

/** Postfix's one-line form: every line, code included, joined by a space. */
export function replyText(reply: RemoteReply): string {
  return reply.lines.join(" ");
}

/** The text after the code of each line (EHLO keywords, SASL challenges). */
export function replyTexts(reply: RemoteReply): string[] {
  return reply.lines.map((l) => l.slice(4));
}

/** The enhanced status code, or the reply class with ".0.0" as Postfix assumes. */
export function replyDsn(reply: RemoteReply): string {
  return reply.enhanced ?? `${Math.floor(reply.code / 100)}.0.0`;
}

export function replyClass(reply: RemoteReply): number {
  return Math.floor(reply.code / 100);
}
