/**
 * Postfix's printable(): every character that is not printable ASCII becomes
 * "?" (control characters, DEL, and non-ASCII unless UTF-8 is allowed), so
 * text from the network, a user or a queue file can go into a reply, a log
 * line or an error message without carrying control sequences.
 *
 * No mail knowledge; trusts nothing it is given.
 */
export function printable(text: string, allowUtf8 = false): string {
  let out = "";
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (c < 0x20 || c === 0x7f) out += "?";
    else if (c > 0x7e && (!allowUtf8 || (c >= 0x80 && c <= 0x9f))) out += "?";
    else out += ch;
  }
  return out;
}
