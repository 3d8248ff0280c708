/**
 * The result text of a regexp: or pcre: rule: `$1`, `${1}` and `$(1)` stand
 * for what a group matched (nothing when the group did not take part), `$$`
 * for a dollar sign. Checked when the table is read, with Postfix's
 * complaints: a reference to a group the pattern does not have, a name that
 * is not a number, a `$` with nothing usable after it, $n in a negated rule,
 * and $n at all where the caller forbids substitution (local(8)'s aliases).
 *
 * Input is untrusted table text.
 */

type Part = string | number;

export interface Template {
  parts: Part[];
  /** Whether any $n appears. */
  substitutes: boolean;
}

export function parseTemplate(text: string, groups: number): Template | { problem: string } {
  const parts: Part[] = [];
  let literal = "";
  let substitutes = false;
  for (let i = 0; i < text.length; ) {
    const c = text[i]!;
    if (c !== "$") {
      literal += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    let name: string | undefined;
    if (next === "$") {
      literal += "$";
      i += 2;
      continue;
    } else if (next === "{" || next === "(") {
      const close = text.indexOf(next === "{" ? "}" : ")", i + 2);
      if (close < 0) return { problem: "bad replacement syntax: skipping this rule" };
      name = text.slice(i + 2, close);
      i = close + 1;
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(text.slice(i + 1));
      if (!m) return { problem: "bad replacement syntax: skipping this rule" };
      name = m[0];
      i += 1 + name.length;
    }
    if (!/^\d+$/.test(name)) return { problem: `non-numeric replacement index "${name}": skipping this rule` };
    const n = Number(name);
    if (n < 1 || n > groups) return { problem: `out of range replacement index "${name}": skipping this rule` };
    if (literal) parts.push(literal);
    literal = "";
    parts.push(n);
    substitutes = true;
  }
  if (literal) parts.push(literal);
  return { parts, substitutes };
}

export function expandTemplate(t: Template, m: RegExpExecArray | null): string {
  let out = "";
  for (const p of t.parts) out += typeof p === "string" ? p : (m?.[p] ?? "");
  return out;
}
