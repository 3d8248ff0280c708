/**
 * The RFC 3461 DSN parameters as text: xtext (ENVID, ORCPT, AUTH), the
 * RFC 6533 forms of a utf-8 ORCPT, NOTIFY and ORCPT, parsed and validated.
 * smtpd reads them from MAIL FROM and RCPT TO; cleanup screens the same
 * values in a user's maildrop file; the SMTP client writes ENVID and ORCPT
 * with the same encoders: all ask here, so a value one accepts the others
 * accept too, and what one writes the others read back.
 *
 * xtext is over octets: text is encoded as its UTF-8 bytes, and decoded
 * octets must be UTF-8. An ORCPT is kept decoded ("type;address"), as
 * Postfix keeps it; a utf-8 one goes out as utf-8-addr-xtext (7-bit,
 * \x{HEX} for everything else), as Postfix's smtp client writes it.
 *
 * Input is untrusted (an SMTP client's or a local user's); nothing here
 * trusts it beyond returning undefined for what is malformed.
 */

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

const hexDigit = (c: number) => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1);

/**
 * Decodes RFC 3461 xtext; undefined when malformed or when the octets are
 * not UTF-8. "+xx" in lower case is read too, as Postfix reads it.
 */
export function decodeXtext(text: string): string | undefined {
  const bytes = new Uint8Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2b) {
      const hi = hexDigit(text.charCodeAt(i + 1));
      const lo = hexDigit(text.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return undefined;
      bytes[n++] = (hi << 4) | lo;
      i += 2;
    } else if (c < 0x21 || c > 0x7e || c === 0x3d) return undefined;
    else bytes[n++] = c;
  }
  try {
    return strictUtf8.decode(bytes.subarray(0, n));
  } catch {
    return undefined;
  }
}

/** Encodes text as xtext: each UTF-8 octet outside "!".."~", and "+" and "=", as "+XX". */
export function encodeXtext(text: string): string {
  let out = "";
  for (const b of Buffer.from(text, "utf8")) {
    if (b < 0x21 || b > 0x7e || b === 0x2b || b === 0x3d) out += `+${b.toString(16).toUpperCase().padStart(2, "0")}`;
    else out += String.fromCharCode(b);
  }
  return out;
}

/**
 * Decodes an RFC 6533 utf-8-addr-xtext or utf-8-addr-unitext: "\x{HEX}" is
 * the character HEX, anything else but controls and space stands for
 * itself (raw UTF-8 is unitext; "+" and "=" pass, as Postfix lets them).
 * Undefined when malformed.
 */
export function decodeUtf8AddrText(text: string): string | undefined {
  let out = "";
  for (let i = 0; i < text.length; ) {
    if (text.startsWith("\\x{", i)) {
      const end = text.indexOf("}", i + 3);
      const hex = end < 0 ? "" : text.slice(i + 3, end);
      if (!/^[0-9A-Fa-f]{1,6}$/.test(hex)) return undefined;
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return undefined;
      out += String.fromCodePoint(cp);
      i = end + 1;
    } else {
      const cp = text.codePointAt(i)!;
      if (cp < 0x21 || cp === 0x7f || (cp >= 0xd800 && cp <= 0xdfff)) return undefined;
      out += String.fromCodePoint(cp);
      i += cp > 0xffff ? 2 : 1;
    }
  }
  return out;
}

/** Encodes an address as RFC 6533 utf-8-addr-xtext: printable ASCII but "\", "+" and "=" as is, every other character as "\x{HEX}". */
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
 */
export function encodeOrcpt(orcpt: string): string {
  const semi = orcpt.indexOf(";");
  if (semi < 0) return encodeXtext(orcpt);
  const type = orcpt.slice(0, semi);
  const address = orcpt.slice(semi + 1);
  return `${encodeXtext(type)};${isUtf8Type(type) ? encodeUtf8AddrXtext(address) : encodeXtext(address)}`;
}

export type NotifyWord = "NEVER" | "SUCCESS" | "FAILURE" | "DELAY";

/** NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY; undefined when malformed. */
export function parseNotify(value: string): NotifyWord[] | undefined {
  const words = value.toUpperCase().split(",");
  if (words.some((w) => !["NEVER", "SUCCESS", "FAILURE", "DELAY"].includes(w))) return undefined;
  if (new Set(words).size !== words.length) return undefined;
  if (words.includes("NEVER") && words.length > 1) return undefined;
  return words as NotifyWord[];
}

/** ORCPT=addr-type;xtext (utf-8;utf-8-addr-xtext), decoded to "rfc822;user@domain"; undefined when malformed. */
export function parseOrcpt(value: string): string | undefined {
  const semi = value.indexOf(";");
  if (semi <= 0) return undefined;
  const type = value.slice(0, semi);
  if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(type)) return undefined;
  const raw = value.slice(semi + 1);
  // RFC 6533: a utf-8 address is utf-8-addr-xtext or -unitext, not xtext (Postfix's smtpd reads it so)
  const decoded = isUtf8Type(type) ? decodeUtf8AddrText(raw) : decodeXtext(raw);
  if (decoded === undefined || decoded === "" || /[\x00-\x1f\x7f]/.test(decoded) || decoded.length > 500) return undefined;
  return `${type.toLowerCase() === "rfc822" ? "rfc822" : type};${decoded}`;
}
