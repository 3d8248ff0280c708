/**
 * Word wrapping for delivery reports, as Postfix lays them out: lines of at
 * most 79 characters broken at spaces, continuation lines indented by four
 * spaces (which also makes them valid folded header lines in the
 * message/delivery-status part). A word longer than a line stays whole.
 *
 * Pure text; callers remove control characters first (see oneLine).
 */

export const WRAP_WIDTH = 79;
export const WRAP_INDENT = "    ";

export function wrapLine(text: string, width = WRAP_WIDTH, indent = WRAP_INDENT): string[] {
  const words = text.split(" ");
  const lines: string[] = [];
  let line = words[0] ?? "";
  for (const word of words.slice(1)) {
    if (line === indent) {
      // the start of a continuation line: spaces at the break are dropped
      line += word;
    } else if (line.length + 1 + word.length > width && line.trim() !== "") {
      lines.push(line.trimEnd());
      line = indent + word;
    } else line += " " + word;
  }
  lines.push(line.trimEnd());
  return lines;
}

/** Line breaks become one space and other control characters (TAB, NUL, ...) spaces: reports hold one logical line per field. */
export function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ").replace(/[\x00-\x1f\x7f]/g, " ");
}
