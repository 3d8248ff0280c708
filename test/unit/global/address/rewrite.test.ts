/** Quoting, canonicalization and in-place header rewriting (golden: test/golden/address/header-rewrite.txt). */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { canonicalizeAddress, type CanonicalOptions } from "../../../../src/global/address/canonical.ts";
import { foldAddressHeader, rewriteAddressHeader } from "../../../../src/global/address/header-rewrite.ts";
import { externalizeAddress, formatDisplayName, isQualified, localPartNeedsQuotes, quoteLocalPart, splitAddress } from "../../../../src/global/address/quote.ts";
import { ROOT } from "../../../helpers/run.ts";

const LOCAL: CanonicalOptions = {
  context: "local",
  myorigin: "origin.example",
  mydomain: "example.org",
  appendAtMyorigin: true,
  appendDotMydomain: false,
  swapBangpath: true,
  allowPercentHack: true,
  remoteDomain: "",
};

describe("quoting", () => {
  test("splitAddress splits at the last @", () => {
    expect(splitAddress("a@b@c.example")).toEqual({ local: "a@b", domain: "c.example" });
    expect(splitAddress("user")).toEqual({ local: "user", domain: "" });
  });

  test("isQualified: any @ counts, as for Postfix", () => {
    expect(isQualified("user")).toBe(false);
    expect(isQualified("user@example.com")).toBe(true);
    expect(isQualified("user@")).toBe(true);
  });

  test("local parts that need quotes", () => {
    for (const l of ["", "a b", ".a", "a.", "a..b", "a@b", 'a"b', "a,b", "a\tb", "a(b"]) expect(localPartNeedsQuotes(l)).toBe(true);
    for (const l of ["a", "a.b.c", "a+tag", "o'brien", "jöhn", "a%b", "a!b"]) expect(localPartNeedsQuotes(l)).toBe(false);
  });

  test("quoteLocalPart escapes quotes and backslashes", () => {
    expect(quoteLocalPart('a "b" \\c')).toBe('"a \\"b\\" \\\\c"');
    expect(quoteLocalPart("plain")).toBe("plain");
  });

  test("externalizeAddress quotes only the local part", () => {
    expect(externalizeAddress("a b@x.example")).toBe('"a b"@x.example');
    expect(externalizeAddress("@route1")).toBe('""@route1');
    expect(externalizeAddress("a@b@c")).toBe('"a@b"@c');
    expect(externalizeAddress("user")).toBe("user");
  });

  test("formatDisplayName: Postfix's From: full name", () => {
    // each expected value is what Postfix 3.7 wrote for sendmail -F with that name
    expect(formatDisplayName("Plain Name")).toBe("Plain Name");
    expect(formatDisplayName("  spaced   out  ")).toBe("spaced out");
    expect(formatDisplayName("A. B. Smith")).toBe('"A. B. Smith"');
    expect(formatDisplayName('Jöhn "Q" Doe')).toBe('"Jöhn \\"Q\\" Doe"');
    expect(formatDisplayName("x(y)z")).toBe('"x(y)z"');
    expect(formatDisplayName("back\\slash")).toBe('"back\\\\slash"');
    expect(formatDisplayName("at@sign")).toBe('"at@sign"');
    expect(formatDisplayName("Full, Name (x)")).toBe('"Full, Name (x)"');
    expect(formatDisplayName("=?utf-8?q?J=C3=B6?=")).toBe("=?utf-8?q?J=C3=B6?=");
  });

  test("formatDisplayName never lets a line break through", () => {
    expect(formatDisplayName("Evil\r\nBcc: victim@example.com")).toBe('"Evil Bcc: victim@example.com"');
    expect(formatDisplayName("a\x00b")).toBe("a b");
  });
});

describe("canonicalizeAddress, local context", () => {
  const cases: Array<[string, string]> = [
    ["user", "user@origin.example"],
    ["user@example.com", "user@example.com"],
    ["", ""],
    ["@a,@b:user@c.example", "user@c.example"],
    ["@route:user", "user@origin.example"],
    ["site!user", "user@site"],
    ["a!b!user", "b!user@a"],
    ["joe%other.example", "joe@other.example"],
    ["a%b%c", "a%b@c"],
    ["trailing@dot.example.", "trailing@dot.example"],
    ["user@[192.0.2.1]", "user@[192.0.2.1]"],
    ["user@", "user@"],
    ["a b", "a b@origin.example"],
  ];
  for (const [input, want] of cases) test(`${JSON.stringify(input)} -> ${want}`, () => expect(canonicalizeAddress(input, LOCAL)).toBe(want));

  test("append_at_myorigin = no leaves unqualified addresses alone", () => {
    expect(canonicalizeAddress("user", { ...LOCAL, appendAtMyorigin: false })).toBe("user");
  });

  test("swap_bangpath and allow_percent_hack can be turned off", () => {
    const off = { ...LOCAL, swapBangpath: false, allowPercentHack: false };
    expect(canonicalizeAddress("site!user", off)).toBe("site!user@origin.example");
    expect(canonicalizeAddress("a%b", off)).toBe("a%b@origin.example");
  });

  test("append_dot_mydomain completes single-label domains", () => {
    const on = { ...LOCAL, appendDotMydomain: true };
    expect(canonicalizeAddress("user@host", on)).toBe("user@host.example.org");
    expect(canonicalizeAddress("user", on)).toBe("user@origin.example");
    expect(canonicalizeAddress("user@[192.0.2.1]", on)).toBe("user@[192.0.2.1]");
  });

  test("remote context: only remote_header_rewrite_domain, and nothing when it is empty", () => {
    const remote = { ...LOCAL, context: "remote" as const };
    expect(canonicalizeAddress("user", remote)).toBe("user");
    expect(canonicalizeAddress("site!user", { ...remote, remoteDomain: "remote.example" })).toBe("site!user@remote.example");
  });
});

interface RewriteCase {
  title: string;
  input: string;
  expected: string;
}

function readRewriteCases(): RewriteCase[] {
  const text = readFileSync(join(ROOT, "test/golden/address/header-rewrite.txt"), "utf8");
  return text
    .split(/^=== /m)
    .slice(1)
    .map((block) => {
      const [title, ...rest] = block.split("\n");
      const body = rest.join("\n").replace(/\n+$/, "");
      const [input, expected] = body.split("\n---\n");
      return { title: title!, input: input!, expected: expected! };
    });
}

describe("rewriteAddressHeader (golden)", () => {
  const cases = readRewriteCases();
  test("the golden file has cases", () => expect(cases.length).toBeGreaterThan(15));
  for (const c of cases) {
    test(c.title, () => {
      const r = rewriteAddressHeader(c.input, (a) => canonicalizeAddress(a, LOCAL));
      expect(r.text).toBe(c.expected);
      expect(r.changed).toBe(c.input !== c.expected);
    });
  }
});

describe("foldAddressHeader", () => {
  test("joins addresses while the line stays under 70 characters", () => {
    const many = Array.from({ length: 8 }, (_, i) => `user${i}@example.com`).join(", ");
    const folded = foldAddressHeader("To", ` ${many}`);
    const lines = folded.split("\n");
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines) expect(l.replace(/^\t/, "").length).toBeLessThan(70);
    expect(lines.slice(1).every((l) => l.startsWith("\t"))).toBe(true);
    expect(folded.replace(/\n\t/g, " ")).toBe(`To: ${many}`);
  });

  test("only ASCII blanks are trimmed: an address starting or ending with U+00A0 or U+2028 keeps it (found by test/fuzz/address.test.ts)", () => {
    expect(foldAddressHeader("To", " \u00a0user@example.com, b@example.com\u2028")).toBe("To: \u00a0user@example.com, b@example.com\u2028");
    const r = rewriteAddressHeader("To: \u00a0", (a) => `${a}@rewritten.example`);
    expect(r.text).toBe("To: \u00a0@rewritten.example");
  });

  test("a single long address stays on one line", () => {
    const long = `${"x".repeat(90)}@example.com`;
    expect(foldAddressHeader("To", ` ${long}`)).toBe(`To: ${long}`);
  });
});
