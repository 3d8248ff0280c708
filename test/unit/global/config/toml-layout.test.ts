import { describe, expect, test } from "bun:test";
import { parse } from "smol-toml";
import { scanLayout, splitDottedKey } from "../../../../src/global/config/toml-layout.ts";

/** path -> [startLine, endLine] */
function spans(text: string): Record<string, [number, number]> {
  parse(text); // every fixture here is valid TOML, as the scanner assumes
  return Object.fromEntries(scanLayout(text).entries.map((e) => [e.path, [e.startLine, e.endLine]]));
}

describe("splitDottedKey", () => {
  test("bare, quoted and spaced parts", () => {
    expect(splitDottedKey("listen")).toEqual(["listen"]);
    expect(splitDottedKey("services.smtp.listen")).toEqual(["services", "smtp", "listen"]);
    expect(splitDottedKey(' services . "smtp.x" . \'a b\' ')).toEqual(["services", "smtp.x", "a b"]);
    expect(splitDottedKey('"a\\"b".c')).toEqual(['a"b', "c"]);
  });
});

describe("scanLayout", () => {
  test("one-line pairs, comments and blank lines", () => {
    const text = "# comment\nmyhostname = \"a\"\n\n  mydomain = 'b' # trailing\n";
    expect(spans(text)).toEqual({ myhostname: [2, 2], mydomain: [4, 4] });
    expect(scanLayout(text).lineCount).toBe(5);
  });

  test("a multi-line array spans its lines, comments and brackets in strings included", () => {
    const text = [
      "mynetworks = [", // 1
      '  "127.0.0.0/8",   # loopback ]', // 2
      '  "[::1]/128",', // 3
      "  # a comment line ]]", // 4
      "]", // 5
      "next = 1", // 6
    ].join("\n");
    expect(spans(text)).toEqual({ mynetworks: [1, 5], next: [6, 6] });
  });

  test("nested arrays and inline tables", () => {
    const text = 'a = [[1, 2], [\n3]]\nb = { x = "}", y = [1] }\nc = 3\n';
    expect(spans(text)).toEqual({ a: [1, 2], b: [3, 3], c: [4, 4] });
  });

  test("multi-line basic and literal strings", () => {
    const text = [
      'smtpd_banner = """', // 1
      "line with # and [ and ' and \\\"\"\" escaped", // 2
      '"""', // 3
      "literal = '''", // 4
      'C:\\path\\ "quoted" ]', // 5
      "'''", // 6
      'closing_quotes = """ends with two quotes"""""', // 7
      'continued = """a \\', // 8
      '  b"""', // 9
      "last = true", // 10
    ].join("\n");
    expect(spans(text)).toEqual({ smtpd_banner: [1, 3], literal: [4, 6], closing_quotes: [7, 7], continued: [8, 9], last: [10, 10] });
  });

  test("a one-line string with brackets, quotes of the other kind and '#'", () => {
    const text = "a = \"x [ { # ' y\"\nb = 'p \"] q'\nc = 1\n";
    expect(spans(text)).toEqual({ a: [1, 1], b: [2, 2], c: [3, 3] });
  });

  test("tables set the prefix of the keys under them", () => {
    const text = [
      "top = 1", // 1
      "", // 2
      "[services.smtp]", // 3
      'listen = "127.0.0.1:2525"', // 4
      "", // 5
      '[ services . "submission" ]  # spaced and quoted', // 6
      "process_limit = 4", // 7
      "[[array]]", // 8
      "x = 1", // 9
    ].join("\n");
    const layout = scanLayout(text);
    expect(spans(text)).toEqual({ top: [1, 1], "services.smtp.listen": [4, 4], "services.submission.process_limit": [7, 7], "array.x": [9, 9] });
    expect(layout.tables).toEqual([
      { name: "services.smtp", line: 3, array: false },
      { name: "services.submission", line: 6, array: false },
      { name: "array", line: 8, array: true },
    ]);
    expect(layout.entries.find((e) => e.key === "listen")).toMatchObject({ table: "services.smtp", key: "listen" });
  });

  test("dotted keys at the top level and inside a table", () => {
    expect(spans('services.smtp.listen = "25"\n[other]\nsubmission.listen = "587"\n')).toEqual({
      "services.smtp.listen": [1, 1],
      "other.submission.listen": [3, 3],
    });
    expect(spans('[services]\nsmtp.listen = "25"\n')).toEqual({ "services.smtp.listen": [2, 2] });
  });

  test("quoted keys, and an '=' inside a quoted key", () => {
    const text = '"odd key" = 1\n"a=b" = 2\n';
    expect(spans(text)).toEqual({ "odd key": [1, 1], "a=b": [2, 2] });
  });

  test("a trailing comment after the value is recorded with its blanks; one inside an array is not", () => {
    const text = 'a = "x"   # why\nb = [\n 1, # inside\n]  # after\nc = 1\n';
    const entries = scanLayout(text).entries;
    expect(entries.map((e) => e.trailingComment)).toEqual(["   # why", "  # after", undefined]);
  });

  test("CRLF line endings", () => {
    const text = "a = 1\r\nb = [\r\n 2,\r\n]\r\nc = 'x' # c\r\n";
    expect(spans(text)).toEqual({ a: [1, 1], b: [2, 4], c: [5, 5] });
    expect(scanLayout(text).entries[2]!.trailingComment).toBe(" # c");
  });

  test("a last line without a newline, and an empty document", () => {
    expect(spans("a = 1\nb = 2")).toEqual({ a: [1, 1], b: [2, 2] });
    expect(scanLayout("")).toEqual({ entries: [], tables: [], lineCount: 1 });
  });
});
