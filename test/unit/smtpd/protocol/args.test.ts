import { describe, expect, test } from "bun:test";
import { decodeUtf8AddrText, decodeXtext, encodeOrcpt, encodeXtext, parseNotify, parseOrcpt, validEnvid } from "../../../../src/global/message/dsn-params.ts";
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
    expect(encodeXtext("a+b=c d")).toBe("a+2Bb+3Dc+20d");
  });

  test("xtext is over UTF-8 octets, both ways (RFC 3461 section 4)", () => {
    expect(encodeXtext("ü")).toBe("+C3+BC");
    expect(encodeXtext("\u0100€")).toBe("+C4+80+E2+82+AC");
    expect(encodeXtext("😀")).toBe("+F0+9F+98+80");
    expect(decodeXtext("+C4+80+E2+82+AC")).toBe("\u0100€");
    expect(decodeXtext("j+c3+bcrgen")).toBe("jürgen"); // lower case hex, as Postfix reads it
  });

  // Postfix's xtext_unquote refuses only a "+" without two hex digits; every other octet stands for itself
  test("xtext decoding accepts what Postfix's xtext_unquote accepts, and no more", () => {
    expect(decodeXtext("a=b")).toBe("a=b");
    expect(decodeXtext("=")).toBe("=");
    expect(decodeXtext("jürgen")).toBe("jürgen"); // raw non-ASCII: its own octets
    expect(decodeXtext("a\\b~")).toBe("a\\b~");
    expect(decodeXtext("")).toBe("");
    for (const bad of ["+", "+4", "a+4", "+G0", "+0G", "++41", "+2+", "+ 41"]) expect({ bad, r: decodeXtext(bad) }).toEqual({ bad, r: undefined });
  });

  test("octets that are not UTF-8 are kept, one lone surrogate U+DC80..U+DCFF each, and written back as they came", () => {
    expect(decodeXtext("+FC")).toBe("\udcfc");
    expect(decodeXtext("j+FCrgen")).toBe("j\udcfcrgen");
    expect(encodeXtext("j\udcfcrgen")).toBe("j+FCrgen");
    // a truncated sequence, an overlong form, an encoded surrogate: each octet on its own
    for (const xtext of ["+C3", "+C3+BC+C3", "+C0+AF", "+ED+A0+80", "+F4+90+80+80", "+FF+FE", "a+80b", "+E2+82"]) {
      const text = decodeXtext(xtext)!;
      expect(text).toBeDefined();
      expect(encodeXtext(text)).toBe(xtext);
    }
    expect(decodeXtext("+C3+BC+FC")).toBe("ü\udcfc");
    // another lone surrogate has no octets of its own: U+FFFD's
    expect(encodeXtext("\ud800")).toBe("+EF+BF+BD");
  });

  test("a utf-8 ORCPT: utf-8-addr-xtext and -unitext read, utf-8-addr-xtext written (RFC 6533 section 3)", () => {
    expect(parseOrcpt("utf-8;j\\x{FC}rgen@example.org")).toBe("utf-8;jürgen@example.org");
    expect(parseOrcpt("utf-8;jürgen@example.org")).toBe("utf-8;jürgen@example.org");
    expect(parseOrcpt("UTF-8;\\x{1F600}\\x{2B}x@example.org")).toBe("UTF-8;😀+x@example.org");
    expect(encodeOrcpt("utf-8;jürgen+x=y\\z@example.org")).toBe("utf-8;j\\x{FC}rgen\\x{2B}x\\x{3D}y\\x{5C}z@example.org");
    expect(encodeOrcpt("utf-8;\u{1F600}@example.org")).toBe("utf-8;\\x{1F600}@example.org");
    expect(encodeOrcpt("rfc822;jürgen+x@example.org")).toBe("rfc822;j+C3+BCrgen+2Bx@example.org");
    expect(parseOrcpt(encodeOrcpt("rfc822;€uro@example.org"))).toBe("rfc822;€uro@example.org");
  });

  // Postfix's uxtext_unquote: "\x{" must open hex digits and "}" with a value up to U+10FFFF; all else is itself
  test("a utf-8 ORCPT decodes as Postfix's uxtext_unquote: what it accepts, what it refuses", () => {
    expect(parseOrcpt("utf-8;a\\x{0A}b")).toBe("utf-8;a\nb");
    expect(parseOrcpt("utf-8;a\\x{D800}b")).toBe("utf-8;a\ud800b");
    expect(parseOrcpt("utf-8;a\\x{00000041}")).toBe("utf-8;aA");
    expect(parseOrcpt("utf-8;a\\x{10FFFF}")).toBe("utf-8;a\u{10FFFF}");
    expect(parseOrcpt("utf-8;a\\b\\x=+@x")).toBe("utf-8;a\\b\\x=+@x"); // "\" not before "x{", "=" and "+": themselves
    expect(parseOrcpt("utf-8;")).toBe("utf-8;");
    for (const bad of ["utf-8;a\\x{}b", "utf-8;a\\x{0}", "utf-8;a\\x{110000}", "utf-8;a\\x{FC", "utf-8;a\\x{1234567}", "utf-8;a\\x{G}", "utf-8;a\\x{ 41}"]) {
      expect({ bad, r: parseOrcpt(bad) }).toEqual({ bad, r: undefined });
    }
    expect(decodeUtf8AddrText("a b")).toBe("a b");
    // what was accepted goes out as 7-bit utf-8-addr-xtext and reads back the same
    for (const kept of ["utf-8;a\nb", "utf-8;a\ud800b", "utf-8;a\\b\\x=+@x"]) {
      const wire = encodeOrcpt(kept);
      expect(wire).toMatch(/^utf-8;(?:[\x21-\x2a\x2c-\x3c\x3e-\x5b\x5d-\x7e]|\\x\{[0-9A-F]{2,6}\})*$/);
      expect(parseOrcpt(wire)).toBe(kept);
    }
  });

  test("ORCPT as Postfix's smtpd reads it: any type, xtext as Postfix reads it, only NUL refused in the address", () => {
    expect(parseOrcpt("rfc822;a+40b@example.org")).toBe("rfc822;a@b@example.org");
    expect(parseOrcpt("RFC822;x@example.org")).toBe("rfc822;x@example.org");
    expect(parseOrcpt("rfc822;a=b@example.org")).toBe("rfc822;a=b@example.org");
    expect(parseOrcpt("rfc822;jürgen@example.org")).toBe("rfc822;jürgen@example.org");
    expect(parseOrcpt("rfc822;j+FCrgen@example.org")).toBe("rfc822;j\udcfcrgen@example.org");
    expect(parseOrcpt("rfc822;a+0Ab")).toBe("rfc822;a\nb");
    expect(parseOrcpt("rfc822;")).toBe("rfc822;");
    expect(parseOrcpt("x-y=z;a;b")).toBe("x-y=z;a;b");
    expect(parseOrcpt(`rfc822;${"z".repeat(500)}`)).toBe(`rfc822;${"z".repeat(500)}`);
    for (const bad of ["x@example.org", ";x@example.org", "rfc822;a+00b", "rfc822;a+4", `rfc822;${"z".repeat(501)}`]) expect({ bad, r: parseOrcpt(bad) }).toEqual({ bad, r: undefined });
    // relayed: xtext of the very octets, so the next hop reads what we read
    for (const kept of ["rfc822;a=b@example.org", "rfc822;j\udcfcrgen@example.org", "rfc822;a\nb", "x-y=z;a;b", "rfc822;"]) {
      const wire = encodeOrcpt(kept);
      expect(wire).toMatch(/^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/);
      expect(parseOrcpt(wire)).toBe(kept.startsWith("x-y") ? "x-y+3Dz;a;b" : kept);
    }
    expect(encodeOrcpt("rfc822;j\udcfcrgen@example.org")).toBe("rfc822;j+FCrgen@example.org");
  });

  // before session 6 a utf-8 ORCPT was queued as received, "\x{FC}" and all: it goes out as it came in
  test("a utf-8 ORCPT queued undecoded by an older postern is not escaped twice", () => {
    expect(encodeOrcpt("utf-8;j\\x{FC}rgen@example.org")).toBe("utf-8;j\\x{FC}rgen@example.org");
    expect(encodeOrcpt("utf-8;j\\x{fc}rgen\\x{20AC}@example.org")).toBe("utf-8;j\\x{FC}rgen\\x{20AC}@example.org");
    expect(encodeOrcpt("utf-8;jürgen\\x{20AC}@example.org")).toBe("utf-8;j\\x{FC}rgen\\x{20AC}@example.org");
    // a "\" that is no escape, or one that would decode to NUL, is escaped as before
    expect(encodeOrcpt("utf-8;a\\b@example.org")).toBe("utf-8;a\\x{5C}b@example.org");
    expect(encodeOrcpt("utf-8;a\\x{0}@example.org")).toBe("utf-8;a\\x{5C}x{0}@example.org");
  });

  test("NOTIFY as Postfix's dsn_notify_mask reads it", () => {
    expect(parseNotify("success,Delay")).toEqual(["SUCCESS", "DELAY"]);
    expect(parseNotify("NEVER")).toEqual(["NEVER"]);
    expect(parseNotify("FAILURE,FAILURE")).toEqual(["FAILURE"]);
    expect(parseNotify(",SUCCESS,,DELAY,")).toEqual(["SUCCESS", "DELAY"]);
    for (const bad of ["NEVER,FAILURE", "", ",", "FOO", "SUCCESS,FOO"]) expect({ bad, r: parseNotify(bad) }).toEqual({ bad, r: undefined });
  });

  test("ENVID once decoded: printable ASCII or TAB, not empty (Postfix's all_isprint_tab), at most 100", () => {
    for (const ok of ["a", "a\tb", "a=b c", "x".repeat(100)]) expect(validEnvid(ok)).toBe(true);
    for (const bad of ["", "a\nb", "jürgen", "a\0b", "\udcfc", "x".repeat(101)]) expect(validEnvid(bad)).toBe(false);
  });

  test("words split into keys and values", () => {
    expect(splitParams(" size=10  SMTPUTF8 ")).toEqual([
      { key: "SIZE", value: "10", word: "size=10" },
      { key: "SMTPUTF8", value: undefined, word: "SMTPUTF8" },
    ]);
  });
});
