/**
 * Postfix's logical lines, the layer under every table source format
 * (postmap, aliases, regexp, pcre, cidr): empty, whitespace-only and comment
 * lines (first non-blank character `#`) are skipped; a line that starts with
 * white space continues the logical line before it, joined without the line
 * break (its leading white space is kept). A logical line reports the number
 * of its first physical line.
 *
 * The text is untrusted file content; nothing here interprets it further.
 */

export interface LogicalLine {
  /** 1-based number of the first physical line. */
  line: number;
  text: string;
}

/** `warn` receives Postfix's "logical line must not start with whitespace" complaint for an orphan continuation. */
export function logicalLines(text: string, warn?: (message: string) => void): LogicalLine[] {
  const out: LogicalLine[] = [];
  const physical = text.split("\n");
  // a final newline does not start another (empty) line
  if (physical.length && physical[physical.length - 1] === "") physical.pop();
  let current: LogicalLine | undefined;
  for (let i = 0; i < physical.length; i++) {
    let raw = physical[i]!;
    if (raw.endsWith("\r")) raw = raw.slice(0, -1);
    const trimmed = raw.trimStart();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    if (trimmed.length !== raw.length) {
      if (current) current.text += raw;
      else warn?.(`logical line must not start with whitespace: "${raw}"`);
      continue;
    }
    current = { line: i + 1, text: raw };
    out.push(current);
  }
  for (const l of out) l.text = l.text.trimEnd();
  return out;
}
