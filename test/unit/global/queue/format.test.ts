/**
 * Regression cases the queue-file fuzz target (test/fuzz/queue-file.test.ts)
 * found: values the encoder writes must read back, whatever Unicode they hold.
 */
import { expect, test } from "bun:test";
import { CorruptQueueFileError, decodeQueueFile, encodeQueueFile, type QueueFile } from "../../../../src/global/queue/format.ts";

function file(attributes: Record<string, string>): QueueFile {
  return { arrivalTime: 1, sender: "a@example.test", recipients: [{ address: "b@example.test" }], attributes, content: Buffer.from("Subject: x\n\nbody\n") };
}

test("attribute values holding Unicode blanks read back (an EHLO name with byte 0xA0 made smtpd's queue file corrupt)", () => {
  // smtpd reads command lines as latin1 and keeps 8-bit HELO names when SMTPUTF8 is on: "EHLO a\xa0b" is helo=a\u00a0b;
  // sendmail -F writes whatever full name the user gives
  const attributes = { helo: "a\u00a0b", full_name: "J\u2028Doe\u0085\u3000\ufeff", sasl_username: "\u2029\u1680" };
  expect(decodeQueueFile(encodeQueueFile(file(attributes))).attributes).toEqual(attributes);
});

test("an attribute value with a raw ASCII control is still corrupt (the encoder escapes them all)", () => {
  for (const raw of ["a\tb", "a\rb", "a\x0bb", "a\x0cb", "a\x7fb"]) {
    const bytes = Buffer.from(`postern-queue 1\nT 1\nS a\nA full_name ${raw}\nR b\nM 0\n\nE\n`);
    expect(() => decodeQueueFile(bytes)).toThrow(CorruptQueueFileError);
  }
});

test('an attribute named "__proto__" is kept as an attribute, not taken as the prototype', () => {
  const attributes = Object.fromEntries([["__proto__", "x"], ["constructor", "y"]]);
  const back = decodeQueueFile(encodeQueueFile(file(attributes))).attributes;
  expect(Object.entries(back)).toEqual([["__proto__", "x"], ["constructor", "y"]]);
  expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
});

// an ORCPT whose xtext octets are not UTF-8 is kept with one lone surrogate per octet (dsn-params.ts); UTF-8 has
// no form for a lone surrogate (it was written as U+FFFD and relayed as +EF+BF+BD), so the file escapes it
test("an ORCPT holding lone surrogates reads back as it was, and older escapes read the same", () => {
  const f: QueueFile = { ...file({}), recipients: [{ address: "b@example.test", orcpt: "rfc822;j\udcfcrgen\ud800%u\udcc3@example.test" }] };
  const bytes = encodeQueueFile(f);
  expect(Buffer.from(bytes).toString("latin1")).toContain("orcpt=rfc822;j%uDCFCrgen%uD800%25u%uDCC3@example.test");
  expect(decodeQueueFile(bytes).recipients[0]!.orcpt).toBe("rfc822;j\udcfcrgen\ud800%u\udcc3@example.test");
  // a well-formed pair is UTF-8 as before; "%25uDCFC" (written by any version for the text "%uDCFC") stays text
  expect(decodeQueueFile(encodeQueueFile({ ...f, recipients: [{ address: "b", orcpt: "rfc822;😀%uDCFC" }] })).recipients[0]!.orcpt).toBe("rfc822;😀%uDCFC");
});
