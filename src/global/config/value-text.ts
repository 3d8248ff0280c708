/**
 * TOML values as Postfix parameter text: strings as written, numbers in
 * decimal, booleans as yes/no, arrays joined with ", ". And the reverse for
 * lists: Postfix splits on commas and white space, keeping {...} groups whole.
 */

/** The Postfix text of a TOML value, or undefined for values a parameter cannot hold (tables, dates). */
export function tomlValueToText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value)) {
    const parts = value.map(tomlValueToText);
    if (parts.some((x) => x === undefined)) return undefined;
    return parts.join(", ");
  }
  return undefined;
}

/** Splits a Postfix list on commas and white space; `{...}` groups stay one element (braces kept). */
export function splitList(text: string): string[] {
  const out: string[] = [];
  let cur = "";
  let depth = 0;
  for (const ch of text) {
    if (ch === "{") depth++;
    else if (ch === "}" && depth > 0) depth--;
    if (depth === 0 && (ch === "," || ch === " " || ch === "\t" || ch === "\r" || ch === "\n")) {
      if (cur) out.push(cur);
      cur = "";
    } else cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}
