/**
 * regexp: specifics, checked against what Postfix 3.7's postmap answers for
 * the same files (the expected values below were taken from
 * `postmap -q KEY regexp:FILE` runs): POSIX syntax with Postfix's flags,
 * if/endif nesting, negation, $1 substitution, continuation lines, and the
 * warnings for rules Postfix skips.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RegexpTable } from "../../../../src/global/tables/regexp-table.ts";
import { compilePosix } from "../../../../src/global/tables/posix-regex.ts";
import { log } from "../../../../src/util/log.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";

const dir = tempDir("postern-regexp-");
afterAll(() => {
  log.configure({ tag: "postfix/test", stderrProgram: "test" });
  removeDir(dir);
});

/** Opens a regexp table over `lines` and returns it with the warnings its parsing logged. */
async function table(name: string, lines: string[], opts = {}): Promise<{ t: RegexpTable; warnings: string[] }> {
  const path = join(dir, name);
  const logPath = join(dir, `${name}.log`);
  writeFileSync(path, lines.join("\n") + "\n");
  writeFileSync(logPath, "");
  log.configure({ tag: "postfix/test", file: logPath });
  const t = new RegexpTable(`regexp:${path}`, "regexp", path, opts);
  await t.lookup("force the file to be read");
  log.configure({ tag: "postfix/test", stderrProgram: "test" });
  const warnings = readFileSync(logPath, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => l.replace(/^.*?warning: /, "").replace(`regexp map ${path}, `, ""));
  return { t, warnings };
}

describe("regexp: as Postfix answers", async () => {
  const { t, warnings } = await table("re1", [
    "# regexp",
    "/^(.*)-outgoing@(.*)$/   550 Use ${1}@${2} instead  ",
    "/^Case@/I   case-sensitive  ",
    "/^case2@/   insensitive",
    "!/@/   no at sign $$ here",
    "if /\\.example\\.com$/",
    "/^a(b)?c@/   matched [$1] [$(1)]",
    "/^x/ x-inside",
    "endif",
    "/^y(z+)/",
    "  continued $1",
    "/[[:digit:]]{3}/ three digits",
    "/^a\\.b\\\\c/ backslash",
    "~^tilde~ tilde",
    "/^sp ace/ space in pattern",
  ]);
  const cases: Array<[string, string | undefined]> = [
    ["list-outgoing@ex.org", "550 Use list@ex.org instead"],
    ["Case@x", undefined],
    ["CASE2@x", "insensitive"],
    ["noat", "no at sign $ here"],
    ["ac@foo.example.com", "matched [] []"],
    ["abc@foo.example.com", "matched [b] [b]"],
    ["xx@foo.example.com", "x-inside"],
    ["xx@bar", undefined],
    ["yzzz@q", "continued zzz"],
    ["q123@", "three digits"],
    ["a.b\\c@", "backslash"],
    ["tilde@", "tilde"],
    ["SP ACE@", "space in pattern"],
  ];
  for (const [key, want] of cases) {
    test(`${JSON.stringify(key)} -> ${JSON.stringify(want)}`, async () => {
      expect(await t.lookup(key)).toBe(want);
    });
  }
  test("an unknown flag skips its rule with Postfix's warning", () => {
    expect(warnings).toEqual(['line 3: unknown regexp option "I": skipping this rule']);
  });
});

describe("regexp: flags, nesting and skipped rules", async () => {
  const { t, warnings } = await table("re2", [
    "/^Case@/i   case-sensitive",
    "/^multi$/m  multi",
    "/^ext(a|b)+$/x  extended-toggle",
    "/bre\\(x\\)\\{2\\}/x  bre $1",
    "/^dot.x/   dot",
    "if /^nested/",
    "if /deep$/",
    "/./ nested-deep",
    "endif",
    "/./ nested-only",
    "endif",
    "endif",
    "/(a)/ $2 out of range",
    "!/(a)/ $1 negated",
    "/unclosed(/ unclosed",
    "/nores/",
    "if /^z/ extra",
    "/z/ zz",
  ]);
  const cases: Array<[string, string | undefined]> = [
    ["Case@x", "case-sensitive"],
    ["case@x", undefined],
    ["a\nmulti\nb", "multi"],
    ["ext(a|b)+", "extended-toggle"],
    ["extabab", undefined],
    ["brexx", "bre x"],
    ["dot\nx", "dot"],
    ["nesteddeep", "nested-deep"],
    ["nestedfoo", "nested-only"],
    ["zq", "zz"],
    ["nores", ""],
    ["a", undefined],
  ];
  for (const [key, want] of cases) {
    test(`${JSON.stringify(key)} -> ${JSON.stringify(want)}`, async () => {
      expect(await t.lookup(key)).toBe(want);
    });
  }
  test("skipped rules are reported as Postfix reports them", () => {
    expect(warnings).toEqual([
      "line 12: ignoring ENDIF without matching IF",
      'line 13: out of range replacement index "2": skipping this rule',
      "line 14: $number found in negative match replacement text: skipping this rule",
      "line 15: Unmatched ( or \\(: skipping this rule",
      "line 16: no replacement text: using empty string",
      'line 17: ignoring extra text after IF statement: "extra"',
      "line 17: do not prepend whitespace to statements between IF and ENDIF",
      "line 17: IF has no matching ENDIF",
    ]);
  });
});

describe("regexp: result substitution syntax", async () => {
  const { t, warnings } = await table("re6", ["/a/ $1", "/(b)/ ${1", "/(c)/ $(1}", "/(d)/ $x $", "/(e)/ ${10}", "/(f)(g)?/ [$1|$2|$$]", "/(h)/ $1x"]);
  test("bad references skip their rule", async () => {
    for (const k of ["a", "b", "c", "d", "e"]) expect(await t.lookup(k)).toBeUndefined();
    expect(warnings.slice(0, 5)).toEqual([
      'line 1: out of range replacement index "1": skipping this rule',
      "line 2: bad replacement syntax: skipping this rule",
      "line 3: bad replacement syntax: skipping this rule",
      'line 4: non-numeric replacement index "x": skipping this rule',
      'line 5: out of range replacement index "10": skipping this rule',
    ]);
  });
  test("a group that did not take part substitutes nothing; $$ is a dollar", async () => {
    expect(await t.lookup("f")).toBe("[f||$]");
  });
  test("$1x names group '1x', as in Postfix (write ${1}x)", () => {
    expect(warnings[5]).toBe('line 7: non-numeric replacement index "1x": skipping this rule');
  });
});

describe("regexp: local(8)'s no-substitution mode", () => {
  test("rules with $n are skipped, others kept", async () => {
    const { t, warnings } = await table("noregsub", ["/^(.*)@x$/ $1", "/^plain$/ fixed"], { noRegsub: true });
    expect(await t.lookup("u@x")).toBeUndefined();
    expect(await t.lookup("plain")).toBe("fixed");
    expect(warnings).toEqual(["line 1: regular expression substitution is not allowed: skipping this rule"]);
  });
});

describe("regexp: tables follow their file", () => {
  test("an edited file is re-read", async () => {
    const { t } = await table("edited", ["/^a$/ first"]);
    expect(await t.lookup("a")).toBe("first");
    writeFileSync(join(dir, "edited"), "/^a$/ second, a longer line\n");
    let v: string | undefined;
    for (let i = 0; i < 50 && v !== "second, a longer line"; i++) {
      await Bun.sleep(100);
      v = await t.lookup("a");
    }
    expect(v).toBe("second, a longer line");
  });

  test("regexp:{ {rule}, {rule} } holds its rules inline", async () => {
    const t = new RegexpTable("regexp:inline", "regexp", "{ {/^a(.)/ A$1}, { /^b/  with spaces } }");
    expect(await t.lookup("ax")).toBe("Ax");
    expect(await t.lookup("b")).toBe("with spaces");
    expect(await t.lookup("c")).toBeUndefined();
    expect(t.owner()).toEqual({ status: "trusted", uid: 0 });
  });
});

describe("POSIX to JavaScript translation", () => {
  const m = (re: string, key: string, flags = { icase: true, newline: false, extended: true }) => compilePosix(re, flags).regex.exec(key)?.[0];
  test("bracket expressions: ] first, literal backslash, classes", () => {
    expect(m("[]a]+", "]a]")).toBe("]a]");
    expect(m("[\\]+", "\\\\")).toBe("\\\\");
    expect(m("[[:alpha:][:digit:]_]+", "ab_1-")).toBe("ab_1");
    expect(m("[^[:space:]]+", "ab c")).toBe("ab");
  });
  test("GNU escapes and word boundaries", () => {
    expect(m("\\<foo\\>", "a foo b")).toBe("foo");
    expect(m("\\<foo\\>", "afoo")).toBeUndefined();
    expect(m("\\w+", "ab-c")).toBe("ab");
  });
  test("an unknown escape is the character itself, as glibc does", () => {
    expect(m("\\d", "d")).toBe("d");
    expect(m("\\d", "5")).toBeUndefined();
  });
  test("stacked quantifiers mean what POSIX says, not lazy matching", () => {
    expect(m("a+?", "aaa")).toBe("aaa");
    expect(m("ba+?", "b")).toBe("b");
  });
  test("a leading * is literal", () => {
    expect(m("*a", "x*a")).toBe("*a");
  });
  test("REG_NEWLINE: dot and negated lists stop at newlines", () => {
    const nl = { icase: true, newline: true, extended: true };
    expect(m("a.b", "a\nb", nl)).toBeUndefined();
    expect(m("a[^x]b", "a\nb", nl)).toBeUndefined();
    expect(m("a[^x]b", "a\nb")).toBe("a\nb");
  });
  test("BRE: \\( \\) group, ( ) + ? are literal, ^ is literal inside", () => {
    const bre = { icase: true, newline: false, extended: false };
    expect(compilePosix("\\(a\\)(b)+", bre).regex.exec("a(b)+")?.[1]).toBe("a");
    expect(m("x^y", "x^y", bre)).toBe("x^y");
    expect(m("a\\{2\\}", "aaa", bre)).toBe("aa");
  });
  test("invalid patterns throw regcomp-like messages", () => {
    expect(() => compilePosix("a(", { icase: true, newline: false, extended: true })).toThrow("Unmatched ( or \\(");
    expect(() => compilePosix("[a", { icase: true, newline: false, extended: true })).toThrow("Unmatched [");
    expect(() => compilePosix("a)", { icase: true, newline: false, extended: true })).toThrow("Unmatched ) or \\)");
    expect(() => compilePosix("\\1(a)", { icase: true, newline: false, extended: true })).toThrow("Invalid back reference");
  });
});
