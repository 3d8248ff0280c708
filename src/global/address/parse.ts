/**
 * The address-list parser: RFC 5322 `address-list` (display names, angle
 * addresses, groups such as `undisclosed-recipients:;`, comments, quoted
 * local parts, domain literals) with the obsolete and broken forms Postfix
 * tolerates: source routes (`<@a,@b:user@c>`), `%` and `!` addresses, two
 * words without a comma between them (taken as two addresses, as Postfix
 * adds the missing comma), stray `;`, unterminated quotes and brackets.
 *
 * Each address comes back in internal (unquoted) form with where its
 * addr-spec sits in the source, so callers can extract recipients (sendmail
 * -t, cleanup) or rewrite one address in place (header rewriting).
 *
 * Input is untrusted header or command-line text; nothing here throws on
 * malformed input, it yields what it can understand, and the work is linear
 * in the number of tokens (a header of addresses without commas is walked
 * once, not once per address).
 */
import { isWord, tokenize, type Token } from "./tokens.ts";

export interface ParsedAddress {
  /** Internal form: quotes removed, e.g. `a b@example.com`; may be "" for `""`. */
  address: string;
  /** The display name as written (quotes kept), when the address had `<...>`. */
  displayName?: string;
  /** Comments that belong to this address, as written. */
  comments: string[];
  /** The group the address is a member of, as written. */
  group?: string;
  /** True when written as `<addr-spec>`. */
  angle: boolean;
  /** Where the addr-spec tokens are in the source (inside the brackets for an angle address). */
  start: number;
  end: number;
}

interface Segment {
  tokens: Token[];
  group?: string;
}

/** Word tokens written back in internal form: a space between adjacent words, operators glued. */
export function internalText(tokens: readonly Token[]): string {
  let out = "";
  let prevWord = false;
  for (const t of tokens) {
    if (t.kind === "comment") continue;
    const word = isWord(t);
    if (word && prevWord) out += " ";
    out += t.kind === "domlit" ? `[${t.value}]` : t.value;
    prevWord = word;
  }
  return out;
}

/** Top-level `;` positions, for deciding whether a `:` opens a group. */
function lastTopLevelSemicolon(tokens: readonly Token[]): number {
  let depth = 0;
  let last = -1;
  tokens.forEach((t, i) => {
    if (t.kind !== "special") return;
    if (t.value === "<") depth++;
    else if (t.value === ">" && depth > 0) depth--;
    else if (t.value === ";" && depth === 0) last = i;
  });
  return last;
}

/** Cuts the token stream into comma-separated segments, noting group membership. */
function segments(tokens: readonly Token[], source: string): Segment[] {
  const out: Segment[] = [];
  const lastSemicolon = lastTopLevelSemicolon(tokens);
  let current: Token[] = [];
  let group: string | undefined;
  let depth = 0;
  const flush = () => {
    if (current.length) out.push({ tokens: current, ...(group !== undefined ? { group } : {}) });
    current = [];
  };
  tokens.forEach((t, i) => {
    if (t.kind === "special") {
      if (t.value === "<") depth++;
      else if (t.value === ">" && depth > 0) depth--;
      else if (depth === 0) {
        if (t.value === ",") {
          flush();
          return;
        }
        if (t.value === ":" && group === undefined && i < lastSemicolon) {
          const named = current.filter((x) => x.kind !== "comment");
          group = named.length ? source.slice(named[0]!.start, named.at(-1)!.end) : "";
          current = [];
          return;
        }
        if (t.value === ";") {
          flush();
          group = undefined;
          return;
        }
      }
    }
    current.push(t);
  });
  flush();
  return out;
}

function mailbox(addr: Token[], comments: Token[], extra: Partial<ParsedAddress>): ParsedAddress | undefined {
  const words = addr.filter((t) => t.kind !== "comment");
  if (words.length === 0) return undefined;
  return {
    address: internalText(words),
    comments: comments.map((c) => c.value),
    angle: false,
    start: words[0]!.start,
    end: words.at(-1)!.end,
    ...extra,
  };
}

/**
 * The addresses in one segment: angle addresses, each with the phrase before it, then bare addr-specs.
 * One pass from left to right: text after a closing bracket is another address whose comma is missing.
 */
function segmentAddresses(source: string, seg: Segment): ParsedAddress[] {
  const out: ParsedAddress[] = [];
  const group = seg.group !== undefined ? { group: seg.group } : {};
  const toks = seg.tokens;
  let from = 0;
  for (;;) {
    let open = from;
    while (open < toks.length && !(toks[open]!.kind === "special" && toks[open]!.value === "<")) open++;
    if (open >= toks.length) break;
    let depth = 0;
    let close = toks.length;
    for (let i = open; i < toks.length; i++) {
      const t = toks[i]!;
      if (t.kind !== "special") continue;
      if (t.value === "<") depth++;
      else if (t.value === ">" && --depth === 0) {
        close = i;
        break;
      }
    }
    const phrase = toks.slice(from, open).filter((t) => t.kind !== "comment");
    const inner = toks.slice(open + 1, close);
    const comments = [...toks.slice(from, open), ...inner].filter((t) => t.kind === "comment");
    // comments right after the closing bracket belong to this address
    from = close + 1;
    while (toks[from]?.kind === "comment") comments.push(toks[from++]!);
    const displayName = phrase.length ? source.slice(phrase[0]!.start, phrase.at(-1)!.end) : undefined;
    const m = mailbox(inner, comments, { angle: true, ...(displayName !== undefined ? { displayName } : {}), ...group });
    if (m) out.push(m);
  }
  // bare addr-specs: two words in a row mean a missing comma
  let addr: Token[] = [];
  let comments: Token[] = [];
  let prevWord = false;
  const emit = () => {
    const m = mailbox(addr, comments, group);
    if (m) out.push(m);
    addr = [];
    comments = [];
  };
  for (let i = from; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.kind === "comment") {
      comments.push(t);
      continue;
    }
    const word = isWord(t);
    if (word && prevWord) emit();
    addr.push(t);
    prevWord = word;
  }
  if (addr.length) emit();
  else if (comments.length && out.length) out.at(-1)!.comments.push(...comments.map((c) => c.value));
  return out;
}

/** Every address in `text` (a header value or a command-line argument), in order. */
export function parseAddressList(text: string, tokenLimit = 0): ParsedAddress[] {
  const tokens = tokenize(text, tokenLimit);
  return segments(tokens, text).flatMap((seg) => segmentAddresses(text, seg));
}

/** The internal forms of every address in `text`. */
export function extractAddresses(text: string, tokenLimit = 0): string[] {
  return parseAddressList(text, tokenLimit).map((a) => a.address);
}
