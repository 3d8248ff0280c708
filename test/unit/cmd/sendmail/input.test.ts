/** Reading the message (dot, CR, From_ line, size limit) and -t recipient extraction. */
import { describe, expect, test } from "bun:test";
import { MessageReader, MessageTooBigError, type ReadOptions } from "../../../../src/cmd/sendmail/read-message.ts";
import { extractRecipients } from "../../../../src/cmd/sendmail/extract.ts";
import { splitMessage } from "../../../../src/global/message/header-split.ts";

const BASE: ReadOptions = { dotEnds: true, fixLineEndings: "always", lineLengthLimit: 2048, sizeLimit: 0 };

/** Feeds the input in chunks of `chunk` bytes, so line handling across chunk borders is tested too. */
function read(input: string | Buffer, opts: Partial<ReadOptions> = {}, chunk = 3): string {
  const r = new MessageReader({ ...BASE, ...opts });
  const bytes = typeof input === "string" ? Buffer.from(input, "latin1") : input;
  for (let i = 0; i < bytes.length && !r.done; i += chunk) r.push(Buffer.from(bytes.subarray(i, i + chunk)));
  return r.end().toString("latin1");
}

describe("MessageReader", () => {
  test("a line with a single dot ends the input, unless -i", () => {
    expect(read("a\n.\nb\n")).toBe("a\n");
    expect(read("a\n.\nb\n", { dotEnds: false })).toBe("a\n.\nb\n");
    expect(read("a\n..\nb\n")).toBe("a\n..\nb\n");
    expect(read("a\n.")).toBe("a\n");
  });

  test("CRLF input: the CRs go, also before the dot", () => {
    expect(read("Subject: x\r\n\r\nbody\r\n.\r\nafter\r\n")).toBe("Subject: x\n\nbody\n");
  });

  test("sendmail_fix_line_endings: strict decides by the first line, never keeps CRs", () => {
    expect(read("a\r\nb\r\n", { fixLineEndings: "strict" })).toBe("a\nb\n");
    expect(read("a\nb\r\n", { fixLineEndings: "strict" })).toBe("a\nb\r\n");
    expect(read("a\r\nb\r\n", { fixLineEndings: "never" })).toBe("a\r\nb\r\n");
  });

  test("leading From_ and >From_ lines go; later ones stay", () => {
    expect(read("From user Mon Jan  1 00:00:00 2024\n>From x\nSubject: x\n\nFrom me\n")).toBe("Subject: x\n\nFrom me\n");
    expect(read("From: header, not a separator\n")).toBe("From: header, not a separator\n");
  });

  test("a last line without its newline gets one; the empty message stays empty", () => {
    expect(read("a\nb")).toBe("a\nb\n");
    expect(read("")).toBe("");
  });

  test("8-bit bytes and NULs are kept; a CR inside a line is kept", () => {
    const bytes = Buffer.from([0x61, 0xe9, 0x00, 0x0d, 0x62, 0x0a]);
    expect(Buffer.from(read(bytes), "latin1")).toEqual(bytes);
  });

  test("long lines are kept whole", () => {
    const long = "x".repeat(10000);
    expect(read(`${long}\n.\n`, { lineLengthLimit: 2048 }, 4096)).toBe(`${long}\n`);
  });

  test("message_size_limit stops reading at once", () => {
    expect(() => read("x".repeat(100) + "\n", { sizeLimit: 50 })).toThrow(MessageTooBigError);
    expect(() => read("x".repeat(200), { sizeLimit: 50 }, 20)).toThrow(MessageTooBigError);
    expect(read("x".repeat(40) + "\n", { sizeLimit: 50 })).toBe("x".repeat(40) + "\n");
  });
});

function recipientsOf(text: string): string[] {
  return extractRecipients(splitMessage(Buffer.from(text, "utf8"), { lineLengthLimit: 2048, headerSizeLimit: 102400 }).headers);
}

describe("extractRecipients (-t)", () => {
  test("To, Cc and Bcc, with display names, groups and folding", () => {
    const text = 'To: alice, "Bob B" <bob@example.com>\nCc: team: carol, dave;\nBcc: eve\n\t, frank\nX-To: not@this\nApparently-To: nor@this\nSubject: hi\n\nTo: body@example\n';
    expect(recipientsOf(text)).toEqual(["alice", "bob@example.com", "carol", "dave", "eve", "frank"]);
  });

  test("the first Resent- block replaces To/Cc/Bcc", () => {
    const text = [
      "Resent-From: r1",
      "Resent-To: new1@example.com",
      "Resent-Cc: new2@example.com",
      "Received: by x",
      "Resent-From: r0",
      "Resent-To: older@example.com",
      "To: original@example.com",
      "",
      "",
    ].join("\n");
    expect(recipientsOf(text)).toEqual(["new1@example.com", "new2@example.com"]);
  });

  test("a Resent- block without recipients leaves To/Cc/Bcc in charge", () => {
    expect(recipientsOf("Resent-From: r\nTo: original@example.com\n\n")).toEqual(["original@example.com"]);
  });

  test("UTF-8 addresses come out as UTF-8", () => {
    expect(recipientsOf("To: Jöhn <jöhn@exämple.com>\n\n")).toEqual(["jöhn@exämple.com"]);
  });

  test("undisclosed-recipients:; gives none", () => {
    expect(recipientsOf("To: undisclosed-recipients:;\n\n")).toEqual([]);
  });
});
