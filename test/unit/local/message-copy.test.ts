import { describe, expect, test } from "bun:test";
import { asctime, deliveredToAddresses, envelopePrefix, formatDelivery, quoteLocalPart } from "../../../src/local/message-copy.ts";

const text = (u: Uint8Array) => Buffer.from(u).toString("utf8");

describe("mbox format", () => {
  test("lines that begin with 'From ' are quoted, others are not", () => {
    const out = formatDelivery("", Buffer.from("Subject: x\n\nFrom me\nFromage\n From x\nFrom\n>From y\n"), { quote: true, blank: true });
    expect(text(out)).toBe("Subject: x\n\n>From me\nFromage\n From x\nFrom\n>From y\n\n");
  });

  test("the first line and a last line without newline are handled", () => {
    expect(text(formatDelivery("P\n", Buffer.from("From a\nbody"), { quote: true, blank: true }))).toBe("P\n>From a\nbody\n\n");
  });

  test("without quoting (maildir, commands) the content is kept as is, and no blank line is added", () => {
    expect(text(formatDelivery("", Buffer.from("From me\nx"), { quote: false, blank: false }))).toBe("From me\nx\n");
  });

  test("envelope lines in Postfix's order", () => {
    const d = new Date(2026, 10, 1, 6, 5, 9);
    expect(envelopePrefix({ fromLine: true, sender: "a@example.org", returnPath: true, originalTo: "x", deliveredTo: "u@h", now: d })).toBe(
      "From a@example.org  Sun Nov  1 06:05:09 2026\nReturn-Path: <a@example.org>\nX-Original-To: x\nDelivered-To: u@h\n",
    );
    expect(envelopePrefix({ fromLine: true, sender: "", returnPath: true, now: d })).toBe("From MAILER-DAEMON  Sun Nov  1 06:05:09 2026\nReturn-Path: <>\n");
    expect(asctime(new Date(2026, 0, 21, 16, 0, 0))).toBe("Wed Jan 21 16:00:00 2026");
  });

  test("local parts are quoted when they need it", () => {
    expect(quoteLocalPart("john.doe@example.org")).toBe("john.doe@example.org");
    expect(quoteLocalPart("john doe@example.org")).toBe('"john doe"@example.org');
    expect(quoteLocalPart("a..b@x")).toBe('"a..b"@x');
  });
});

describe("Delivered-To: loop detection", () => {
  test("collects Delivered-To: values of the header only, lower case", () => {
    const msg = "Received: x\n\tcontinued\nDelivered-To: Alice@Example.Test\ndelivered-to:  bob@x\nSubject: s\n\nDelivered-To: carol@x\n";
    expect([...deliveredToAddresses(Buffer.from(msg))].sort()).toEqual(["alice@example.test", "bob@x"]);
  });
});
