/**
 * The RFC 3461 DSN parameters as text: xtext (ENVID, ORCPT), NOTIFY and
 * ORCPT, parsed and validated. smtpd reads them from MAIL FROM and RCPT TO;
 * cleanup screens the same values in a user's maildrop file; both ask here,
 * so a value one accepts the other accepts too.
 *
 * Input is untrusted (an SMTP client's or a local user's); nothing here
 * trusts it beyond returning undefined for what is malformed.
 */

/** Decodes RFC 3461 xtext; undefined when malformed. */
export function decodeXtext(text: string): string | undefined {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2b) {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
      out += String.fromCharCode(parseInt(hex, 16));
      i += 2;
    } else if (c < 33 || c > 126 || c === 0x3d) return undefined;
    else out += text[i];
  }
  return out;
}

/** Encodes text as xtext (for writing ORCPT and ENVID back out). */
export function encodeXtext(text: string): string {
  let out = "";
  for (const ch of text) {
    const c = ch.charCodeAt(0);
    if (c < 33 || c > 126 || ch === "+" || ch === "=") out += `+${c.toString(16).toUpperCase().padStart(2, "0")}`;
    else out += ch;
  }
  return out;
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

/** ORCPT=addr-type;xtext, decoded to "rfc822;user@domain"; undefined when malformed. */
export function parseOrcpt(value: string): string | undefined {
  const semi = value.indexOf(";");
  if (semi <= 0) return undefined;
  const type = value.slice(0, semi);
  if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(type)) return undefined;
  const raw = value.slice(semi + 1);
  // RFC 6533 utf-8 addresses use \x{HEX} escapes instead of xtext; keep them as written
  const decoded = type.toLowerCase() === "utf-8" ? raw : decodeXtext(raw);
  if (decoded === undefined || decoded === "" || /[\x00-\x1f\x7f]/.test(decoded) || decoded.length > 500) return undefined;
  return `${type.toLowerCase() === "rfc822" ? "rfc822" : type};${decoded}`;
}
