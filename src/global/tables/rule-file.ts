/**
 * The rule-list structure shared by regexp:, pcre: and cidr: files:
 * `pattern result`, `!pattern result`, and `if pattern` ... `endif` blocks
 * (nested, `if !pattern` too), applied in file order until a rule matches.
 * The backend parses its own patterns and results; this module keeps the
 * structure and Postfix's warnings ("ignoring ENDIF without matching IF",
 * "IF has no matching ENDIF", extra text after IF or ENDIF).
 *
 * Deliberate difference: an IF whose pattern is invalid skips its whole
 * block (Postfix drops only the IF line, which makes the block's rules
 * unconditional).
 *
 * Input is untrusted table text; a bad rule is skipped with a warning.
 */
import { logicalLines } from "./logical-lines.ts";

/** What a pattern reports on a match: capture groups (regexp, pcre) or a bare hit (cidr). */
export type MatchResult = RegExpExecArray | true;

export interface Pattern {
  /** A match, null for no match, undefined when the key cannot be compared at all (the rule is skipped even when negated). */
  exec(key: string): MatchResult | null | undefined;
}

export type Rule =
  | { kind: "match"; line: number; negate: boolean; pattern: Pattern; result: (m: MatchResult | null) => string }
  | { kind: "if"; line: number; negate: boolean; pattern: Pattern | undefined; rules: Rule[] };

export interface RuleSyntax<P extends Pattern> {
  /** Reads a pattern at the start of `text`: the pattern and the rest of the line, or a complaint. */
  parsePattern(text: string): { pattern: P; rest: string } | { problem: string };
  /** Builds the result of a match rule from the rest of its line, or a complaint. */
  parseResult(rest: string, pattern: P, negate: boolean, warn: (message: string) => void): { result: (m: MatchResult | null) => string } | { problem: string };
}

const IF_WORD = /^if(?![A-Za-z0-9])\s*/i;
const ENDIF_WORD = /^endif(?![A-Za-z0-9])\s*/i;

/**
 * Parses a rule file. `label` starts each warning ("regexp map /etc/x"),
 * followed by ", line N: ...".
 */
export function parseRuleFile<P extends Pattern>(text: string, label: string, syntax: RuleSyntax<P>, warn: (message: string) => void): Rule[] {
  const top: Rule[] = [];
  const open: Array<Extract<Rule, { kind: "if" }>> = [];
  const at = (line: number, message: string) => warn(`${label}, line ${line}: ${message}`);
  const target = () => (open.length ? open[open.length - 1]!.rules : top);

  for (const l of logicalLines(text, (m) => warn(`${label}: ${m}`))) {
    let body = l.text;
    const endif = ENDIF_WORD.exec(body);
    if (endif) {
      if (!open.length) at(l.line, "ignoring ENDIF without matching IF");
      else open.pop();
      if (body.slice(endif[0].length).trim() !== "") at(l.line, "ignoring extra text after ENDIF");
      continue;
    }
    const iff = IF_WORD.exec(body);
    if (iff) body = body.slice(iff[0].length);
    const negate = body.startsWith("!");
    if (negate) body = body.slice(1);
    const parsed = syntax.parsePattern(body);
    if (iff) {
      const block: Extract<Rule, { kind: "if" }> = { kind: "if", line: l.line, negate, pattern: undefined, rules: [] };
      if ("problem" in parsed) at(l.line, parsed.problem);
      else {
        block.pattern = parsed.pattern;
        const extra = parsed.rest.trim();
        if (extra !== "") {
          at(l.line, `ignoring extra text after IF statement: "${extra}"`);
          at(l.line, "do not prepend whitespace to statements between IF and ENDIF");
        }
      }
      target().push(block);
      open.push(block);
      continue;
    }
    if ("problem" in parsed) {
      at(l.line, parsed.problem);
      continue;
    }
    const result = syntax.parseResult(parsed.rest.trim(), parsed.pattern, negate, (m) => at(l.line, m));
    if ("problem" in result) {
      at(l.line, result.problem);
      continue;
    }
    target().push({ kind: "match", line: l.line, negate, pattern: parsed.pattern, result: result.result });
  }
  for (const block of open) at(block.line, "IF has no matching ENDIF");
  return top;
}

/** The first matching rule's result, or undefined. */
export function evaluateRules(rules: readonly Rule[], key: string): string | undefined {
  for (const rule of rules) {
    if (rule.kind === "if") {
      const m = rule.pattern?.exec(key);
      if (m === undefined || (m !== null) === rule.negate) continue;
      const inner = evaluateRules(rule.rules, key);
      if (inner !== undefined) return inner;
      continue;
    }
    const m = rule.pattern.exec(key);
    if (m !== undefined && (m !== null) !== rule.negate) return rule.result(m);
  }
  return undefined;
}
