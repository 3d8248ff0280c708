import { describe, expect, test } from "bun:test";
import { encodeMessageData, hasEightBit } from "../../../src/smtp/message-data.ts";

const enc = (text: string, limit = 998) => encodeMessageData(Buffer.from(text, "latin1"), limit);

describe("SMTP DATA encoding", () => {
  test("LF becomes CRLF and the data ends with a dot line", () => {
    expect(enc("Subject: x\n\nbody\n").bytes.toString()).toBe("Subject: x\r\n\r\nbody\r\n.\r\n");
  });

  test("lines starting with a dot get another dot", () => {
    expect(enc("a\n.\n..b\n.c\n").bytes.toString()).toBe("a\r\n..\r\n...b\r\n..c\r\n.\r\n");
  });

  test("a last line without a line end is ended", () => {
    expect(enc("a\nlast").bytes.toString()).toBe("a\r\nlast\r\n.\r\n");
  });

  test("an empty message is just the end", () => {
    expect(enc("").bytes.toString()).toBe(".\r\n");
  });

  test("a CR before the LF is not doubled", () => {
    expect(enc("a\r\nb\n").bytes.toString()).toBe("a\r\nb\r\n.\r\n");
  });

  test("long lines are broken with CRLF and a space at the limit", () => {
    const r = enc(`${"x".repeat(25)}\n`, 10);
    expect(r.brokeLongLines).toBe(true);
    const lines = r.bytes.toString().split("\r\n");
    expect(lines.slice(0, -2)).toEqual(["x".repeat(10), ` ${"x".repeat(9)}`, ` ${"x".repeat(6)}`]);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(10);
  });

  test("a limit of 0 means no limit", () => {
    const r = enc(`${"x".repeat(5000)}\n`, 0);
    expect(r.brokeLongLines).toBe(false);
    expect(r.bytes.length).toBe(5000 + 2 + 3);
  });

  test("8-bit bytes pass through unchanged", () => {
    const r = encodeMessageData(Buffer.from("Subject: \xe4\n\nb\xfc\n", "latin1"), 998);
    expect(r.bytes.toString("latin1")).toBe("Subject: \xe4\r\n\r\nb\xfc\r\n.\r\n");
    expect(hasEightBit(Buffer.from("ascii only\n"))).toBe(false);
    expect(hasEightBit(Buffer.from("\xe4", "latin1"))).toBe(true);
  });
});

