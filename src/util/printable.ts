/**
 * Postfix's printable(): every character that a terminal or a log reader
 * could take for something other than text becomes a replacement ("?").
 *
 * Printable are ASCII 0x20-0x7e and, when UTF-8 is enabled (Postfix:
 * util_utf8_enable, set from smtputf8_enable), every other Unicode scalar
 * value. Replaced are the ASCII controls (NUL-US, DEL; CR, LF and TAB too),
 * lone surrogates and U+FFFD (what an undecodable byte was decoded to: Postfix
 * replaces an invalid UTF-8 byte), and with UTF-8 disabled everything beyond
 * ASCII. One deliberate difference: the C1 controls U+0080-U+009F are
 * replaced even with UTF-8 enabled (Postfix passes them as valid UTF-8);
 * some terminals act on U+009B as on ESC [, and a latin1-decoded stray byte
 * 0x9b would otherwise reach the log as that character.
 *
 * Used by every role for log lines and by the servers for text that came
 * from the network; the input is untrusted, the output is one line.
 */

/** Anything outside ASCII 0x20-0x7e: the slow path looks closer. */
const SUSPECT = /[^\x20-\x7e]/;

export function printable(text: string, utf8 = false, replacement = "?"): string {
  if (!SUSPECT.test(text)) return text;
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e) {
      out += text[i];
      continue;
    }
    if (!utf8 || c < 0xa0 || c === 0xfffd) {
      out += replacement;
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += text.slice(i, i + 2);
        i++;
      } else out += replacement;
      continue;
    }
    if (c >= 0xdc00 && c <= 0xdfff) out += replacement;
    else out += text[i];
  }
  return out;
}
