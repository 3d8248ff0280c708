/**
 * Between the internal (unquoted) form of an address, which the queue file
 * and the envelope hold (`a b@example.com`), and the external form a header
 * or an SMTP command needs (`"a b"@example.com`). Also the quoting of a
 * display name for a generated From: header.
 *
 * Postfix's rules: the address splits at its last `@`; only the local part
 * is ever quoted, when it is empty or holds blanks, controls, specials or
 * dots in the wrong places; 8-bit characters are left alone (SMTPUTF8).
 */

const LOCAL_SPECIALS = new Set([..."()<>@,;:\\\".[]"]);

export interface AddressParts {
  local: string;
  /** "" when the address has no `@`. */
  domain: string;
}

/** Splits at the last `@` (a quoted local part may hold `@` itself). */
export function splitAddress(address: string): AddressParts {
  const at = address.lastIndexOf("@");
  return at < 0 ? { local: address, domain: "" } : { local: address.slice(0, at), domain: address.slice(at + 1) };
}

/** True when the address carries a domain part (Postfix's "qualified"): `user@` counts, as it does for Postfix. */
export function isQualified(address: string): boolean {
  return address.includes("@");
}

/** Does this local part need quotes to be a valid RFC 5322 dot-atom? */
export function localPartNeedsQuotes(local: string): boolean {
  if (local === "") return true;
  if (local.startsWith(".") || local.endsWith(".") || local.includes("..")) return true;
  for (const c of local) {
    const code = c.charCodeAt(0);
    if (code <= 32 || code === 127) return true;
    if (c !== "." && LOCAL_SPECIALS.has(c)) return true;
  }
  return false;
}

export function quoteLocalPart(local: string): string {
  if (!localPartNeedsQuotes(local)) return local;
  return `"${local.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** The external form of an internal address: the local part quoted when needed, the domain as it is. */
export function externalizeAddress(address: string): string {
  const { local, domain } = splitAddress(address);
  return address.includes("@") ? `${quoteLocalPart(local)}@${domain}` : quoteLocalPart(local);
}

const PHRASE_SPECIALS = /[()<>@,;:\\".[\]]/;

/**
 * A display name for a generated header, as Postfix writes the full name in
 * `From: Full Name <user@domain>`: blanks collapsed, and the whole name in
 * quotes (with `"` and `\` escaped) when it holds a special character.
 */
export function formatDisplayName(name: string): string {
  // a name is one line of text: line breaks and other controls would forge headers
  const collapsed = name
    .replace(/[\x00-\x1f\x7f]+/g, " ")
    .replace(/ +/g, " ")
    .trim();
  if (!PHRASE_SPECIALS.test(collapsed)) return collapsed;
  return `"${collapsed.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}
