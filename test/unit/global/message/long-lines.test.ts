/**
 * Lines broken before signing must be exactly what the SMTP client would
 * send: after breakLongLines the client finds nothing to break, and the
 * bytes on the wire are the same as without it.
 */
import { expect, test } from "bun:test";
import { breakLongLines } from "../../../../src/global/message/long-lines.ts";
import { encodeMessageData } from "../../../../src/smtp/message-data.ts";

const cases: [string, Buffer][] = [
  ["short lines", Buffer.from("a\nb\n")],
  ["one line of 2500 bytes", Buffer.from(`${"x".repeat(2500)}\n`)],
  ["exactly the limit, one over, with CR LF", Buffer.from(`${"y".repeat(998)}\r\n${"z".repeat(999)}\r\nend`)],
  ["a long line starting with a dot, no final LF", Buffer.from(`.${"d".repeat(3000)}`)],
  ["8-bit", Buffer.from(`${"é".repeat(1200)}\n`, "utf8")],
];

for (const [name, content] of cases) {
  test(`${name}: the client sends the same bytes and breaks nothing more`, () => {
    const broken = breakLongLines(content, 998);
    const direct = encodeMessageData(content, 998);
    const after = encodeMessageData(broken, 998);
    expect(after.brokeLongLines).toBe(false);
    expect(after.bytes.equals(direct.bytes)).toBe(true);
  });
}

test("no long line: the same buffer; limit 0: nothing broken", () => {
  const b = Buffer.from("x\n");
  expect(breakLongLines(b, 998)).toBe(b);
  const long = Buffer.from("x".repeat(5000));
  expect(breakLongLines(long, 0)).toBe(long);
});
