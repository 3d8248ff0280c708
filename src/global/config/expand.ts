/**
 * Postfix's `$name` expansion (postconf(5), "parameter expansion"):
 * `$name`, `${name}`, `$(name)`, `$$`, `${name?value}`, `${name:value}`,
 * `${name?{value}}`, `${name?{v1}:{v2}}`, and the 3.x comparisons
 * `${{a} == {b} ? {v1} : {v2}}` with `==` `!=` and the `number`/`level`
 * relational forms (`<level`, `>=number`, ...).
 *
 * Input is configuration text, trusted as much as the file it came from;
 * recursion is detected and reported instead of looping.
 */

export type RawLookup = (name: string) => string | undefined;

export class ExpansionError extends Error {}

const NAME = /^[A-Za-z0-9_]+/;

/** Index of the bracket closing the one at `open`, or -1. */
function findClose(s: string, open: number): number {
  const opener = s[open]!;
  const closer = opener === "{" ? "}" : ")";
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === opener) depth++;
    else if (s[i] === closer && --depth === 0) return i;
  }
  return -1;
}

/** The numbers of a level such as "3.6.1"; undefined when one is not a number. Plain loops: every command compares levels at start. */
function levelParts(level: string): number[] | undefined {
  const parts = level.trim().split(".");
  const out: number[] = [];
  for (const part of parts) {
    const n = Number(part);
    if (!Number.isFinite(n)) return undefined;
    out.push(n);
  }
  return out;
}

/** Compares compatibility levels such as "2", "3.6", "3.6.1" component by component. */
export function compareLevels(a: string, b: string): number {
  const pa = levelParts(a);
  const pb = levelParts(b);
  if (pa === undefined || pb === undefined) throw new ExpansionError(`invalid compatibility level: "${a}" or "${b}"`);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** How a name was used: `$name`/`${name}`, `${name?...}` or `${name:...}`. */
export type ReferenceKind = "plain" | "?" | ":";

export interface ExpanderOptions {
  /** Looked-up values are final text, never expanded again (local(8)'s $user, $home, ...). */
  literal?: boolean;
  /** Hears of every reference with its value (undefined when there is none). */
  onReference?: (name: string, kind: ReferenceKind, value: string | undefined) => void;
}

export class Expander {
  #stack: string[] = [];

  /** `onUndefined` hears of each `$name` that has no value at all (postconf -x warns, as Postfix's does). */
  constructor(
    readonly lookup: RawLookup,
    readonly onUndefined?: (name: string) => void,
    readonly options: ExpanderOptions = {},
  ) {}

  /** Fully expands the value of parameter `name` (undefined when it has none). */
  expandParam(name: string): string | undefined {
    if (this.#stack.includes(name)) {
      const chain = [...this.#stack.slice(this.#stack.indexOf(name)), name].join(" -> $");
      this.#stack = [];
      throw new ExpansionError(`recursive parameter expansion: $${chain}`);
    }
    // Pushed before the lookup: a computed default (mydomain from $myhostname) expands
    // other names while it is looked up, and a loop through it must name the whole chain.
    this.#stack.push(name);
    try {
      const raw = this.lookup(name);
      return raw === undefined || this.options.literal ? raw : this.expand(raw);
    } finally {
      this.#stack.pop();
    }
  }

  /** A `$name` inside a value: unknown names expand to nothing. */
  #reference(name: string, kind: ReferenceKind): string {
    const value = this.expandParam(name);
    if (value === undefined) this.onUndefined?.(name);
    this.options.onReference?.(name, kind, value);
    return value ?? "";
  }

  expand(text: string): string {
    let out = "";
    let i = 0;
    while (i < text.length) {
      const dollar = text.indexOf("$", i);
      if (dollar < 0) {
        out += text.slice(i);
        break;
      }
      out += text.slice(i, dollar);
      const next = text[dollar + 1];
      if (next === "$") {
        out += "$";
        i = dollar + 2;
      } else if (next === "{" || next === "(") {
        const close = findClose(text, dollar + 1);
        if (close < 0) throw new ExpansionError(`missing '${next === "{" ? "}" : ")"}' in "${text}"`);
        out += this.#expandBraced(text.slice(dollar + 2, close));
        i = close + 1;
      } else {
        const m = NAME.exec(text.slice(dollar + 1));
        if (!m) {
          out += "$";
          i = dollar + 1;
        } else {
          out += this.#reference(m[0], "plain");
          i = dollar + 1 + m[0].length;
        }
      }
    }
    return out;
  }

  /** The inside of `${...}`. */
  #expandBraced(inner: string): string {
    if (inner.startsWith("{")) return this.#expandComparison(inner);
    const m = NAME.exec(inner);
    if (!m) throw new ExpansionError(`invalid parameter name in "\${${inner}}"`);
    const name = m[0];
    const rest = inner.slice(name.length);
    if (rest === "") return this.#reference(name, "plain");
    const op = rest[0];
    if (op !== "?" && op !== ":") throw new ExpansionError(`invalid expression "\${${inner}}"`);
    const value = this.#reference(name, op);
    const [whenSet, whenUnset] = this.#alternatives(rest.slice(1), op);
    return value !== "" ? this.expand(whenSet) : this.expand(whenUnset);
  }

  /** For `?{a}:{b}`, `?text`, `:text`: the texts used when the name is set and when it is not. */
  #alternatives(rest: string, op: string): [string, string] {
    if (rest.startsWith("{")) {
      const close = findClose(rest, 0);
      if (close < 0) throw new ExpansionError(`missing '}' in "${rest}"`);
      const first = rest.slice(1, close);
      const after = rest.slice(close + 1).trim();
      if (after === "") return op === "?" ? [first, ""] : ["", first];
      if (op === "?" && after.startsWith(":")) {
        const second = after.slice(1).trim();
        if (second.startsWith("{") && findClose(second, 0) === second.length - 1) return [first, second.slice(1, -1)];
      }
      throw new ExpansionError(`invalid expression after "{${first}}": "${after}"`);
    }
    return op === "?" ? [rest, ""] : ["", rest];
  }

  /** `{a} OP {b} ? {v1} : {v2}` */
  #expandComparison(inner: string): string {
    const parts: string[] = [];
    let i = 0;
    const take = () => {
      while (inner[i] === " " || inner[i] === "\t") i++;
      if (inner[i] !== "{") throw new ExpansionError(`expected '{' in "\${${inner}}"`);
      const close = findClose(inner, i);
      if (close < 0) throw new ExpansionError(`missing '}' in "\${${inner}}"`);
      const text = inner.slice(i + 1, close);
      i = close + 1;
      return text;
    };
    const skipSpace = () => {
      while (inner[i] === " " || inner[i] === "\t") i++;
    };
    parts.push(take());
    skipSpace();
    const opMatch = /^(==|!=|<=|>=|<|>)(number|level)?/.exec(inner.slice(i));
    if (!opMatch) throw new ExpansionError(`unknown operator in "\${${inner}}"`);
    i += opMatch[0].length;
    parts.push(take());
    skipSpace();
    if (inner[i] !== "?") throw new ExpansionError(`expected '?' in "\${${inner}}"`);
    i++;
    const whenTrue = take();
    skipSpace();
    let whenFalse = "";
    if (inner[i] === ":") {
      i++;
      whenFalse = take();
      skipSpace();
    }
    if (i !== inner.length) throw new ExpansionError(`unexpected text in "\${${inner}}"`);
    const a = this.expand(parts[0]!).trim();
    const b = this.expand(parts[1]!).trim();
    const [, op, kind] = opMatch;
    let cmp: number;
    if (kind === "level") cmp = compareLevels(a, b);
    else if (kind === "number") {
      if (!/^\d+$/.test(a) || !/^\d+$/.test(b)) throw new ExpansionError(`non-numeric operand in "\${${inner}}"`);
      cmp = Number(a) - Number(b);
    } else if (op === "==" || op === "!=") cmp = a === b ? 0 : 1;
    else throw new ExpansionError(`operator "${op}" needs "number" or "level" in "\${${inner}}"`);
    const truth =
      op === "==" ? cmp === 0 : op === "!=" ? cmp !== 0 : op === "<" ? cmp < 0 : op === "<=" ? cmp <= 0 : op === ">" ? cmp > 0 : cmp >= 0;
    return this.expand(truth ? whenTrue : whenFalse);
  }
}
