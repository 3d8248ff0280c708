/**
 * The RFC 822 token layer of the aliases(5) format, as Postfix's postalias
 * and local(8) treat an alias's right-hand side: atoms (a backslash quotes
 * the next character), "quoted strings", (nested comments), [domain
 * literals] and the single-character operators ( ) < > @ , ; : . [ ] " \.
 *
 * normalizeAliasValue() is what postalias stores (Postfix rewrites the value
 * with one space after each comma, collapsed white space, re-quoted atoms);
 * splitAliasValue() is what local delivery expands: one destination per
 * top-level comma, in internal (unquoted) form, the address inside <...>
 * when there is one, comments dropped.
 *
 * Input is untrusted alias-file text; malformed quoting is closed at the end
 * of the text, never an error (Postfix does the same).
 */

type TokenType = "atom" | "qstring" | "comment" | "domlit" | "op";

interface Token {
  type: TokenType;
  /** Internal text: unquoted, escapes resolved; the operator character for "op". */
  text: string;
}

const SPECIALS = '()<>@,;:\\".[]';

function isSpace(c: string): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v";
}

function isAtomChar(c: string): boolean {
  return !SPECIALS.includes(c) && !isSpace(c) && c.charCodeAt(0) >= 0x20 && c !== "\x7f";
}

/** Reads up to `close` from `i` (just after the opener), honouring backslashes and, for comments, nesting. */
function scanDelimited(text: string, i: number, open: string, close: string): { body: string; next: number } {
  let body = "";
  let depth = 1;
  while (i < text.length) {
    let c = text[i++]!;
    if (c === "\\" && i < text.length) {
      c = text[i++]!;
      // inside a comment the escape stays visible, so the comment prints as written
      body += open === "(" ? `\\${c}` : c;
      continue;
    }
    if (open === "(" && c === "(") depth++;
    else if (c === close && --depth === 0) return { body, next: i };
    body += c === "\t" ? " " : c;
  }
  return { body, next: i };
}

export function scanTokens(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (isSpace(c)) {
      i++;
    } else if (c === "(") {
      const { body, next } = scanDelimited(text, i + 1, "(", ")");
      out.push({ type: "comment", text: body });
      i = next;
    } else if (c === "[") {
      const { body, next } = scanDelimited(text, i + 1, "[", "]");
      out.push({ type: "domlit", text: body });
      i = next;
    } else if (c === '"') {
      const { body, next } = scanDelimited(text, i + 1, '"', '"');
      out.push({ type: "qstring", text: body });
      i = next;
    } else if (c === "\\" || isAtomChar(c)) {
      let atom = "";
      while (i < text.length) {
        const d = text[i]!;
        if (d === "\\" && i + 1 < text.length) {
          atom += text[i + 1];
          i += 2;
        } else if (d !== "\\" && isAtomChar(d)) {
          atom += d;
          i++;
        } else break;
      }
      if (atom === "" && text[i] === "\\") i++; // a lone trailing backslash
      else out.push({ type: "atom", text: atom });
    } else {
      out.push({ type: "op", text: c });
      i++;
    }
  }
  return out;
}

const nonOperator = (t: Token) => t.type !== "op";

/** Postfix's spacing: after a comma, before "<", and between two words. */
function spaceBetween(t: Token, next: Token): boolean {
  if (t.type === "op" && t.text === ",") return true;
  if (next.type === "op" && next.text === "<") return true;
  return nonOperator(t) && nonOperator(next);
}

function quote(text: string): string {
  return `"${text.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

function needsQuotes(atom: string): boolean {
  for (const c of atom) if (!isAtomChar(c)) return true;
  return false;
}

function external(t: Token): string {
  switch (t.type) {
    case "atom":
      return needsQuotes(t.text) ? quote(t.text) : t.text;
    case "qstring":
      return quote(t.text);
    case "comment":
      return `(${t.text})`;
    case "domlit":
      return `[${t.text}]`;
    case "op":
      return t.text;
  }
}

function joinTokens(tokens: Token[], form: (t: Token) => string): string {
  let out = "";
  for (let i = 0; i < tokens.length; i++) {
    out += form(tokens[i]!);
    if (i + 1 < tokens.length && spaceBetween(tokens[i]!, tokens[i + 1]!)) out += " ";
  }
  return out;
}

/** The value as postalias stores it: `a,   b` becomes `a, b`, `\root` becomes `root`. */
export function normalizeAliasValue(text: string): string {
  return joinTokens(scanTokens(text), external);
}

function internal(t: Token): string {
  switch (t.type) {
    case "domlit":
      return `[${t.text}]`;
    default:
      return t.text;
  }
}

/** Internal form of a token list: quotes removed, words separated by one space. */
export function internalizeTokens(tokens: Token[]): string {
  return joinTokens(tokens, internal);
}

/**
 * The destinations of an alias value or a .forward line, in internal form:
 * `"|cmd arg"` gives `|cmd arg`, `Name <u@x>` gives `u@x`, `:include:/f`
 * stays, empty elements are dropped.
 */
export function splitAliasValue(text: string): string[] {
  const out: string[] = [];
  let group: Token[] = [];
  const flush = () => {
    let words = group.filter((t) => t.type !== "comment");
    const open = words.findIndex((t) => t.type === "op" && t.text === "<");
    if (open >= 0) {
      const close = words.findIndex((t, i) => i > open && t.type === "op" && t.text === ">");
      words = words.slice(open + 1, close < 0 ? undefined : close);
    }
    const text = internalizeTokens(words);
    if (text !== "") out.push(text);
    group = [];
  };
  let depth = 0;
  for (const t of scanTokens(text)) {
    if (t.type === "op" && t.text === "<") depth++;
    if (t.type === "op" && t.text === ">" && depth > 0) depth--;
    if (t.type === "op" && t.text === "," && depth === 0) flush();
    else group.push(t);
  }
  flush();
  return out;
}
