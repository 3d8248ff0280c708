/**
 * pcre: specifics: Postfix's flag letters over PCRE syntax, the constructs
 * translated to JavaScript, and the ones refused (the rule is skipped).
 */
import { describe, expect, test } from "bun:test";
import { compilePcre, type PcreFlags } from "../../../../src/global/tables/pcre-regex.ts";
import { RegexpTable } from "../../../../src/global/tables/regexp-table.ts";

const DEFAULT: PcreFlags = { icase: true, multiline: false, dotall: false, extended: false, anchored: false, dollarEndOnly: false, ungreedy: false };
const m = (re: string, key: string, flags: Partial<PcreFlags> = {}) => {
  const r = compilePcre(re, { ...DEFAULT, ...flags }).regex;
  r.lastIndex = 0;
  return r.exec(key)?.[0];
};

describe("PCRE to JavaScript translation", () => {
  test("$ matches before a final newline unless E, as PCRE's default", () => {
    expect(m("abc$", "abc\n")).toBe("abc");
    expect(m("abc$", "abc\n", { dollarEndOnly: true })).toBeUndefined();
    expect(m("abc$", "abc\nx")).toBeUndefined();
  });
  test("\\A \\z \\Z anchor at the subject's ends", () => {
    expect(m("\\Aab", "ab")).toBe("ab");
    expect(m("\\Aab", "xab")).toBeUndefined();
    expect(m("ab\\z", "ab\n")).toBeUndefined();
    expect(m("ab\\Z", "ab\n")).toBe("ab");
  });
  test("x ignores white space and comments outside classes", () => {
    expect(m("a b # comment\n c [ ]", "abc ", { extended: true })).toBe("abc ");
  });
  test("U swaps greediness", () => {
    expect(m("a+", "aaa", { ungreedy: true })).toBe("a");
    expect(m("a+?", "aaa", { ungreedy: true })).toBe("aaa");
  });
  test("A anchors at the start", () => {
    expect(m("b", "ab", { anchored: true })).toBeUndefined();
    expect(m("a", "ab", { anchored: true })).toBe("a");
  });
  test("inline options reach the end of their group, across alternatives", () => {
    const cs = { icase: false };
    expect(m("a(?i)b", "aB", cs)).toBe("aB");
    expect(m("a(?i)b", "AB", cs)).toBeUndefined();
    expect(m("x(?i)a|b", "B", cs)).toBe("B");
    expect(m("(?i:a)b", "Ab", cs)).toBe("Ab");
    expect(m("(?i:a)b", "AB", cs)).toBeUndefined();
  });
  test("\\Q...\\E, named groups in Python style, POSIX classes, ] first", () => {
    expect(m("\\Qa.b*\\E", "a.b*")).toBe("a.b*");
    expect(m("\\Qa.b*\\E", "axbb")).toBeUndefined();
    expect(m("(?P<n>a)(?P=n)", "aa")).toBe("aa");
    expect(m("[[:digit:]]+", "x42")).toBe("42");
    expect(m("[]x]+", "]x]")).toBe("]x]");
  });
  test("refused constructs throw", () => {
    for (const re of ["(?>a)", "a*+", "(?R)", "(?(1)a|b)", "a\\Kb", "\\p{L}"]) {
      expect(() => compilePcre(re, DEFAULT)).toThrow();
    }
  });
});

describe("pcre: tables", () => {
  test("flags are Postfix's letters; refused rules are skipped, others kept", async () => {
    const t = new RegexpTable("pcre:inline", "pcre", "{ {/(?>atomic)/ never}, {/^Exact$/i case}, {/^a.b$/s dotall}, {/^(\\w+)@(\\w+)$/ $2:$1} }");
    expect(await t.lookup("atomic")).toBeUndefined();
    expect(await t.lookup("exact")).toBeUndefined();
    expect(await t.lookup("Exact")).toBe("case");
    expect(await t.lookup("a\nb")).toBe("dotall");
    expect(await t.lookup("user@host")).toBe("host:user");
  });
  test("an unknown flag letter skips the rule", async () => {
    const t = new RegexpTable("pcre:inline", "pcre", "{ {/x/q bad}, {/x/ good} }");
    expect(await t.lookup("x")).toBe("good");
  });
});
