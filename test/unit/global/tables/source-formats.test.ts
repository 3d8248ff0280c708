/**
 * The source formats under the tables: logical lines, postmap's
 * `key value`, and the aliases(5) format with Postfix's value rewriting.
 * The golden files in test/golden/tables/ pair an input with what Postfix
 * 3.7's `postmap -s` / `postalias -s` print for it (sorted; Postfix's own
 * YP_* bookkeeping entries left out).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { logicalLines } from "../../../../src/global/tables/logical-lines.ts";
import { parsePostmapSource, splitKeyValue } from "../../../../src/global/tables/postmap-format.ts";
import { parseAliasSource, splitAliasLine } from "../../../../src/global/tables/alias-format.ts";
import { normalizeAliasValue, splitAliasValue } from "../../../../src/global/tables/alias-tokens.ts";
import { ROOT } from "../../../helpers/run.ts";

const golden = (name: string) => readFileSync(join(ROOT, "test/golden/tables", name), "utf8");

/** What `-s` prints after a build: first of duplicate (folded) keys wins, then sorted as the golden file is. */
function dumpSorted(entries: Array<{ key: string; value: string }>, sep: string, extra: Array<[string, string]> = []): string {
  const map = new Map<string, string>();
  for (const e of entries) if (!map.has(e.key.toLowerCase())) map.set(e.key.toLowerCase(), e.value);
  for (const [k, v] of extra) map.set(k, v);
  const lines = [...map].map(([k, v]) => `${k}${sep}${v}`);
  return lines.sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : 1)).join("\n") + "\n";
}

describe("logical lines", () => {
  test("comments, blank lines, continuations, CRLF, orphan continuation", () => {
    const warnings: string[] = [];
    const lines = logicalLines("  orphan\na 1\n\n  # c\n  2\r\n#x\nb\t3  \n", (m) => warnings.push(m));
    expect(lines).toEqual([
      { line: 2, text: "a 1  2" },
      { line: 7, text: "b\t3" },
    ]);
    expect(warnings).toEqual(['logical line must not start with whitespace: "  orphan"']);
  });
});

describe("postmap format", () => {
  test("quoted keys keep their quotes and may hold white space", () => {
    expect(splitKeyValue('"foo bar"@x.com  v 1 ')).toEqual({ key: '"foo bar"@x.com', value: "v 1" });
    expect(splitKeyValue('"a\\"b" qq')).toEqual({ key: '"a\\"b"', value: "qq" });
    expect(splitKeyValue("only")).toEqual({ problem: "expected format: key whitespace value" });
    expect(splitKeyValue('"open x')).toEqual({ problem: `unbalanced '"' in '"open x' -- ignoring this line` });
  });

  test("golden: the same entries as Postfix's postmap", () => {
    const warnings: string[] = [];
    const entries = parsePostmapSource(golden("postmap.input"), (line, m) => warnings.push(`line ${line}: ${m}`));
    expect(dumpSorted(entries, "\t")).toBe(golden("postmap.expected"));
    expect(warnings).toEqual([
      "line 9: expected format: key whitespace value",
      `line 14: unbalanced '"' in '"unterm x y' -- ignoring this line`,
      "line 15: expected format: key whitespace value",
    ]);
  });
});

describe("aliases format", () => {
  test("name: value splitting and Postfix's complaints", () => {
    expect(splitAliasLine('"Quoted Name" : a ,b')).toEqual({ key: "Quoted Name", value: "a, b" });
    expect(splitAliasLine("x")).toEqual({ problem: "need name:value pair" });
    expect(splitAliasLine("x:")).toEqual({ problem: "need name:value pair" });
    expect(splitAliasLine("x@y: z")).toEqual({ problem: "name must be local" });
  });

  test("golden: the same entries and values as Postfix's postalias", () => {
    const warnings: string[] = [];
    const entries = parseAliasSource(golden("aliases.input"), (line, m) => warnings.push(`line ${line}: ${m}`));
    expect(dumpSorted(entries, ":\t", [["@", "@"]])).toBe(golden("aliases.expected"));
    expect(warnings).toEqual(["line 10: need name:value pair", "line 11: name must be local", "line 12: need name:value pair"]);
  });

  test("destinations in internal form, as local delivery expands them", () => {
    expect(splitAliasValue('admin, "|/usr/bin/foo  bar", /var/log/x, :include:/etc/list')).toEqual([
      "admin",
      "|/usr/bin/foo  bar",
      "/var/log/x",
      ":include:/etc/list",
    ]);
    expect(splitAliasValue("Full Name <fn@example.com>, x (comment),, |cmd arg")).toEqual(["fn@example.com", "x", "|cmd arg"]);
    expect(splitAliasValue('"quoted local"@x, \\root')).toEqual(["quoted local@x", "root"]);
  });

  test("normalizing twice changes nothing", () => {
    for (const line of golden("aliases.expected").split("\n").filter(Boolean)) {
      const value = line.slice(line.indexOf(":\t") + 2);
      expect(normalizeAliasValue(value)).toBe(value);
    }
  });
});
