/**
 * regexp: and pcre: tables — rule files of `/pattern/flags result` lines,
 * with `!/pattern/`, `if /pattern/` ... `endif`, and $1 substitution in
 * results (rule-file.ts, result-template.ts). The delimiter is the first
 * character of the pattern (any non-alphanumeric, not white space); a
 * backslash before it keeps it in the pattern. regexp: patterns are POSIX
 * (posix-regex.ts), pcre: patterns PCRE (pcre-regex.ts), both run as
 * JavaScript RegExp. Matching is case-insensitive unless a rule toggles `i`.
 *
 * `regexp:{ {rule}, {rule} }` holds its rules in the specification itself
 * (Postfix 3.7). File tables are re-read when the file changes, checked by a
 * stat before each lookup.
 *
 * Runs in daemons and commands; the file is untrusted text (bad rules are
 * skipped with a warning, never fatal).
 */
import { readFileSync } from "node:fs";
import { log } from "../../util/log.ts";
import { compilePcre } from "./pcre-regex.ts";
import { compilePosix, type CompiledRegex } from "./posix-regex.ts";
import { expandTemplate, parseTemplate } from "./result-template.ts";
import { evaluateRules, parseRuleFile, type Pattern, type Rule, type RuleSyntax } from "./rule-file.ts";
import { ReloadingFile } from "./reloading-file.ts";
import { TRUSTED_OWNER, TableError, ownerOfUid, type Table, type TableOptions, type TableOwner } from "./table.ts";
import { inlineRuleText } from "./inline-table.ts";

export type RegexDialect = "regexp" | "pcre";

const FLAG_LETTERS: Record<RegexDialect, string> = { regexp: "imx", pcre: "imsxAEUX" };

class RegexPattern implements Pattern {
  constructor(
    readonly compiled: CompiledRegex,
  ) {}

  exec(key: string): RegExpExecArray | null {
    this.compiled.regex.lastIndex = 0; // the sticky flag (pcre's A) matches at lastIndex
    return this.compiled.regex.exec(key);
  }
}

function compile(dialect: RegexDialect, source: string, toggled: string): CompiledRegex {
  const has = (f: string) => [...toggled].filter((x) => x === f).length % 2 === 1;
  if (dialect === "regexp") return compilePosix(source, { icase: !has("i"), newline: has("m"), extended: !has("x") });
  return compilePcre(source, {
    icase: !has("i"),
    multiline: has("m"),
    dotall: has("s"),
    extended: has("x"),
    anchored: has("A"),
    dollarEndOnly: has("E"),
    ungreedy: has("U"),
  });
}

function ruleSyntax(dialect: RegexDialect, noRegsub: boolean): RuleSyntax<RegexPattern> {
  return {
    parsePattern(text) {
      const delim = text[0];
      if (delim === undefined || /[A-Za-z0-9\s]/.test(delim)) return { problem: `no regexp delimiter found: skipping this rule` };
      let i = 1;
      for (; i < text.length; i++) {
        if (text[i] === "\\") {
          if (i + 1 < text.length) i++;
        } else if (text[i] === delim) break;
      }
      if (i >= text.length) return { problem: `no closing regexp delimiter "${delim}": skipping this rule` };
      const source = text.slice(1, i);
      let j = i + 1;
      while (j < text.length && !/\s/.test(text[j]!)) j++;
      const flags = text.slice(i + 1, j);
      for (const f of flags) {
        if (!FLAG_LETTERS[dialect].includes(f)) return { problem: `unknown ${dialect} option "${f}": skipping this rule` };
      }
      try {
        return { pattern: new RegexPattern(compile(dialect, source, flags)), rest: text.slice(j) };
      } catch (err) {
        return { problem: `${(err as Error).message}: skipping this rule` };
      }
    },
    parseResult(rest, pattern, negate, warn) {
      if (rest === "") warn("no replacement text: using empty string");
      const t = parseTemplate(rest, pattern.compiled.groups);
      if ("problem" in t) return t;
      if (t.substitutes && negate) return { problem: "$number found in negative match replacement text: skipping this rule" };
      if (t.substitutes && noRegsub) return { problem: "regular expression substitution is not allowed: skipping this rule" };
      if (!t.substitutes) {
        const text = expandTemplate(t, null);
        return { result: () => text };
      }
      return { result: (m) => expandTemplate(t, m === true ? null : m) };
    },
  };
}

export class RegexpTable implements Table {
  readonly kind = "pattern";
  readonly #file: ReloadingFile<Rule[]> | undefined;
  readonly #inline: Rule[] | undefined;
  #closed = false;

  constructor(
    readonly spec: string,
    readonly dialect: RegexDialect,
    name: string,
    options: TableOptions = {},
  ) {
    const syntax = ruleSyntax(dialect, options.noRegsub === true);
    const warn = (m: string) => log.warn(m);
    const inline = inlineRuleText(name);
    if (inline !== undefined) {
      this.#inline = parseRuleFile(inline, `${dialect} map ${name}`, syntax, warn);
    } else {
      this.#file = new ReloadingFile(spec, name, "file", (path) => parseRuleFile(readFileSync(path, "utf8"), `${dialect} map ${path}`, syntax, warn));
    }
  }

  async lookup(key: string): Promise<string | undefined> {
    if (this.#closed) throw new TableError(this.spec, "table is closed");
    return evaluateRules(this.#inline ?? this.#file!.current(), key);
  }

  owner(): TableOwner {
    return this.#file ? ownerOfUid(this.#file.stamp().uid) : TRUSTED_OWNER;
  }

  close(): void {
    this.#closed = true;
    this.#file?.close();
  }
}
