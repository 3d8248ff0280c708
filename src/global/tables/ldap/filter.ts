/**
 * LDAP search filters: the string form (RFC 4515) parsed into the BER form
 * of RFC 4511, and the escaping that keeps a lookup key a value inside a
 * filter or a DN. A filter without outer parentheses gets them, as
 * OpenLDAP's library adds them (`mail=%s` works like `(mail=%s)`).
 *
 * The filter text is the admin's query_filter after the key was put in with
 * escapeFilterValue(), so the key can never add filter syntax: `*`, `(`,
 * `)`, `\` and NUL in it arrive as \2a \28 \29 \5c \00, which this parser
 * turns back into value bytes. Extensible matches (`:=`) are refused.
 * Nesting is limited to 32 levels.
 */
import { BerError, constructed, octetString, TAG } from "./ber.ts";

const MAX_DEPTH = 32;

/** RFC 4515 (and Postfix's rfc2254_quote): `*`, `(`, `)`, `\` and NUL as \XX. */
export function escapeFilterValue(value: string): string {
  return value.replace(/[*()\\\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, "0").toUpperCase()}`);
}

/** Postfix's rfc2253_quote for a key inside a search base: white space, `"#+,;<>\` (and NUL) as \XX. */
export function escapeDnValue(value: string): string {
  return value.replace(/[ \t"#+,;<>\\\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, "0").toUpperCase()}`);
}

/** Filter value text with \XX escapes, as bytes. */
function unescapeValue(text: string): Buffer {
  const parts: Buffer[] = [];
  let literal = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== "\\") {
      literal += c;
      continue;
    }
    const hex = text.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new BerError(`bad escape in filter value "${text}"`);
    parts.push(Buffer.from(literal, "utf8"), Buffer.from([Number.parseInt(hex, 16)]));
    literal = "";
    i += 2;
  }
  parts.push(Buffer.from(literal, "utf8"));
  return Buffer.concat(parts);
}

const ATTRIBUTE = /^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)*)(?:;[A-Za-z0-9-]+)*$/;

class FilterParser {
  #pos = 0;
  constructor(readonly text: string) {}

  parse(): Buffer {
    const filter = this.#filter(0);
    if (this.#pos !== this.text.length) throw this.#error("text after the filter");
    return filter;
  }

  #error(what: string): BerError {
    return new BerError(`bad search filter "${this.text}": ${what}`);
  }

  #filter(depth: number): Buffer {
    if (depth > MAX_DEPTH) throw this.#error("nested too deeply");
    if (this.text[this.#pos] !== "(") throw this.#error(`"(" expected at offset ${this.#pos}`);
    this.#pos++;
    let out: Buffer;
    switch (this.text[this.#pos]) {
      case "&":
      case "|": {
        const tag = this.text[this.#pos] === "&" ? 0xa0 : 0xa1;
        this.#pos++;
        const members: Buffer[] = [];
        while (this.text[this.#pos] === "(") members.push(this.#filter(depth + 1));
        if (!members.length) throw this.#error("empty filter list");
        out = constructed(tag, ...members);
        break;
      }
      case "!":
        this.#pos++;
        out = constructed(0xa2, this.#filter(depth + 1));
        break;
      default:
        out = this.#item();
    }
    if (this.text[this.#pos] !== ")") throw this.#error(`")" expected at offset ${this.#pos}`);
    this.#pos++;
    return out;
  }

  #item(): Buffer {
    const end = this.text.indexOf(")", this.#pos);
    if (end < 0) throw this.#error("unbalanced parentheses");
    const item = this.text.slice(this.#pos, end);
    if (item.includes("(")) throw this.#error(`unescaped "(" in "${item}"`);
    this.#pos = end;
    const eq = item.indexOf("=");
    if (eq <= 0) throw this.#error(`no "=" in "${item}"`);
    let attr = item.slice(0, eq);
    const value = item.slice(eq + 1);
    const op = attr.at(-1);
    if (op === ":") throw this.#error("extensible matches are not supported");
    let tag = 0xa3;
    if (op === "~" || op === ">" || op === "<") {
      tag = op === "~" ? 0xa8 : op === ">" ? 0xa5 : 0xa6;
      attr = attr.slice(0, -1);
    }
    if (!ATTRIBUTE.test(attr)) throw this.#error(`bad attribute description "${attr}"`);
    if (tag !== 0xa3) {
      if (value.includes("*")) throw this.#error(`"*" in "${item}"`);
      return constructed(tag, octetString(attr), octetString(unescapeValue(value)));
    }
    if (value === "*") return octetString(attr, 0x87);
    if (!value.includes("*")) return constructed(0xa3, octetString(attr), octetString(unescapeValue(value)));
    const pieces = value.split("*");
    const subs: Buffer[] = [];
    pieces.forEach((p, i) => {
      if (p === "") return;
      const kind = i === 0 ? 0x80 : i === pieces.length - 1 ? 0x82 : 0x81;
      subs.push(octetString(unescapeValue(p), kind));
    });
    return constructed(0xa4, octetString(attr), constructed(TAG.SEQUENCE, ...subs));
  }
}

/** The BER form of a string filter; throws BerError for a malformed one. */
export function encodeFilter(text: string): Buffer {
  const trimmed = text.trim();
  return new FilterParser(trimmed.startsWith("(") ? trimmed : `(${trimmed})`).parse();
}
