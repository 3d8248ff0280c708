/**
 * Fuzz target: RFC 5322 address parsing (src/global/address/): the tokenizer,
 * parseAddressList, quoting between internal and external form, and header
 * rewriting in place. The text is untrusted (message headers, sendmail
 * arguments). Properties: any text parses without an exception, with every
 * address at a real place in the source and never holding a line break or a
 * NUL; an address formatted and parsed again is the same address; a header
 * rewritten in place still parses to the rewritten addresses and stays one
 * header (every line break is a fold).
 */
import { describe, expect, test } from "bun:test";
import { rewriteAddressHeader } from "../../src/global/address/header-rewrite.ts";
import { parseAddressList } from "../../src/global/address/parse.ts";
import { externalizeAddress, formatDisplayName } from "../../src/global/address/quote.ts";
import { tokenize } from "../../src/global/address/tokens.ts";
import { expectOnly, fc, fuzz, TEST_TIMEOUT_MS } from "./fuzz.ts";
import { awkwardText, textFrom } from "./strings.ts";

/** A local part of any characters but the blanks and NUL that parsing turns into spaces (documented). */
const localPart = fc.oneof(
  textFrom([..."abcxyz019.-_+=/'&%!|#$^{}~`"], 12, 1),
  awkwardText(16).map((s) => s.replace(/[\t\r\n\0]/g, "")),
);
const domain = fc.oneof(
  fc.array(textFrom([..."abcxyz019-"], 8, 1), { minLength: 1, maxLength: 4 }).map((l) => l.join(".")),
  fc.tuple(fc.nat(255), fc.nat(255)).map(([a, b]) => `[192.0.${a}.${b}]`),
  fc.constant("[IPv6:2001:db8::1]"),
);
/** Internal form: split at the last "@", so a local part without a domain holds none. */
const address = fc.tuple(localPart, fc.option(domain, { nil: undefined })).map(([l, d]) => (d === undefined ? l.replace(/@/g, "") : `${l}@${d}`));

/** One address as a header writes it: bare, or in brackets with a display name, with comments. */
const written = fc
  .record({
    address,
    name: fc.option(awkwardText(20).map((n) => formatDisplayName(n)), { nil: undefined }),
    comment: fc.option(textFrom([..."abc xyz"], 10).map((c) => `(${c})`), { nil: undefined }),
    angle: fc.boolean(),
  })
  .map((a) => {
    const ext = externalizeAddress(a.address);
    const angle = a.angle || a.name !== undefined || a.address === "" || /^"/.test(ext);
    const text = angle ? `${a.name ? `${a.name} ` : ""}<${ext}>` : ext;
    return { address: a.address, text: a.comment ? `${text} ${a.comment}` : text };
  });

describe("address parsing", () => {
  test("any text parses without an exception; addresses sit in the source and hold no line break or NUL", () => {
    const text = fc.oneof(awkwardText(120), textFrom([..."<>@,;:\"\\()[]. a\n\t%!"], 80));
    fuzz(0xadd1, 2500, fc.tuple(text, fc.nat(40)), ([input, limit]) => {
      const tokens = expectOnly(() => tokenize(input, limit));
      if (tokens instanceof Error) throw tokens;
      if (limit > 0) expect(tokens.length).toBeLessThanOrEqual(limit);
      let last = 0;
      for (const t of tokens) {
        expect(t.start).toBeGreaterThanOrEqual(last);
        expect(t.end).toBeGreaterThan(t.start);
        expect(t.end).toBeLessThanOrEqual(input.length);
        last = t.end;
      }
      const list = expectOnly(() => parseAddressList(input, limit));
      if (list instanceof Error) throw list;
      for (const a of list) {
        expect(a.address).not.toMatch(/[\r\n\0]/);
        expect(0 <= a.start && a.start <= a.end && a.end <= input.length).toBe(true);
      }
    });
  }, TEST_TIMEOUT_MS);

  test("an address formatted and parsed again is the same address", () => {
    fuzz(0xadd2, 2500, address, (a) => {
      const ext = externalizeAddress(a);
      const back = parseAddressList(`<${ext}>`).map((p) => p.address);
      expect(back).toEqual([a]);
      if (a !== "" && !ext.startsWith('"')) expect(parseAddressList(ext).map((p) => p.address)).toEqual([a]);
    });
  }, TEST_TIMEOUT_MS);

  test("a list of written addresses parses back to the addresses, in order", () => {
    fuzz(0xadd3, 1500, fc.array(written, { minLength: 1, maxLength: 5 }), (list) => {
      const header = list.map((w) => w.text).join(", ");
      expect(parseAddressList(header).map((p) => p.address)).toEqual(list.map((w) => w.address));
    });
  }, TEST_TIMEOUT_MS);

  test("a header rewritten in place parses to the rewritten addresses and stays one header", () => {
    const rename = (a: string) => (a.includes("@") ? `${a}.rewritten` : `${a}@rewritten.example`);
    const fold = fc.constantFrom(" ", "\n ", "\n\t", "  ");
    fuzz(0xadd4, 1500, fc.tuple(fc.array(fc.tuple(written, fold), { minLength: 1, maxLength: 6 }), fc.constantFrom("To", "Cc", "From")), ([list, name]) => {
      const value = list.map(([w, f]) => `${f}${w.text}`).join(",");
      const result = rewriteAddressHeader(`${name}:${value}`, rename);
      expect(result.changed).toBe(true);
      expect(result.text.startsWith(`${name}:`)).toBe(true);
      // every line break is a fold: the rewritten header cannot start a new header line
      expect(result.text).not.toMatch(/\n(?![ \t])/);
      const after = parseAddressList(result.text.slice(name.length + 1));
      expect(after.map((p) => p.address)).toEqual(list.map(([w]) => rename(w.address)));
    });
  }, TEST_TIMEOUT_MS);

  test("any header rewritten in place stays one header", () => {
    // folded garbage: every line break followed by a blank, as a header arrives
    const value = awkwardText(120).map((v) => v.replace(/\r/g, "").replace(/\n(?![ \t])/g, "\n "));
    fuzz(0xadd5, 1500, value, (v) => {
      const result = expectOnly(() => rewriteAddressHeader(`To:${v}`, (a) => `${a}x`, 200));
      if (result instanceof Error) throw result;
      expect(result.text).not.toMatch(/\n(?![ \t])/);
    });
  }, TEST_TIMEOUT_MS);

  test("a header of the largest size, any pattern repeated, parses and rewrites in time linear in its size", () => {
    // 30 KB of "<a>" took 37 s before segmentAddresses stopped slicing the rest of the header once per
    // address (and 3.5 s with the default token limit); now about 0.3 s. The ceiling is far above that.
    const check = (u: string) => {
      const text = u.repeat(Math.ceil(30_000 / u.length));
      for (const limit of [0, 10240]) {
        const list = expectOnly(() => parseAddressList(text, limit));
        if (list instanceof Error) throw list;
      }
      const r = expectOnly(() => rewriteAddressHeader(`To:${text}`, (a) => `${a}x`, 10240));
      if (r instanceof Error) throw r;
    };
    for (const u of ["<a>", "<a> (c) ", "x <y@z> ", "<<a>"]) fuzz(0xadd6, 1, fc.constant(u), check, 10_000);
    fuzz(0xadd7, 6, textFrom([..."<>a ,():;@\"x"], 6, 1), check, 10_000);
  }, TEST_TIMEOUT_MS);
});
