/**
 * Where each key of a TOML document sits: its table, its dotted name and the
 * lines its key-value pair spans. smol-toml parses values but neither keeps
 * comments nor reports positions, so this scanner supplies line numbers for
 * error messages and the spans `postconf -e/-X/-#` edit in place.
 *
 * It assumes a document smol-toml already accepted; it only tracks strings,
 * brackets and comments well enough to find where each value ends.
 */

export interface LayoutEntry {
  /** Header of the enclosing table, "" for the top level (e.g. "services.smtp"). */
  table: string;
  /** The key as written, dotted parts unquoted (e.g. "listen" or "services.smtp.listen"). */
  key: string;
  /** Full dotted path: table + key. */
  path: string;
  /** 1-based first and last line of the pair. */
  startLine: number;
  endLine: number;
  /** A comment after the value on its last line, with the blanks before it (`  # why`). */
  trailingComment?: string;
}

export interface LayoutTable {
  name: string;
  line: number;
  array: boolean;
}

export interface Layout {
  entries: LayoutEntry[];
  tables: LayoutTable[];
  lineCount: number;
}

/** Splits a dotted key (`a."b.c".d`) into its unquoted parts. */
export function splitDottedKey(text: string): string[] {
  const parts: string[] = [];
  let i = 0;
  const s = text.trim();
  while (i < s.length) {
    while (s[i] === " " || s[i] === "\t") i++;
    let part = "";
    if (s[i] === '"' || s[i] === "'") {
      const q = s[i]!;
      i++;
      while (i < s.length && s[i] !== q) {
        if (q === '"' && s[i] === "\\") i++;
        part += s[i++];
      }
      i++;
    } else {
      while (i < s.length && s[i] !== "." && s[i] !== " " && s[i] !== "\t") part += s[i++];
    }
    parts.push(part);
    while (s[i] === " " || s[i] === "\t") i++;
    if (s[i] === ".") i++;
  }
  return parts;
}

export function scanLayout(text: string): Layout {
  const entries: LayoutEntry[] = [];
  const tables: LayoutTable[] = [];
  let table = "";
  let i = 0;
  let line = 1;
  const n = text.length;

  const skipToEol = () => {
    while (i < n && text[i] !== "\n") i++;
  };

  while (i < n) {
    // start of a line (or after a finished pair)
    while (i < n && (text[i] === " " || text[i] === "\t" || text[i] === "\r")) i++;
    if (i >= n) break;
    const c = text[i];
    if (c === "\n") {
      i++;
      line++;
      continue;
    }
    if (c === "#") {
      skipToEol();
      continue;
    }
    if (c === "[") {
      const array = text[i + 1] === "[";
      const start = i + (array ? 2 : 1);
      const end = text.indexOf(array ? "]]" : "]", start);
      const name = splitDottedKey(text.slice(start, end < 0 ? n : end)).join(".");
      tables.push({ name, line, array });
      table = name;
      skipToEol();
      continue;
    }
    // key = value
    const startLine = line;
    const eq = findEquals(text, i);
    const key = splitDottedKey(text.slice(i, eq)).join(".");
    i = eq + 1;
    // value: track strings and brackets until the end of the line at depth 0
    let depth = 0;
    let trailingComment: string | undefined;
    while (i < n) {
      const ch = text[i]!;
      if (ch === "\n") {
        if (depth === 0) break;
        line++;
        i++;
      } else if (ch === "#") {
        let from = i;
        while (text[from - 1] === " " || text[from - 1] === "\t") from--;
        skipToEol();
        if (depth === 0) trailingComment = text.slice(from, i).replace(/\r$/, "");
      } else if (ch === "[" || ch === "{") {
        depth++;
        i++;
      } else if (ch === "]" || ch === "}") {
        depth--;
        i++;
      } else if (ch === '"' || ch === "'") {
        const triple = text.startsWith(ch.repeat(3), i);
        if (triple) {
          i += 3;
          while (i < n && !text.startsWith(ch.repeat(3), i)) {
            if (ch === '"' && text[i] === "\\") i++;
            if (text[i] === "\n") line++;
            i++;
          }
          i += 3;
          while (text[i] === ch) i++; // up to two quotes may close the content
        } else {
          i++;
          while (i < n && text[i] !== ch && text[i] !== "\n") {
            if (ch === '"' && text[i] === "\\") i++;
            i++;
          }
          i++;
        }
      } else i++;
    }
    entries.push({ table, key, path: table ? `${table}.${key}` : key, startLine, endLine: line, ...(trailingComment ? { trailingComment } : {}) });
  }
  return { entries, tables, lineCount: line };
}

/** The '=' that ends a key, skipping quoted key parts. */
function findEquals(text: string, from: number): number {
  let i = from;
  while (i < text.length && text[i] !== "=" && text[i] !== "\n") {
    if (text[i] === '"' || text[i] === "'") {
      const q = text[i];
      i++;
      while (i < text.length && text[i] !== q && text[i] !== "\n") i++;
    }
    i++;
  }
  return i;
}
