/**
 * POSIX regular expressions (regcomp(3) as glibc implements them, which is
 * what Postfix's regexp: tables use) translated to JavaScript RegExp.
 *
 * Covered: extended (ERE) and basic (BRE, when a pattern toggles the `x`
 * flag off) syntax; bracket expressions with `]` first, literal backslashes
 * and [:class:] names; GNU escapes \w \W \s \S \b \B \< \> \` \'; back
 * references \1-\9; REG_ICASE (`i`) and REG_NEWLINE (`m`: `.` and `[^...]`
 * stop at newlines, `^`/`$` match at line breaks). Without `m`, `.` matches a
 * newline, as POSIX says.
 *
 * Known difference: POSIX picks the leftmost-longest match, JavaScript the
 * leftmost-first; whether a pattern matches is the same, but the text a
 * group captures for $1 can differ with alternations like (a|ab).
 * Collating elements [.x.] and equivalence classes [=x=] match x itself.
 *
 * The pattern is untrusted table text; errors are thrown as Error with a
 * short message, never executed.
 */

export interface PosixFlags {
  /** REG_ICASE: case-insensitive (the default in regexp: tables). */
  icase: boolean;
  /** REG_NEWLINE: newline-sensitive matching (the `m` flag). */
  newline: boolean;
  /** REG_EXTENDED (the default; the `x` flag toggles it off). */
  extended: boolean;
}

export interface CompiledRegex {
  regex: RegExp;
  /** Number of capturing groups, for checking $n references. */
  groups: number;
}

export const POSIX_CLASSES: Record<string, string> = {
  alpha: "a-zA-Z",
  digit: "0-9",
  alnum: "a-zA-Z0-9",
  upper: "A-Z",
  lower: "a-z",
  space: " \\t\\n\\r\\f\\v",
  blank: " \\t",
  punct: "!-\\/:-@\\[-`{-~",
  print: " -~",
  graph: "!-~",
  cntrl: "\\x00-\\x1f\\x7f",
  xdigit: "0-9A-Fa-f",
  word: "a-zA-Z0-9_",
};

/** Characters that must be escaped to stand for themselves in a JavaScript pattern. */
const JS_SPECIAL = new Set("\\^$.|?*+()[]{}/");

export function jsLiteral(c: string): string {
  return JS_SPECIAL.has(c) ? `\\${c}` : c;
}

function jsClassLiteral(c: string): string {
  return c === "\\" || c === "]" || c === "[" || c === "^" || c === "-" ? `\\${c}` : c;
}

/**
 * Parses a bracket expression starting after "[" at `i`; returns the
 * JavaScript class and the index after the closing "]".
 * `negatedExtra` is added to negated classes (newline under REG_NEWLINE).
 */
export function translateBracket(src: string, i: number, negatedExtra: string, backslashEscapes = false): { out: string; next: number } {
  let negate = false;
  if (src[i] === "^") {
    negate = true;
    i++;
  }
  let body = "";
  let first = true;
  while (i < src.length) {
    const c = src[i]!;
    if (c === "]" && !first) {
      return { out: `[${negate ? "^" : ""}${body}${negate ? negatedExtra : ""}]`, next: i + 1 };
    }
    first = false;
    if (c === "[" && (src[i + 1] === ":" || src[i + 1] === "=" || src[i + 1] === ".")) {
      const kind = src[i + 1]!;
      const end = src.indexOf(`${kind}]`, i + 2);
      if (end < 0) throw new Error("Unmatched [, [^, [:, [., or [=");
      const name = src.slice(i + 2, end);
      if (kind === ":") {
        const cls = POSIX_CLASSES[name];
        if (cls === undefined) throw new Error(`Invalid character class name "${name}"`);
        body += cls;
      } else {
        for (const ch of name) body += jsClassLiteral(ch);
      }
      i = end + 2;
      continue;
    }
    if (c === "\\" && backslashEscapes && i + 1 < src.length) {
      // PCRE classes: escapes keep their JavaScript meaning (\d, \], \\)
      body += src.slice(i, i + 2);
      i += 2;
      continue;
    }
    if (c === "-" && body !== "" && src[i + 1] !== "]") {
      body += "-";
      i++;
      continue;
    }
    body += jsClassLiteral(c);
    i++;
  }
  throw new Error("Unmatched [, [^, [:, [., or [=");
}

const INTERVAL = /^\{(\d+)(,(\d*))?\}/;

/** Translates a POSIX pattern; throws Error with a regcomp-like message when it is invalid. */
export function compilePosix(pattern: string, flags: PosixFlags): CompiledRegex {
  const src = pattern;
  let out = "";
  let groups = 0;
  const open: number[] = [];
  // Whether the last output can take a quantifier (POSIX makes a leading * literal).
  let atomBefore = false;
  const bre = !flags.extended;
  const negatedExtra = flags.newline ? "\\n" : "";

  for (let i = 0; i < src.length; ) {
    const c = src[i]!;
    // In BRE, `\(` `\)` `\{` `\}` `\|` `\+` `\?` are the operators; in ERE the bare characters are.
    let op: string | undefined;
    if (bre) {
      if (c === "\\" && i + 1 < src.length && "(){}|+?".includes(src[i + 1]!)) {
        op = src[i + 1]!;
        i += 2;
      } else if (c === "*") {
        op = "*";
        i++;
      } else if ("(){}|+?".includes(c)) {
        out += jsLiteral(c);
        atomBefore = true;
        i++;
        continue;
      }
    } else if ("(){}|+?*".includes(c)) {
      op = c;
      i++;
    }
    if (op !== undefined) {
      switch (op) {
        case "(":
          groups++;
          open.push(groups);
          out += "(";
          atomBefore = false;
          break;
        case ")":
          if (!open.length) throw new Error("Unmatched ) or \\)");
          open.pop();
          out += ")";
          atomBefore = true;
          break;
        case "|":
          out += "|";
          atomBefore = false;
          break;
        case "{": {
          const rest = bre ? src.slice(i - 1).replace(/^\{(\d+)(,(\d*))?\\\}/, "{$1$2}") : src.slice(i - 1);
          const m = INTERVAL.exec(rest);
          if (!m) {
            if (bre) throw new Error("Invalid preceding regular expression");
            out += "\\{";
            atomBefore = true;
            break;
          }
          if (!atomBefore) throw new Error("Invalid preceding regular expression");
          if (m[3] !== undefined && m[3] !== "" && Number(m[3]) < Number(m[1])) throw new Error("Invalid content of \\{\\}");
          out += m[0];
          i += bre ? m[0].length : m[0].length - 1;
          break;
        }
        case "}":
          out += "\\}";
          atomBefore = true;
          break;
        default: // * + ?
          if (!atomBefore) {
            out += jsLiteral(op);
            atomBefore = true;
          } else {
            // Stacked quantifiers apply in turn in POSIX ("a+?" is "(a+)?"); JavaScript would read a lazy
            // quantifier or reject them, so fold the run into the one quantifier it amounts to.
            let combined = op;
            while (i < src.length && (src[i] === "*" || (!bre && (src[i] === "+" || src[i] === "?")))) {
              if (src[i] !== combined) combined = "*";
              i++;
            }
            out += combined;
          }
      }
      continue;
    }
    if (c === "\\") {
      if (i + 1 >= src.length) throw new Error("Trailing backslash");
      const e = src[i + 1]!;
      i += 2;
      atomBefore = true;
      if (e >= "1" && e <= "9") {
        if (Number(e) > groups) throw new Error("Invalid back reference");
        out += `\\${e}`;
      } else if ("wWsS".includes(e)) out += `\\${e}`;
      else if (e === "b" || e === "B") {
        out += `\\${e}`;
        atomBefore = false;
      } else if (e === "<") {
        out += "\\b(?=\\w)";
        atomBefore = false;
      } else if (e === ">") {
        out += "\\b(?<=\\w)";
        atomBefore = false;
      } else if (e === "`") {
        out += "(?<![\\s\\S])";
        atomBefore = false;
      } else if (e === "'") {
        out += "(?![\\s\\S])";
        atomBefore = false;
      } else out += jsLiteral(e);
      continue;
    }
    if (c === "[") {
      const { out: cls, next } = translateBracket(src, i + 1, negatedExtra);
      out += cls;
      i = next;
      atomBefore = true;
      continue;
    }
    if (c === "^") {
      // BRE: an anchor only at the start of the pattern or of a group or alternative
      const anchor = !bre || out === "" || out.endsWith("(") || out.endsWith("|");
      out += anchor ? "^" : "\\^";
      atomBefore = !anchor;
      i++;
      continue;
    }
    if (c === "$") {
      const rest = src.slice(i + 1);
      const anchor = !bre || rest === "" || rest.startsWith("\\)") || rest.startsWith("\\|");
      out += anchor ? "$" : "\\$";
      atomBefore = !anchor;
      i++;
      continue;
    }
    out += c === "." ? "." : jsLiteral(c);
    atomBefore = true;
    i++;
  }
  if (open.length) throw new Error("Unmatched ( or \\(");
  const jsFlags = (flags.icase ? "i" : "") + (flags.newline ? "m" : "s");
  try {
    return { regex: new RegExp(out, jsFlags), groups };
  } catch (err) {
    throw new Error(`Invalid regular expression: ${(err as Error).message}`);
  }
}
