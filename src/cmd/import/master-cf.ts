/**
 * Reads Postfix's master.cf as its master(8) does (master_ent.c): logical
 * lines as in main.cf, then eight fields (service, type, private, unpriv,
 * chroot, wakeup, maxproc, command) and the command's arguments, split at
 * blanks with `{ ... }` groups kept whole and their braces and outer blanks
 * removed. `-o name=value` (or `-o { name = value }`, or `-oname=value`) are
 * parameter overrides; the other arguments are kept as written. Comments
 * before a service are kept with it, for postern import to carry.
 *
 * Run by `postern import` as the invoking user; a malformed entry is
 * reported with its line, never guessed at.
 */

export const SERVICE_TYPES = ["inet", "unix", "unix-dgram", "fifo", "pass"] as const;

export interface MasterEntry {
  name: string;
  type: (typeof SERVICE_TYPES)[number];
  private: string;
  unpriv: string;
  chroot: string;
  wakeup: string;
  maxproc: string;
  command: string;
  /** -o overrides in order, with the line each sits on. */
  overrides: Array<{ name: string; value: string; line: number }>;
  /** Arguments other than -o, as written. */
  args: string[];
  line: number;
  /** Comment lines just before the entry. */
  comments: string[];
}

export interface MasterProblem {
  line: number;
  message: string;
}

/** Splits at blanks; `{ ... }` is one word, its braces and outer blanks stripped. */
function words(text: string, line: number, problems: MasterProblem[]): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (i >= text.length) break;
    if (text[i] === "{") {
      let depth = 0;
      let j = i;
      for (; j < text.length; j++) {
        if (text[j] === "{") depth++;
        else if (text[j] === "}" && --depth === 0) break;
      }
      if (depth !== 0) {
        problems.push({ line, message: `missing '}' in "${text.slice(i, i + 60)}"` });
        return out;
      }
      out.push(text.slice(i + 1, j).trim());
      i = j + 1;
    } else {
      let j = i;
      while (j < text.length && !/\s/.test(text[j]!)) j++;
      out.push(text.slice(i, j));
      i = j;
    }
  }
  return out;
}

export function parseMasterCf(text: string): { entries: MasterEntry[]; problems: MasterProblem[] } {
  const entries: MasterEntry[] = [];
  const problems: MasterProblem[] = [];
  const lines = text.split("\n");
  // logical lines, with the physical line each piece starts on (for -o overrides)
  const logical: Array<{ line: number; pieces: Array<{ text: string; line: number }>; comments: string[] }> = [];
  let comments: string[] = [];
  lines.forEach((raw, i) => {
    const t = raw.replace(/\r$/, "");
    const trimmed = t.trim();
    if (trimmed === "") {
      comments = [];
      return;
    }
    if (trimmed.startsWith("#")) {
      comments.push(trimmed);
      return;
    }
    if (/^\s/.test(t)) {
      const last = logical[logical.length - 1];
      if (last) last.pieces.push({ text: t, line: i + 1 });
      else problems.push({ line: i + 1, message: "a continuation line that does not continue a service (ignored, as Postfix does)" });
      return;
    }
    logical.push({ line: i + 1, pieces: [{ text: t, line: i + 1 }], comments });
    comments = [];
  });

  for (const l of logical) {
    const all: Array<{ word: string; line: number }> = [];
    for (const piece of l.pieces) for (const w of words(piece.text, piece.line, problems)) all.push({ word: w, line: piece.line });
    if (all.length < 8) {
      problems.push({ line: l.line, message: `a service needs 8 fields (service, type, private, unpriv, chroot, wakeup, maxproc, command); found ${all.length}` });
      continue;
    }
    const [name, type, priv, unpriv, chroot, wakeup, maxproc, command] = all.slice(0, 8).map((w) => w.word) as [string, string, string, string, string, string, string, string];
    if (!(SERVICE_TYPES as readonly string[]).includes(type)) {
      problems.push({ line: l.line, message: `service "${name}": unknown service type "${type}" (inet, unix, unix-dgram, fifo or pass)` });
      continue;
    }
    const entry: MasterEntry = { name, type: type as MasterEntry["type"], private: priv, unpriv, chroot, wakeup, maxproc, command, overrides: [], args: [], line: l.line, comments: l.comments };
    const rest = all.slice(8);
    for (let i = 0; i < rest.length; i++) {
      const { word, line } = rest[i]!;
      let setting: string | undefined;
      let at = line;
      if (word === "-o") {
        const next = rest[++i];
        if (!next) {
          problems.push({ line, message: `service "${name}": -o without a name=value` });
          break;
        }
        setting = next.word;
        at = next.line;
      } else if (word.startsWith("-o")) setting = word.slice(2);
      if (setting === undefined) {
        entry.args.push(word);
        continue;
      }
      const eq = setting.indexOf("=");
      if (eq <= 0) {
        problems.push({ line: at, message: `service "${name}": -o "${setting}" is not name=value` });
        continue;
      }
      entry.overrides.push({ name: setting.slice(0, eq).trim(), value: setting.slice(eq + 1).trim(), line: at });
    }
    entries.push(entry);
  }
  return { entries, problems };
}
