import { describe, expect, test } from "bun:test";
import { decodeUtf8AddrText, decodeXtext, encodeOrcpt, encodeXtext, parseNotify, parseOrcpt } from "../../../../src/global/message/dsn-params.ts";
import { parsePath, splitParams } from "../../../../src/smtpd/protocol/args.ts";

const lax = { strict: false, allowEmpty: false };

describe("paths", () => {
  test("angle addresses, the null sender, parameters after the path", () => {
    expect(parsePath("<a@example.org> SIZE=10", lax)).toEqual({ address: "a@example.org", written: "a@example.org", rest: "SIZE=10", eightBit: false });
    expect(parsePath("<>", { strict: true, allowEmpty: true })).toEqual({ address: "", written: "", rest: "", eightBit: false });
    expect(parsePath("<>", lax)).toBe("address");
    expect(parsePath("", lax)).toBe("syntax");
  });

  test("quoted local parts are unquoted; a source route is dropped", () => {
    expect(parsePath('<"a b"@example.org>', lax)).toMatchObject({ address: "a b@example.org", written: '"a b"@example.org' });
    expect(parsePath('<"user@target"@host.example>', lax)).toMatchObject({ address: "user@target@host.example" });
    expect(parsePath('<"a\\"b"@example.org>', lax)).toMatchObject({ address: 'a"b@example.org' });
    expect(parsePath("<@a.example,@b.example:user@c.example>", lax)).toMatchObject({ address: "user@c.example", written: "user@c.example" });
  });

  test("without brackets only when not strict", () => {
    expect(parsePath("a@example.org BODY=8BITMIME", lax)).toMatchObject({ address: "a@example.org", rest: "BODY=8BITMIME" });
    expect(parsePath("a@example.org", { strict: true, allowEmpty: false })).toBe("address");
  });

  test("malformed addresses", () => {
    for (const bad of ["<a b@example.org>", "<a@example.org", "<a@exa\"mple.org>", "<a@b>c>", "<\"unterminated@x>", "<a@[1.2.3.4>", "<@route-without-colon>", "<a\u0001b@x>"]) {
      expect({ bad, r: parsePath(bad, lax) }).toEqual({ bad, r: "address" });
    }
  });

  test("UTF-8 addresses are marked", () => {
    expect(parsePath("<j\u00c3\u00bcrgen@example.org>", lax)).toMatchObject({ eightBit: true });
  });
});

describe("ESMTP parameters", () => {
  test("xtext both ways", () => {
    expect(decodeXtext("abc+2Bd+3D")).toBe("abc+d=");
    expect(decodeXtext("a+2")).toBeUndefined();
    expect(decodeXtext("a=b")).toBeUndefined();
    expect(encodeXtext("a+b=c d")).toBe("a+2Bb+3Dc+20d");
  });

  test("xtext is over UTF-8 octets, both ways (RFC 3461 section 4)", () => {
    expect(encodeXtext("ü")).toBe("+C3+BC");
    expect(encodeXtext("\u0100€")).toBe("+C4+80+E2+82+AC");
    expect(encodeXtext("😀")).toBe("+F0+9F+98+80");
    expect(decodeXtext("+C4+80+E2+82+AC")).toBe("\u0100€");
    expect(decodeXtext("j+c3+bcrgen")).toBe("jürgen"); // lower case hex, as Postfix reads it
    expect(decodeXtext("+FC")).toBeUndefined(); // octets that are not UTF-8
    expect(decodeXtext("jürgen")).toBeUndefined(); // raw non-ASCII is not xtext
  });

  test("a utf-8 ORCPT: utf-8-addr-xtext and -unitext read, utf-8-addr-xtext written (RFC 6533 section 3)", () => {
    expect(parseOrcpt("utf-8;j\\x{FC}rgen@example.org")).toBe("utf-8;jürgen@example.org");
    expect(parseOrcpt("utf-8;jürgen@example.org")).toBe("utf-8;jürgen@example.org");
    expect(parseOrcpt("UTF-8;\\x{1F600}\\x{2B}x@example.org")).toBe("UTF-8;😀+x@example.org");
    for (const bad of ["utf-8;a\\x{}b", "utf-8;a\\x{110000}", "utf-8;a\\x{D800}", "utf-8;a\\x{FC", "utf-8;a\\x{0A}b", "utf-8;a\\x{1234567}"]) {
      expect({ bad, r: parseOrcpt(bad) }).toEqual({ bad, r: undefined });
    }
    expect(decodeUtf8AddrText("a b")).toBeUndefined();
    expect(encodeOrcpt("utf-8;jürgen+x=y\\z@example.org")).toBe("utf-8;j\\x{FC}rgen\\x{2B}x\\x{3D}y\\x{5C}z@example.org");
    expect(encodeOrcpt("utf-8;\u{1F600}@example.org")).toBe("utf-8;\\x{1F600}@example.org");
    expect(encodeOrcpt("rfc822;jürgen+x@example.org")).toBe("rfc822;j+C3+BCrgen+2Bx@example.org");
    expect(parseOrcpt(encodeOrcpt("rfc822;€uro@example.org"))).toBe("rfc822;€uro@example.org");
  });

  test("NOTIFY and ORCPT", () => {
    expect(parseNotify("success,Delay")).toEqual(["SUCCESS", "DELAY"]);
    expect(parseNotify("NEVER")).toEqual(["NEVER"]);
    expect(parseNotify("NEVER,FAILURE")).toBeUndefined();
    expect(parseNotify("FAILURE,FAILURE")).toBeUndefined();
    expect(parseOrcpt("rfc822;a+40b@example.org")).toBe("rfc822;a@b@example.org");
    expect(parseOrcpt("RFC822;x@example.org")).toBe("rfc822;x@example.org");
    expect(parseOrcpt("x@example.org")).toBeUndefined();
    expect(parseOrcpt("rfc822;")).toBeUndefined();
  });

  test("words split into keys and values", () => {
    expect(splitParams(" size=10  SMTPUTF8 ")).toEqual([
      { key: "SIZE", value: "10", word: "size=10" },
      { key: "SMTPUTF8", value: undefined, word: "SMTPUTF8" },
    ]);
  });
});
