/**
 * The RFC 3461 DSN parameters as text: xtext (ENVID, ORCPT, AUTH), the
 * RFC 6533 forms of a utf-8 ORCPT, NOTIFY and ORCPT, parsed and validated.
 * smtpd reads them from MAIL FROM and RCPT TO; cleanup screens the same
 * values in a user's maildrop file; the SMTP client writes ENVID and ORCPT
 * with the same encoders: all ask here, so a value one accepts the others
 * accept too, and what one writes the others read back.
 *
 * Decoding accepts what Postfix's xtext_unquote and uxtext_unquote accept:
 * only a "+" must be followed by two hex digits (either case) and only
 * "\x{" must open a hex code point up to U+10FFFF; any other octet, "=",
 * "\" and raw non-ASCII included, stands for itself. The result is octets:
 * those that form UTF-8 are kept as their characters, any other octet as
 * the lone surrogate U+DC80..U+DCFF (as Python's surrogateescape), so an
 * ORCPT that is not UTF-8 is kept, queued (escape.ts writes lone surrogates
 * as %uXXXX) and relayed with its very octets. What each parameter then
 * allows (ENVID printable ASCII or TAB, no NUL) is for the caller.
 *
 * Encoding writes only valid xtext (RFC 3461 section 4: "!".."~" but "+"
 * and "=", else "+XX") or 7-bit utf-8-addr-xtext (RFC 6533: "\x{HEX}" for
 * everything else and for "\", "+", "="), as Postfix's smtp client does.
 *
 * Input is untrusted (an SMTP client's or a local user's); nothing here
 * trusts it beyond returning undefined for what is malformed.
 */

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

const hexDigit = (c: number) => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1);

/** The length of the well-formed UTF-8 character at bytes[i] (RFC 3629: no overlong form, no surrogate, at most U+10FFFF), or 0. */
function utf8CharLength(bytes: Uint8Array, i: number, end: number): number {
  const b = bytes[i]!;
  if (b < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < end && bytes[i + k]! >= lo && bytes[i + k]! <= hi;
  if (b >= 0xc2 && b <= 0xdf) return cont(1) ? 2 : 0;
  if (b >= 0xe0 && b <= 0xef) {
    const lo = b === 0xe0 ? 0xa0 : 0x80;
    const hi = b === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b >= 0xf0 && b <= 0xf4) {
    const lo = b === 0xf0 ? 0x90 : 0x80;
    const hi = b === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/** Octets as text: each UTF-8 character as itself, each other octet as U+DC80..U+DCFF. */
export function octetsToText(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    // not UTF-8 throughout: character by character below
  }
  let out = "";
  for (let i = 0; i < bytes.length; ) {
    const n = utf8CharLength(bytes, i, bytes.length);
    if (n === 0) {
      out += String.fromCharCode(0xdc00 | bytes[i]!);
      i += 1;
    } else {
      out += Buffer.from(bytes.buffer, bytes.byteOffset + i, n).toString("utf8");
      i += n;
    }
  }
  return out;
}

const isEscapedOctet = (code: number) => code >= 0xdc80 && code <= 0xdcff;

/** Text as octets, the inverse of octetsToText: U+DC80..U+DCFF alone is its octet, anything else its UTF-8 (another lone surrogate as U+FFFD's). */
export function textToOctets(text: string): Uint8Array {
  if (!/[\ud800-\udfff]/.test(text)) return Buffer.from(text, "utf8");
  const parts: number[] = [];
  for (const ch of text) {
    const code = ch.charCodeAt(0);
    if (ch.length === 1 && isEscapedOctet(code)) parts.push(code & 0xff);
    else for (const b of Buffer.from(ch, "utf8")) parts.push(b);
  }
  return Uint8Array.from(parts);
}

/** Decodes RFC 3461 xtext as Postfix's xtext_unquote: undefined only for a "+" without two hex digits. */
export function decodeXtext(text: string): string | undefined {
  // the text is what the client sent (UTF-8 text); its octets are what Postfix reads
  const raw = Buffer.from(text, "utf8");
  const bytes = new Uint8Array(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === 0x2b) {
      const hi = i + 1 < raw.length ? hexDigit(raw[i + 1]!) : -1;
      const lo = i + 2 < raw.length ? hexDigit(raw[i + 2]!) : -1;
      if (hi < 0 || lo < 0) return undefined;
      bytes[n++] = (hi << 4) | lo;
      i += 2;
    } else bytes[n++] = c;
  }
  return octetsToText(bytes.subarray(0, n));
}

const XTEXT_AS_IS = /^[\x21-\x2a\x2c-\x3c\x3e-\x7e]*$/;

/** Encodes text as xtext: each octet (textToOctets) outside "!".."~", and "+" and "=", as "+XX". */
export function encodeXtext(text: string): string {
  // the common case, an ASCII address without "+" or "=", is its own xtext
  if (XTEXT_AS_IS.test(text)) return text;
  let out = "";
  for (const b of textToOctets(text)) {
    if (b < 0x21 || b > 0x7e || b === 0x2b || b === 0x3d) out += `+${b.toString(16).toUpperCase().padStart(2, "0")}`;
    else out += String.fromCharCode(b);
  }
  return out;
}

/**
 * Decodes an RFC 6533 utf-8-addr-xtext or utf-8-addr-unitext as Postfix's
 * uxtext_unquote: "\x{HEX}" is the code point HEX (at most U+10FFFF, a
 * surrogate kept alone), anything else stands for itself. Undefined for a
 * "\x{" without hex digits and "}" or beyond U+10FFFF.
 */
export function decodeUtf8AddrText(text: string): string | undefined {
  let out = "";
  for (let i = 0; i < text.length; ) {
    if (text.startsWith("\\x{", i)) {
      let cp = 0;
      let j = i + 3;
      for (; j < text.length && text[j] !== "}"; j++) {
        const d = hexDigit(text.charCodeAt(j));
        if (d < 0) return undefined;
        cp = cp * 16 + d;
        if (cp > 0x10ffff) return undefined;
      }
      if (j >= text.length) return undefined;
      // "\x{}" is NUL, as in Postfix; the caller refuses it
      out += cp >= 0xd800 && cp <= 0xdfff ? String.fromCharCode(cp) : String.fromCodePoint(cp);
      i = j + 1;
    } else {
      out += text[i];
      i += 1;
    }
  }
  return out;
}

/** Encodes an address as RFC 6533 utf-8-addr-xtext: printable ASCII but "\", "+" and "=" as is, every other code point (a lone surrogate too) as "\x{HEX}". */
export function encodeUtf8AddrXtext(address: string): string {
  let out = "";
  for (const ch of address) {
    const cp = ch.codePointAt(0)!;
    if (cp > 0x20 && cp < 0x7f && ch !== "\\" && ch !== "+" && ch !== "=") out += ch;
    else out += `\\x{${cp.toString(16).toUpperCase().padStart(2, "0")}}`;
  }
  return out;
}

const isUtf8Type = (type: string) => type.toLowerCase() === "utf-8";

/**
 * The ORCPT parameter for a kept "type;address": a utf-8 address as
 * utf-8-addr-xtext (RFC 6533, safe whether or not the server speaks
 * SMTPUTF8), any other as xtext (RFC 3461), as Postfix's smtp client
 * writes them.
 *
 * A postern older than session 6 queued a utf-8 ORCPT undecoded (its
 * "\x{HEX}" as received); it is decoded here first, so it goes out as it
 * came in rather than with its "\" escaped. XXX: a decoded address that
 * holds a literal "\x{HEX}" (sent as "\x{5C}x{HEX}") is read the same way.
 */
export function encodeOrcpt(orcpt: string): string {
  const semi = orcpt.indexOf(";");
  if (semi < 0) return encodeXtext(orcpt);
  const type = orcpt.slice(0, semi);
  const address = orcpt.slice(semi + 1);
  if (!isUtf8Type(type)) return `${encodeXtext(type)};${encodeXtext(address)}`;
  const older = decodeUtf8AddrText(address);
  return `${encodeXtext(type)};${encodeUtf8AddrXtext(older !== undefined && !older.includes("\0") ? older : address)}`;
}

export type NotifyWord = "NEVER" | "SUCCESS" | "FAILURE" | "DELAY";

/**
 * NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY, as Postfix's
 * dsn_notify_mask reads it: any case, words apart by commas or blanks, a
 * word given twice counted once; undefined for an unknown word, no word, or
 * NEVER with another.
 */
export function parseNotify(value: string): NotifyWord[] | undefined {
  const words: NotifyWord[] = [];
  for (const w of value.toUpperCase().split(/[,\s]+/)) {
    if (w === "") continue;
    if (w !== "NEVER" && w !== "SUCCESS" && w !== "FAILURE" && w !== "DELAY") return undefined;
    if (!words.includes(w)) words.push(w);
  }
  if (words.length === 0 || (words.includes("NEVER") && words.length > 1)) return undefined;
  return words;
}

/** The longest ORCPT address kept, decoded (Postfix's bound is the command line; ours is tighter). */
export const ORCPT_ADDRESS_MAX = 500;

/**
 * ORCPT=addr-type;text as Postfix's smtpd reads it: any non-empty type
 * (kept as written, "rfc822" in lower case), the address after the first
 * ";" decoded as utf-8-addr-xtext/-unitext when the type is utf-8, as
 * xtext otherwise; refused when that fails, when the address holds a NUL
 * or is longer than ORCPT_ADDRESS_MAX. Decoded, "rfc822;user@domain".
 */
export function parseOrcpt(value: string): string | undefined {
  const semi = value.indexOf(";");
  if (semi <= 0) return undefined;
  const type = value.slice(0, semi);
  const raw = value.slice(semi + 1);
  const decoded = isUtf8Type(type) ? decodeUtf8AddrText(raw) : decodeXtext(raw);
  if (decoded === undefined || decoded.includes("\0") || decoded.length > ORCPT_ADDRESS_MAX) return undefined;
  return `${type.toLowerCase() === "rfc822" ? "rfc822" : type};${decoded}`;
}

/** An ENVID as Postfix's smtpd and cleanup allow it once decoded: printable ASCII or TAB, not empty (all_isprint_tab), at most 100 characters (RFC 3461 section 4.4). */
export function validEnvid(envid: string): boolean {
  return envid.length > 0 && envid.length <= 100 && /^[\t\x20-\x7e]*$/.test(envid);
}
