/**
 * The RFC 822/5322 address tokenizer, with Postfix's tolerances: `%`, `!`
 * and `|` are operators too (the real world is not all RFC 822), a
 * backslash quotes the next character anywhere, white space inside quoted
 * strings and domain literals (and escaped white space) becomes a space, so
 * no address ever holds a line break or a NUL, and an unterminated
 * quoted string, literal or comment simply runs to the end of the text.
 *
 * Every token keeps its place in the source text, so a rewriter can splice
 * a changed address into a header and leave everything else (display
 * names, comments, spacing) as it was.
 *
 * Used by sendmail, cleanup and later smtpd; the text is untrusted (message
 * headers, command-line arguments). An optional token limit bounds the work
 * (header_address_token_limit).
 */

export type TokenKind = "atom" | "qstring" | "domlit" | "comment" | "special";

export interface Token {
  kind: TokenKind;
  /**
   * atom: the word with backslashes removed; qstring and domlit: the content
   * without the quotes or brackets, unescaped; comment: the raw text with
   * its parentheses; special: the character.
   */
  value: string;
  /** Offsets in the source: text.slice(start, end) is the token as written. */
  start: number;
  end: number;
}

/** RFC 822 specials plus Postfix's extra operators. */
const SPECIALS = new Set([..."()<>@,;:\\\".[]%!|"]);
const WORD_KINDS: ReadonlySet<TokenKind> = new Set(["atom", "qstring", "domlit"]);

/** NUL counts as a blank: Postfix's C strings end there, and no address may hold it. */
function isBlank(c: string): boolean {
  return c === " " || c === "\t" || c === "\r" || c === "\n" || c === "\0";
}

export function isWord(t: Token): boolean {
  return WORD_KINDS.has(t.kind);
}

/** An atom that would need quotes to be written back (it held escaped specials or blanks). */
function needsQuotes(word: string): boolean {
  for (const c of word) {
    const code = c.charCodeAt(0);
    if (c === " " || code < 32 || code === 127 || SPECIALS.has(c)) return true;
  }
  return false;
}

/** Reads up to `close` (exclusive), honouring backslash escapes; blanks become spaces. */
function collectQuoted(text: string, from: number, close: string): { value: string; next: number } {
  let value = "";
  let i = from;
  while (i < text.length) {
    let c = text[i]!;
    if (c === "\\") {
      if (i + 1 >= text.length) {
        i++;
        break;
      }
      c = text[++i]!;
    } else if (c === close) {
      return { value, next: i + 1 };
    }
    value += isBlank(c) ? " " : c;
    i++;
  }
  return { value, next: i };
}

function collectComment(text: string, from: number): number {
  let depth = 1;
  let i = from;
  while (i < text.length && depth > 0) {
    const c = text[i]!;
    if (c === "\\") i++;
    else if (c === "(") depth++;
    else if (c === ")") depth--;
    i++;
  }
  return Math.min(i, text.length);
}

export function tokenize(text: string, limit = 0): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (isBlank(c)) {
      i++;
      continue;
    }
    if (limit > 0 && tokens.length >= limit) break;
    const start = i;
    if (c === "(") {
      i = collectComment(text, i + 1);
      tokens.push({ kind: "comment", value: text.slice(start, i), start, end: i });
    } else if (c === '"' || c === "[") {
      const { value, next } = collectQuoted(text, i + 1, c === '"' ? '"' : "]");
      i = next;
      tokens.push({ kind: c === '"' ? "qstring" : "domlit", value, start, end: i });
    } else if (c !== "\\" && SPECIALS.has(c)) {
      i++;
      tokens.push({ kind: "special", value: c, start, end: i });
    } else {
      let value = "";
      while (i < text.length) {
        let ch = text[i]!;
        if (ch === "\\") {
          if (i + 1 >= text.length) {
            i++;
            break;
          }
          ch = text[++i]!;
          // an escaped line break is still only a space
          if (isBlank(ch)) ch = " ";
        } else if (isBlank(ch) || SPECIALS.has(ch)) {
          break;
        }
        value += ch;
        i++;
      }
      // an atom that held escaped specials is a quoted string in disguise
      tokens.push({ kind: needsQuotes(value) ? "qstring" : "atom", value, start, end: i });
    }
  }
  return tokens;
}
