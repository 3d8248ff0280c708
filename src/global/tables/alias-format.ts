/**
 * The aliases(5) source format, as postalias reads it: `name: value, value`
 * on logical lines (continuation lines start with white space; `#` comments).
 * The name is everything before the first `:` outside quotes, in internal
 * form (`"foo bar": x` names `foo bar`) and must be local (no `@`). The value
 * is kept as Postfix keeps it: destinations are not interpreted here
 * (`|command`, `/file`, `:include:/path` and addresses stay text), only
 * re-spaced the way postalias does (see alias-tokens.ts).
 *
 * Input is untrusted file or stdin text: bad lines are skipped with
 * Postfix's warnings.
 */
import { logicalLines } from "./logical-lines.ts";
import { internalizeTokens, normalizeAliasValue, scanTokens } from "./alias-tokens.ts";
import type { SourceEntry } from "./postmap-format.ts";

/** Splits one logical alias line, or returns Postfix's complaint about it. */
export function splitAliasLine(text: string): { key: string; value: string } | { problem: string } {
  // Find the first ":" that is an operator, not inside quotes, comments or brackets.
  const tokens = scanTokens(text);
  const colon = tokens.findIndex((t) => t.type === "op" && t.text === ":");
  if (colon <= 0 || colon === tokens.length - 1) return { problem: "need name:value pair" };
  const nameTokens = tokens.slice(0, colon);
  if (nameTokens.some((t) => t.type === "op" && t.text === "@")) return { problem: "name must be local" };
  const key = internalizeTokens(nameTokens);
  // The value is the text after the colon: find it by position so quoting inside survives as written.
  const value = normalizeAliasValue(text.slice(colonOffset(text) + 1));
  if (key === "" || value === "") return { problem: "need name:value pair" };
  return { key, value };
}

/** Offset of the first ":" outside quotes, comments and domain literals (the one scanTokens found). */
function colonOffset(text: string): number {
  let depth = 0;
  let quoted = false;
  let bracket = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\\") {
      i++;
      continue;
    }
    if (quoted) {
      if (c === '"') quoted = false;
    } else if (depth > 0) {
      if (c === "(") depth++;
      else if (c === ")") depth--;
    } else if (bracket) {
      if (c === "]") bracket = false;
    } else if (c === '"') quoted = true;
    else if (c === "(") depth = 1;
    else if (c === "[") bracket = true;
    else if (c === ":") return i;
  }
  return -1;
}

export function parseAliasSource(text: string, warn: (line: number | undefined, message: string) => void): SourceEntry[] {
  const out: SourceEntry[] = [];
  for (const l of logicalLines(text, (m) => warn(undefined, m))) {
    const kv = splitAliasLine(l.text);
    if ("problem" in kv) {
      warn(l.line, kv.problem);
      continue;
    }
    out.push({ key: kv.key, value: kv.value, line: l.line });
  }
  return out;
}
