/**
 * PCRE patterns (Postfix's pcre: tables) translated to JavaScript RegExp,
 * which shares most of PCRE's syntax. The flags are Postfix's letters, each
 * toggling a default: i (case-insensitive, on), m (multi-line), s (dot
 * matches newline), x (extended: white space and #comments ignored),
 * A (anchored at the start), E (`$` only at the very end), U (ungreedy),
 * X (PCRE_EXTRA, accepted and ignored).
 *
 * Translated: `$` matching before a final newline (PCRE's default without
 * E), \A \z \Z \G, \Q...\E, \h \H \R \e \a \x{hh}, (?#comments), (?P<name>),
 * (?P=name), \g{n}, \k{name}, inline options (?imsx-imsx) and (?imsx:...),
 * POSIX [:classes:] inside brackets, `]` first in a bracket, x-mode
 * white space, and U's swapped greediness.
 *
 * Refused (the rule is skipped with a warning): atomic groups (?>...),
 * possessive quantifiers (a*+), recursion, conditionals, branch reset,
 * callouts, \K, \p{...} properties and backtracking verbs. JavaScript has no
 * equivalent that keeps group numbers intact.
 *
 * The pattern is untrusted table text; errors are thrown as Error.
 */
import { jsLiteral, translateBracket, type CompiledRegex } from "./posix-regex.ts";

export interface PcreFlags {
  icase: boolean;
  multiline: boolean;
  dotall: boolean;
  extended: boolean;
  anchored: boolean;
  dollarEndOnly: boolean;
  ungreedy: boolean;
}

const UNSUPPORTED = (what: string) => new Error(`${what} is not supported by postern's pcre: (JavaScript regular expressions)`);

function hexEscape(code: number): string {
  if (code <= 0xffff) return `\\u${code.toString(16).padStart(4, "0")}`;
  const c = code - 0x10000;
  return `(?:\\u${(0xd800 + (c >> 10)).toString(16)}\\u${(0xdc00 + (c & 0x3ff)).toString(16)})`;
}

export function compilePcre(pattern: string, flags: PcreFlags): CompiledRegex {
  const src = pattern;
  let out = "";
  let groups = 0;
  // One entry per open group: whether x-mode was on outside it, and how many
  // synthetic "(?flags:" wrappers opened by inline options must close with it.
  const stack: Array<{ extended: boolean; multiline: boolean; wrappers: string[] }> = [];
  let extended = flags.extended;
  let multiline = flags.multiline;
  let wrappers: string[] = [];
  let quantifiable = false;

  const afterQuantifier = (i: number): number => {
    // possessive forms have no JavaScript equivalent
    if (src[i] === "+") throw UNSUPPORTED("a possessive quantifier");
    const lazy = src[i] === "?";
    if (flags.ungreedy !== lazy) out += "?";
    return lazy ? i + 1 : i;
  };

  for (let i = 0; i < src.length; ) {
    const c = src[i]!;
    if (extended && /\s/.test(c)) {
      i++;
      continue;
    }
    if (extended && c === "#") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    if (c === "\\") {
      if (i + 1 >= src.length) throw new Error("\\ at end of pattern");
      const e = src[i + 1]!;
      i += 2;
      quantifiable = true;
      switch (e) {
        case "Q": {
          const end = src.indexOf("\\E", i);
          const lit = end < 0 ? src.slice(i) : src.slice(i, end);
          out += [...lit].map(jsLiteral).join("");
          i = end < 0 ? src.length : end + 2;
          break;
        }
        case "E":
          break;
        case "A":
        case "G":
          out += "(?<![\\s\\S])";
          quantifiable = false;
          break;
        case "z":
          out += "(?![\\s\\S])";
          quantifiable = false;
          break;
        case "Z":
          out += "(?=\\n?(?![\\s\\S]))";
          quantifiable = false;
          break;
        case "h":
          out += "[\\t \\xa0]";
          break;
        case "H":
          out += "[^\\t \\xa0]";
          break;
        case "R":
          out += "(?:\\r\\n|[\\n\\v\\f\\r\\x85\\u2028\\u2029])";
          break;
        case "e":
          out += "\\x1b";
          break;
        case "a":
          out += "\\x07";
          break;
        case "x": {
          if (src[i] === "{") {
            const end = src.indexOf("}", i);
            const code = end < 0 ? NaN : parseInt(src.slice(i + 1, end), 16);
            if (!Number.isFinite(code)) throw new Error("malformed \\x{...} escape");
            out += hexEscape(code);
            i = end + 1;
          } else out += "\\x";
          break;
        }
        case "g":
        case "k": {
          const m = /^(?:\{(-?\w+)\}|<(\w+)>|'(\w+)'|(-?\d+))/.exec(src.slice(i));
          if (!m) throw new Error(`malformed \\${e} reference`);
          const ref = m[1] ?? m[2] ?? m[3] ?? m[4]!;
          i += m[0].length;
          if (/^-?\d+$/.test(ref)) {
            const n = Number(ref) < 0 ? groups + 1 + Number(ref) : Number(ref);
            if (n < 1) throw new Error("reference to non-existent subpattern");
            out += `\\${n}`;
          } else out += `\\k<${ref}>`;
          break;
        }
        case "K":
          throw UNSUPPORTED("\\K");
        case "p":
        case "P":
        case "X":
        case "C":
        case "N":
          throw UNSUPPORTED(`\\${e}`);
        case "b":
        case "B":
          out += `\\${e}`;
          quantifiable = false;
          break;
        default:
          out += `\\${e}`;
      }
      continue;
    }
    if (c === "[") {
      const { out: cls, next } = translateBracket(src, i + 1, "", true);
      out += cls;
      i = next;
      quantifiable = true;
      continue;
    }
    if (c === "(") {
      if (src[i + 1] !== "?") {
        groups++;
        stack.push({ extended, multiline, wrappers });
        wrappers = [];
        out += "(";
        i++;
        quantifiable = false;
        continue;
      }
      const rest = src.slice(i + 2);
      if (rest.startsWith("#")) {
        const end = src.indexOf(")", i);
        i = end < 0 ? src.length : end + 1;
        continue;
      }
      let m: RegExpExecArray | null;
      if ((m = /^P?<(\w+)>/.exec(rest)) || (m = /^'(\w+)'/.exec(rest))) {
        groups++;
        stack.push({ extended, multiline, wrappers });
        wrappers = [];
        out += `(?<${m[1]}>`;
        i += 2 + m[0].length;
        quantifiable = false;
        continue;
      }
      if ((m = /^P=(\w+)\)/.exec(rest))) {
        out += `\\k<${m[1]}>`;
        i += 2 + m[0].length;
        quantifiable = true;
        continue;
      }
      if (rest.startsWith(":") || rest.startsWith("=") || rest.startsWith("!") || rest.startsWith("<=") || rest.startsWith("<!")) {
        const head = rest.startsWith("<") ? rest.slice(0, 2) : rest[0]!;
        stack.push({ extended, multiline, wrappers });
        wrappers = [];
        out += `(?${head}`;
        i += 2 + head.length;
        quantifiable = false;
        continue;
      }
      if ((m = /^([imsxUJX]*)(?:-([imsxUJX]*))?([:)])/.exec(rest))) {
        const on = m[1]!;
        const off = m[2] ?? "";
        const js = (s: string) => [...s].filter((f) => "ims".includes(f)).join("");
        const mod = js(on) + (js(off) ? `-${js(off)}` : "");
        const closesHere = m[3] === ")";
        if (!closesHere) stack.push({ extended, multiline, wrappers });
        if (!closesHere) wrappers = [];
        if (on.includes("x")) extended = true;
        if (off.includes("x")) extended = false;
        if (on.includes("m")) multiline = true;
        if (off.includes("m")) multiline = false;
        if (on.includes("U") || off.includes("U")) throw UNSUPPORTED("an inline U option");
        if (closesHere) {
          // (?i) applies to the rest of the enclosing group: open a modifier group closed with it
          if (mod) {
            out += `(?${mod}:`;
            wrappers.push(mod);
          }
        } else out += mod ? `(?${mod}:` : "(?:";
        i += 2 + m[0].length;
        quantifiable = false;
        continue;
      }
      if (rest.startsWith(">")) throw UNSUPPORTED("an atomic group");
      if (rest.startsWith("|")) throw UNSUPPORTED("a branch reset group");
      if (rest.startsWith("(")) throw UNSUPPORTED("a conditional group");
      if (rest.startsWith("C")) throw UNSUPPORTED("a callout");
      throw UNSUPPORTED("recursion or this group syntax");
    }
    if (c === ")") {
      const top = stack.pop();
      if (!top) throw new Error("unmatched closing parenthesis");
      out += ")".repeat(wrappers.length + 1);
      ({ extended, multiline, wrappers } = top);
      i++;
      quantifiable = true;
      continue;
    }
    if (c === "|") {
      // an inline option reaches the later alternatives too: close its wrappers around the "|" and reopen them
      out += ")".repeat(wrappers.length) + "|" + wrappers.map((w) => `(?${w}:`).join("");
      i++;
      quantifiable = false;
      continue;
    }
    if (c === "*" || c === "+" || c === "?") {
      if (!quantifiable) throw new Error("quantifier does not follow a repeatable item");
      out += c;
      i = afterQuantifier(i + 1);
      quantifiable = false;
      continue;
    }
    if (c === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(i));
      if (m && quantifiable) {
        out += m[0];
        i = afterQuantifier(i + m[0].length);
        quantifiable = false;
        continue;
      }
      out += "\\{";
      i++;
      quantifiable = true;
      continue;
    }
    if (c === "$") {
      out += multiline || flags.dollarEndOnly ? "$" : "(?=\\n?(?![\\s\\S]))";
      i++;
      quantifiable = false;
      continue;
    }
    if (c === "^") {
      out += "^";
      i++;
      quantifiable = false;
      continue;
    }
    out += c === "." ? "." : c === "/" || c === "]" || c === "}" ? `\\${c}` : c;
    i++;
    quantifiable = true;
  }
  if (stack.length) throw new Error("missing closing parenthesis");
  out += ")".repeat(wrappers.length);
  const jsFlags = (flags.icase ? "i" : "") + (flags.multiline ? "m" : "") + (flags.dotall ? "s" : "") + (flags.anchored ? "y" : "");
  try {
    return { regex: new RegExp(out, jsFlags), groups };
  } catch (err) {
    throw new Error((err as Error).message);
  }
}
