/**
 * Rewriting the addresses inside one address header (From:, To:, Cc:, ...)
 * in place: each address whose rewritten form differs is replaced by its
 * external form where it stands, so display names, comments and groups stay
 * as written. A header in which something changed is then folded as
 * Postfix's cleanup folds a rewritten address list: one address after the
 * other, a new line (starting with a tab) before an address that would take
 * the line to 70 characters or more.
 *
 * Input is an untrusted header; the token limit bounds the work.
 */
import { parseAddressList } from "./parse.ts";
import { externalizeAddress } from "./quote.ts";
import { tokenize } from "./tokens.ts";

export interface HeaderRewrite {
  /** The whole header, `Name: value` with its folding; unchanged when nothing was rewritten. */
  text: string;
  changed: boolean;
}

/** Commas between addresses (not inside quotes, comments or angle brackets). */
function topLevelCommas(value: string): number[] {
  const out: number[] = [];
  let depth = 0;
  for (const t of tokenize(value)) {
    if (t.kind !== "special") continue;
    if (t.value === "<") depth++;
    else if (t.value === ">" && depth > 0) depth--;
    else if (t.value === "," && depth === 0) out.push(t.end);
  }
  return out;
}

/** Postfix's folding of a rewritten address list. */
export function foldAddressHeader(name: string, value: string): string {
  const cuts = [0, ...topLevelCommas(value), value.length];
  const pieces: string[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const piece = value
      .slice(cuts[i], cuts[i + 1])
      .replace(/\r?\n[ \t]*/g, " ")
      // ASCII blanks only: trim() would also take U+00A0 or U+2028 off the address they belong to
      .replace(/^[ \t]+|[ \t]+$/g, "")
      .replace(/[ \t]+,$/, ",");
    if (piece) pieces.push(piece);
  }
  const lines: string[] = [];
  let line = `${name}:`;
  pieces.forEach((piece, i) => {
    if (i === 0) line += ` ${piece}`;
    else if (line.length + 1 + piece.length < 70) line += ` ${piece}`;
    else {
      lines.push(line);
      line = piece;
    }
  });
  lines.push(line);
  return lines.map((l, i) => (i === 0 ? l : `\t${l}`)).join("\n");
}

/**
 * `header` is the complete header (name, colon, value, continuation lines
 * joined with "\n"). `rewrite` maps an internal-form address to its new
 * internal form.
 */
export function rewriteAddressHeader(header: string, rewrite: (address: string) => string, tokenLimit = 0): HeaderRewrite {
  const colon = header.indexOf(":");
  if (colon < 0) return { text: header, changed: false };
  const name = header.slice(0, colon);
  const value = header.slice(colon + 1);
  const edits: Array<{ start: number; end: number; text: string }> = [];
  for (const a of parseAddressList(value, tokenLimit)) {
    const next = rewrite(a.address);
    if (next === a.address) continue;
    // comments inside the addr-spec would be cut out with it: keep them after the address
    const inner = tokenize(value.slice(a.start, a.end)).filter((t) => t.kind === "comment");
    let text = externalizeAddress(next) + inner.map((c) => ` ${c.value}`).join("");
    if (value[a.end] === "(") text += " ";
    edits.push({ start: a.start, end: a.end, text });
  }
  if (!edits.length) return { text: header, changed: false };
  // one pass over the value: splicing each edit into a new string would copy the header once per address
  const parts: string[] = [];
  let at = 0;
  for (const e of edits.sort((x, y) => x.start - y.start)) {
    parts.push(value.slice(at, e.start), e.text);
    at = e.end;
  }
  parts.push(value.slice(at));
  return { text: foldAddressHeader(name, parts.join("")), changed: true };
}
