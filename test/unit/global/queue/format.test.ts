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
