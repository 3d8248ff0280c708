/** The address-list parser and tokenizer against golden inputs (test/golden/address/address-lists.txt). */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { extractAddresses, parseAddressList } from "../../../../src/global/address/parse.ts";
import { tokenize } from "../../../../src/global/address/tokens.ts";
import { ROOT } from "../../../helpers/run.ts";

interface Case {
  input: string;
  addresses: string[];
  names?: string[];
  groups?: string[];
}

function readCases(): Case[] {
  const text = readFileSync(join(ROOT, "test/golden/address/address-lists.txt"), "utf8");
  const cases: Case[] = [];
  let current: Case | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    if (line.startsWith("input: ") || line === "input:") {
      current = { input: line.slice(7), addresses: [] };
      cases.push(current);
    } else if (line.startsWith("\t") && current) current.input += `\n${line}`;
    else if (line.startsWith("addresses: ")) current!.addresses = line.slice(11) === "(none)" ? [] : line.slice(11).split(" | ");
    else if (line.startsWith("names: ")) current!.names = line.slice(7).split(" | ");
    else if (line.startsWith("groups: ")) current!.groups = line.slice(8).split(" | ");
  }
  return cases;
}

describe("parseAddressList (golden)", () => {
  const cases = readCases();
  test("the golden file has cases", () => expect(cases.length).toBeGreaterThan(20));
  for (const c of cases) {
    test(JSON.stringify(c.input), () => {
      const parsed = parseAddressList(c.input);
      expect(parsed.map((a) => a.address)).toEqual(c.addresses);
      if (c.names) expect(parsed.filter((a) => a.displayName !== undefined).map((a) => a.displayName)).toEqual(c.names);
      if (c.groups) expect(parsed.map((a) => a.group ?? "-")).toEqual(c.groups);
    });
  }
});

describe("parseAddressList positions", () => {
  test("start/end point at the addr-spec, inside the brackets", () => {
    const text = 'Name <user@example.com> (c), bare@example.org';
    const [a, b] = parseAddressList(text);
    expect(text.slice(a!.start, a!.end)).toBe("user@example.com");
    expect(a!.angle).toBe(true);
    expect(a!.comments).toEqual(["(c)"]);
    expect(text.slice(b!.start, b!.end)).toBe("bare@example.org");
    expect(b!.angle).toBe(false);
  });

  test("a quoted local part spans its quotes", () => {
    const text = '"a b"@x.example';
    const [a] = parseAddressList(text);
    expect(text.slice(a!.start, a!.end)).toBe(text);
    expect(a!.address).toBe("a b@x.example");
  });

  test("extractAddresses is the addresses alone", () => {
    expect(extractAddresses("A <a@x>, b@y")).toEqual(["a@x", "b@y"]);
  });

  test("the token limit bounds the work on a hostile header", () => {
    const huge = Array.from({ length: 5000 }, (_, i) => `u${i}`).join(", ");
    expect(parseAddressList(huge).length).toBe(5000);
    expect(parseAddressList(huge, 100).length).toBeLessThanOrEqual(100);
  });
});

describe("tokenize", () => {
  test("kinds, values and source positions", () => {
    const text = '"q \\" s" atom [1.2.3.4] (c (nested)) <';
    const toks = tokenize(text);
    expect(toks.map((t) => [t.kind, t.value])).toEqual([
      ["qstring", 'q " s'],
      ["atom", "atom"],
      ["domlit", "1.2.3.4"],
      ["comment", "(c (nested))"],
      ["special", "<"],
    ]);
    for (const t of toks) expect(text.slice(t.start, t.end).length).toBeGreaterThan(0);
    expect(text.slice(toks[3]!.start, toks[3]!.end)).toBe("(c (nested))");
  });

  test("Postfix's extra operators % ! | are specials", () => {
    expect(tokenize("a%b!c|d").map((t) => t.value)).toEqual(["a", "%", "b", "!", "c", "|", "d"]);
  });

  test("an atom with an escaped special becomes a quoted string", () => {
    expect(tokenize("a\\@b")).toEqual([{ kind: "qstring", value: "a@b", start: 0, end: 4 }]);
  });

  test("folding inside a quoted string becomes spaces", () => {
    expect(tokenize('"a\n\tb"')[0]!.value).toBe("a  b");
  });
});

describe("no address holds a line break or NUL", () => {
  test("escaped or quoted CR, LF and NUL become spaces or separators", () => {
    for (const text of ["a\\\nb@x", '"a\r\nb"@x', "a\0b@x", "[1.2\n.3.4]", "a\\\0b"]) {
      for (const a of parseAddressList(text)) expect(a.address).not.toMatch(/[\r\n\0]/);
    }
    expect(extractAddresses("a\\\nb@x")).toEqual(["a b@x"]);
    expect(extractAddresses("a\0b@x")).toEqual(["a", "b@x"]);
  });
});
