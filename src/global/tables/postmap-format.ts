/**
 * The postmap(1) source format shared by hash: (through postmap) and
 * texthash:: `key whitespace value` on logical lines. A key may hold white
 * space inside double quotes (`"foo bar"@example.com`, with `\"` and `\\`
 * escapes); the quotes stay part of the key, as Postfix stores them. The
 * value is the rest of the line without surrounding white space.
 *
 * Input is untrusted file or stdin text: bad lines are skipped with Postfix's
 * warnings, never fatal.
 */
import { logicalLines } from "./logical-lines.ts";

export interface SourceEntry {
  key: string;
  value: string;
  line: number;
}

/** Splits one logical line into key and value, or returns the complaint Postfix makes about it. */
export function splitKeyValue(text: string): { key: string; value: string } | { problem: string } {
  let i = 0;
  let quoted = false;
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === "\\" && i + 1 < text.length) i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === " " || c === "\t") break;
  }
  if (quoted) return { problem: `unbalanced '"' in '${text}' -- ignoring this line` };
  const key = text.slice(0, i);
  const value = text.slice(i).trim();
  if (value === "") return { problem: "expected format: key whitespace value" };
  return { key, value };
}

/**
 * Every well-formed entry of `text`, in file order, duplicates included (the
 * caller decides what a duplicate means). `warn` gets `line N: problem`.
 */
export function parsePostmapSource(text: string, warn: (line: number | undefined, message: string) => void): SourceEntry[] {
  const out: SourceEntry[] = [];
  for (const l of logicalLines(text, (m) => warn(undefined, m))) {
    const kv = splitKeyValue(l.text);
    if ("problem" in kv) {
      warn(l.line, kv.problem);
      continue;
    }
    out.push({ key: kv.key, value: kv.value, line: l.line });
  }
  return out;
}
