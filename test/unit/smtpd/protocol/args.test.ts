import { describe, expect, test } from "bun:test";
import { decodeXtext, encodeXtext, parseNotify, parseOrcpt } from "../../../../src/global/message/dsn-params.ts";
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
