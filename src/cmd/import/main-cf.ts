/**
 * Reads Postfix's main.cf as Postfix does (readllines() and
 * split_nameval()): a logical line starts with non-blank text and goes on
 * over the lines that start with white space; empty, blank and `#` lines are
 * skipped, even inside a continued value; each logical line is
 * `name = value`, the value trimmed and left unexpanded. Unlike Postfix, the
 * comments and blank lines are kept, in order, so that postern import can
 * carry them to where they stand.
 *
 * Run by `postern import` as the invoking user; the file is the
 * administrator's, but a malformed line is reported, never guessed at.
 */

export type MainCfItem =
  | { kind: "comment"; text: string; line: number }
  | { kind: "blank"; line: number }
  | {
      kind: "param";
      name: string;
      /** The value as Postfix sees it: the physical lines joined, trimmed. */
      value: string;
      /** Each physical line's text after the `=` (first) or as written (continuations), trimmed. */
      pieces: string[];
      line: number;
      endLine: number;
    };

export interface MainCfProblem {
  line: number;
  message: string;
}

const NAME = /^[A-Za-z0-9_.-]+$/;

export function parseMainCf(text: string): { items: MainCfItem[]; problems: MainCfProblem[] } {
  const items: MainCfItem[] = [];
  const problems: MainCfProblem[] = [];
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  let current: { start: number; end: number; parts: string[]; held: MainCfItem[] } | undefined;

  const finish = () => {
    if (!current) return;
    const first = current.parts[0]!;
    const logical = current.parts.join("");
    const eq = logical.indexOf("=");
    if (eq < 0) {
      problems.push({ line: current.start, message: `missing '=' after parameter name: "${first.trim().slice(0, 60)}"` });
    } else {
      const name = logical.slice(0, eq).trim();
      if (!NAME.test(name)) problems.push({ line: current.start, message: `invalid parameter name "${name.slice(0, 60)}"` });
      else {
        const firstEq = first.indexOf("=");
        const pieces = [first.slice(firstEq + 1).trim(), ...current.parts.slice(1).map((p) => p.trim())].filter((p) => p !== "");
        items.push({ kind: "param", name, value: logical.slice(eq + 1).trim(), pieces, line: current.start, endLine: current.end });
      }
    }
    // comments met inside the value come after it, in their order
    items.push(...current.held);
    current = undefined;
  };

  lines.forEach((raw, i) => {
    const line = i + 1;
    const text = raw.replace(/\r$/, "");
    const trimmed = text.trim();
    if (trimmed === "" || trimmed.startsWith("#")) {
      const item: MainCfItem = trimmed === "" ? { kind: "blank", line } : { kind: "comment", text: trimmed, line };
      // Postfix skips these without ending the logical line: a continuation may follow
      if (current) current.held.push(item);
      else items.push(item);
      return;
    }
    if (/^\s/.test(text)) {
      // even after a comment or a blank line, as Postfix reads it
      if (current) {
        current.parts.push(text);
        current.end = line;
      } else problems.push({ line, message: "a continuation line that does not continue a parameter (ignored, as Postfix does)" });
      return;
    }
    finish();
    current = { start: line, end: line, parts: [text], held: [] };
  });
  finish();
  return { items, problems };
}
