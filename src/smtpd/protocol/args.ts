/**
 * The arguments of MAIL FROM and RCPT TO: the path (`<user@domain>`, `<>`,
 * a source route `<@a,@b:user@domain>`, or, unless strict_rfc821_envelopes,
 * a bare `user@domain`) and the ESMTP parameters after it (RFC 1870 SIZE,
 * RFC 6152 BODY, RFC 6531 SMTPUTF8, RFC 4954 AUTH, RFC 3461 ENVID, RET,
 * NOTIFY and ORCPT), with xtext decoding.
 *
 * Addresses come back in internal form (quotes removed: `a b@example.com`)
 * and as written (for log lines: `"a b"@example.com`). A route is dropped,
 * as Postfix's resolver does; whether the address "routes" through another
 * host (`@`, `%` or `!` in the local part) is for the relay checks to decide.
 *
 * Input is untrusted command text, decoded as UTF-8 (input.ts refuses a
 * line that is not valid UTF-8), so an address keeps its characters from
 * the wire to the queue file and the next hop.
 */

export interface ParsedPath {
  /** Internal form; "" for `<>`. */
  address: string;
  /** As written between the brackets, without a source route. */
  written: string;
  /** The text after the path: the ESMTP parameters. */
  rest: string;
  /** The address holds non-ASCII characters (needs SMTPUTF8). */
  eightBit: boolean;
}

export type PathError = "syntax" | "address";

/** Splits a mailbox at its last unquoted "@" and removes the quotes: the internal form, or undefined when malformed. */
function internalMailbox(text: string): string | undefined {
  let local = "";
  let i = 0;
  let quoted = false;
  let lastAt = -1;
  const out: string[] = [];
  for (; i < text.length; i++) {
    const c = text[i]!;
    const code = c.charCodeAt(0);
    if (code < 32 || code === 127) return undefined;
    if (c === "\\" && quoted) {
      if (i + 1 >= text.length) return undefined;
      out.push(text[++i]!);
      continue;
    }
    if (c === '"') {
      quoted = !quoted;
      continue;
    }
    if (!quoted) {
      if (c === " " || c === "<" || c === ">" || c === "," || c === "(" || c === ")" || c === ";") return undefined;
      if (c === "@") lastAt = out.length;
    }
    out.push(c);
  }
  if (quoted) return undefined;
  local = out.join("");
  if (lastAt >= 0) {
    const domain = local.slice(lastAt + 1);
    // a domain is a name or an address literal; no quotes, blanks or brackets inside a name
    if (domain.startsWith("[")) {
      if (!/^\[[^[\]\\]*\]$/.test(domain)) return undefined;
    } else if (/[[\]"\\]/.test(domain)) return undefined;
  }
  return local;
}

/** Removes a source route "@a,@b:" in front of a mailbox. */
function stripRoute(text: string): string | undefined {
  if (!text.startsWith("@")) return text;
  const colon = text.indexOf(":");
  if (colon < 0) return undefined;
  if (!/^@[^,:@\s]+(,@[^,:@\s]+)*$/.test(text.slice(0, colon))) return undefined;
  return text.slice(colon + 1);
}

/**
 * Parses the text after "FROM:" or "TO:". `allowEmpty` admits `<>` (the null
 * sender). Returns the path or what is wrong: "syntax" when there is no path
 * at all, "address" when the address is malformed.
 */
export function parsePath(text: string, opts: { strict: boolean; allowEmpty: boolean }): ParsedPath | PathError {
  const s = text.replace(/^[ \t]+/, "");
  if (s === "") return "syntax";
  let inside: string;
  let rest: string;
  if (s.startsWith("<")) {
    // the closing bracket, skipping quoted text
    let quoted = false;
    let close = -1;
    for (let i = 1; i < s.length; i++) {
      const c = s[i]!;
      if (c === "\\" && quoted) {
        i++;
        continue;
      }
      if (c === '"') quoted = !quoted;
      else if (c === ">" && !quoted) {
        close = i;
        break;
      }
    }
    if (close < 0) return "address";
    inside = s.slice(1, close);
    rest = s.slice(close + 1);
    if (rest !== "" && !/^[ \t]/.test(rest)) return "address";
  } else {
    if (opts.strict) return "address";
    const sp = s.search(/[ \t]/);
    inside = sp < 0 ? s : s.slice(0, sp);
    rest = sp < 0 ? "" : s.slice(sp);
  }
  rest = rest.trim();
  if (inside === "") {
    if (!opts.allowEmpty) return "address";
    return { address: "", written: "", rest, eightBit: false };
  }
  const route = stripRoute(inside);
  if (route === undefined || route === "") return "address";
  const address = internalMailbox(route);
  if (address === undefined || address === "") return "address";
  // eslint-disable-next-line no-control-regex
  return { address, written: route, rest, eightBit: /[^\x00-\x7f]/.test(route) };
}

/** ESMTP parameters: KEY[=VALUE] words; keys upper-cased; the original word kept for error replies. */
export interface EsmtpParam {
  key: string;
  value: string | undefined;
  word: string;
}

export function splitParams(rest: string): EsmtpParam[] {
  return rest
    .split(/[ \t]+/)
    .filter(Boolean)
    .map((word) => {
      const eq = word.indexOf("=");
      return eq < 0 ? { key: word.toUpperCase(), value: undefined, word } : { key: word.slice(0, eq).toUpperCase(), value: word.slice(eq + 1), word };
    });
}

