/**
 * The destinations in an alias value, a .forward line or an :include: line,
 * as Postfix's tok822 parser finds them: top-level commas separate them,
 * `Name <address>` gives the address, comments go, quoted strings lose their
 * quotes ("|command with args"), and two words side by side without an
 * operator between them are two destinations (`|/bin/sleep 60` is the
 * command "|/bin/sleep" and the address "60", as with Postfix).
 *
 * Input is untrusted alias or .forward text; the token layer is shared with
 * postalias (src/global/tables/alias-tokens.ts).
 */
import { internalizeTokens, scanTokens } from "../global/tables/alias-tokens.ts";

type Token = ReturnType<typeof scanTokens>[number];

const isWord = (t: Token) => t.type !== "op";

export function splitDestinations(text: string): string[] {
  const out: string[] = [];
  const flush = (group: Token[]) => {
    const words = group.filter((t) => t.type !== "comment");
    const open = words.findIndex((t) => t.type === "op" && t.text === "<");
    if (open >= 0) {
      const close = words.findIndex((t, i) => i > open && t.type === "op" && t.text === ">");
      const inner = internalizeTokens(words.slice(open + 1, close < 0 ? undefined : close));
      if (inner !== "") out.push(inner);
      return;
    }
    let current: Token[] = [];
    for (const t of words) {
      if (current.length > 0 && isWord(t) && isWord(current[current.length - 1]!)) {
        out.push(internalizeTokens(current));
        current = [];
      }
      current.push(t);
    }
    const last = internalizeTokens(current);
    if (last !== "") out.push(last);
  };
  let group: Token[] = [];
  let depth = 0;
  for (const t of scanTokens(text)) {
    if (t.type === "op" && t.text === "<") depth++;
    if (t.type === "op" && t.text === ">" && depth > 0) depth--;
    if (t.type === "op" && t.text === "," && depth === 0) {
      flush(group);
      group = [];
    } else group.push(t);
  }
  flush(group);
  return out.filter((d) => d !== "");
}
