/**
 * Which Authentication-Results: headers claim to come from this host: RFC
 * 8601 section 5 asks a server that adds its own to remove those first,
 * since a sender could otherwise forge a "pass" from the receiving host.
 * The authserv-id is the value's first item (a token or a quoted string,
 * after comments and white space), compared without regard to case.
 *
 * Pure; the header is untrusted (comments are skipped with a bound on
 * their nesting).
 */
import type { HeaderField } from "../global/message/header-split.ts";

/** The authserv-id of an Authentication-Results value, or undefined when it has none. */
export function authservId(value: string): string | undefined {
  let i = 0;
  const skipCfws = () => {
    for (;;) {
      while (i < value.length && /[ \t\r\n]/.test(value[i]!)) i++;
      if (value[i] !== "(") return;
      let depth = 0;
      for (; i < value.length; i++) {
        const c = value[i]!;
        if (c === "\\") i++;
        else if (c === "(") {
          if (++depth > 20) return;
        } else if (c === ")" && --depth === 0) {
          i++;
          break;
        }
      }
    }
  };
  skipCfws();
  if (value[i] === '"') {
    let out = "";
    for (i++; i < value.length && value[i] !== '"'; i++) out += value[i] === "\\" ? (value[++i] ?? "") : value[i];
    return out || undefined;
  }
  const m = /^[^\s;()"]+/.exec(value.slice(i));
  return m ? m[0] : undefined;
}

export function claimsAuthservId(header: HeaderField, id: string): boolean {
  if (header.name.toLowerCase() !== "authentication-results") return false;
  const claimed = authservId(header.text.slice(header.text.indexOf(":") + 1));
  return claimed !== undefined && claimed.toLowerCase() === id.toLowerCase();
}
