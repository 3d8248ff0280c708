/**
 * The LDAP filter encoder and the escaping of keys: what a key can and
 * cannot do to a filter, byte for byte.
 */
import { describe, expect, test } from "bun:test";
import { BerReader } from "../../../../../src/global/tables/ldap/ber.ts";
import { encodeFilter, escapeDnValue, escapeFilterValue } from "../../../../../src/global/tables/ldap/filter.ts";

/** The BER of an equality match, for comparison. */
function equality(attr: string, value: Buffer): Buffer {
  const a = Buffer.from(attr);
  const body = Buffer.concat([Buffer.from([0x04, a.length]), a, Buffer.from([0x04, value.length]), value]);
  return Buffer.concat([Buffer.from([0xa3, body.length]), body]);
}

describe("escaping", () => {
  test("* ( ) \\ and NUL become \\XX in a filter value; everything else stays", () => {
    expect(escapeFilterValue("a*b(c)d\\e\0f@x.y")).toBe("a\\2Ab\\28c\\29d\\5Ce\\00f@x.y");
  });
  test("white space and \"#+,;<>\\ become \\XX in a DN value", () => {
    expect(escapeDnValue('a b,c=d+e"f#g;h<i>j\\k')).toBe("a\\20b\\2Cc=d\\2Be\\22f\\23g\\3Bh\\3Ci\\3Ej\\5Ck");
  });
});

describe("encodeFilter", () => {
  test("an escaped key is one equality value, whatever it holds", () => {
    for (const key of ["*", "x)(uid=*", "a\0*", "\\2a", "é@example.com"]) {
      expect(encodeFilter(`(mail=${escapeFilterValue(key)})`)).toEqual(equality("mail", Buffer.from(key, "utf8")));
    }
  });
  test("without escaping, * would have been a presence or substring filter (what the escaping prevents)", () => {
    expect(encodeFilter("(mail=*)")[0]).toBe(0x87);
    expect(encodeFilter("(mail=a*b)")[0]).toBe(0xa4);
  });
  test("and, or, not, >=, <=, ~= and a filter without parentheses", () => {
    const f = new BerReader(encodeFilter("(&(|(a=1)(b>=2))(!(c<=3))(d~=4))"));
    const and = f.readConstructed(0xa0);
    const or = and.readConstructed(0xa1);
    expect(or.read().tag).toBe(0xa3);
    expect(or.read().tag).toBe(0xa5);
    expect(and.readConstructed(0xa2).read().tag).toBe(0xa6);
    expect(and.read().tag).toBe(0xa8);
    expect(encodeFilter("mail=x")).toEqual(encodeFilter("(mail=x)"));
  });
  test("malformed filters and extensible matches are refused", () => {
    for (const bad of ["(mail=x", "(mail=x))", "(=x)", "(m ail=x)", "(mail:dn:=x)", "(mail=\\zz)", "(&)", "(a>=x*)", `${"(!".repeat(40)}(a=b)${")".repeat(40)}`]) {
      expect(() => encodeFilter(bad)).toThrow();
    }
  });
});
