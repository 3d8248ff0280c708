/** Splitting messages into headers and body, header lookups, and Postfix's date formats. */
import { describe, expect, test } from "bun:test";
import { findHeaders, headerNameLength, headerValue, splitMessage, unfold } from "../../../../src/global/message/header-split.ts";
import { headerClass, isAddressHeader } from "../../../../src/global/message/header-names.ts";
import { mailDate, messageIdStamp } from "../../../../src/global/message/mail-date.ts";

const LIMITS = { lineLengthLimit: 2048, headerSizeLimit: 102400 };
const split = (text: string, limits = LIMITS) => splitMessage(Buffer.from(text, "latin1"), limits);

describe("splitMessage", () => {
  test("headers, then the body from the empty line on", () => {
    const text = "Subject: hi\nTo: a,\n\tb\n\nbody\n";
    const m = split(text);
    expect(m.headers).toEqual([
      { name: "Subject", text: "Subject: hi" },
      { name: "To", text: "To: a,\n\tb" },
    ]);
    expect(m.endedBy).toBe("blank");
    expect(text.slice(m.bodyOffset)).toBe("\nbody\n");
  });

  test("a line that is not a header ends the headers there", () => {
    const text = "Subject: x\nnot a header line\nFoo: bar\n";
    const m = split(text);
    expect(m.headers.map((h) => h.name)).toEqual(["Subject"]);
    expect(m.endedBy).toBe("nonheader");
    expect(text.slice(m.bodyOffset)).toBe("not a header line\nFoo: bar\n");
  });

  test("a message that starts with its body has no headers", () => {
    const m = split("hello world\n");
    expect(m.headers).toEqual([]);
    expect(m.bodyOffset).toBe(0);
    expect(m.endedBy).toBe("nonheader");
  });

  test("a leading blank line is not a continuation of anything", () => {
    expect(split(" indented\nSubject: x\n").headers).toEqual([]);
  });

  test("headers up to the end of the message, and the empty message", () => {
    const m = split("Subject: x\n");
    expect(m.endedBy).toBe("eof");
    expect(m.bodyOffset).toBe(11);
    expect(split("")).toEqual({ headers: [], bodyOffset: 0, endedBy: "eof", truncated: [] });
  });

  test("'Name : value' is read as 'Name: value'", () => {
    expect(split("Subject  : hi\n").headers).toEqual([{ name: "Subject", text: "Subject: hi" }]);
  });

  test("8-bit bytes survive as latin1 text", () => {
    const bytes = Buffer.from("Subject: Grüße\n\n", "utf8");
    const h = splitMessage(bytes, LIMITS).headers[0]!;
    expect(Buffer.from(h.text, "latin1").toString("utf8")).toBe("Subject: Grüße");
  });

  test("header_size_limit: the rest of a long header is discarded", () => {
    const long = `X-Long: ${"a".repeat(50)}\n${Array.from({ length: 20 }, () => `\t${"b".repeat(30)}`).join("\n")}\nSubject: after\n\nbody\n`;
    const m = split(long, { lineLengthLimit: 2048, headerSizeLimit: 200 });
    const x = m.headers[0]!;
    expect(x.text.length).toBeGreaterThanOrEqual(200);
    expect(x.text.length).toBeLessThan(200 + 32);
    expect(m.truncated).toEqual(["X-Long"]);
    expect(m.headers[1]).toEqual({ name: "Subject", text: "Subject: after" });
  });

  test("a header line longer than line_length_limit is kept whole within header_size_limit", () => {
    const value = "v".repeat(5000);
    const m = split(`X-Big: ${value}\n\n`, { lineLengthLimit: 2048, headerSizeLimit: 102400 });
    expect(m.headers[0]!.text).toBe(`X-Big: ${value}`);
    expect(m.truncated).toEqual([]);
  });

  test("a long line is cut at a line_length_limit piece once the header is full", () => {
    const m = split(`X-Big: ${"v".repeat(5000)}\n\n`, { lineLengthLimit: 1000, headerSizeLimit: 1500 });
    expect(m.headers[0]!.text.length).toBe(2000);
    expect(m.truncated).toEqual(["X-Big"]);
  });
});

describe("header helpers", () => {
  test("headerNameLength follows Postfix's is_header", () => {
    expect(headerNameLength("Subject: x")).toBe(7);
    expect(headerNameLength("X-Foo  :x")).toBe(5);
    expect(headerNameLength("From someone")).toBe(0);
    expect(headerNameLength(": x")).toBe(0);
    expect(headerNameLength(" Subject: x")).toBe(0);
    expect(headerNameLength("Sübject: x")).toBe(0);
  });

  test("headerValue unfolds and trims; unfold keeps the blanks", () => {
    expect(headerValue({ name: "To", text: "To:  a,\n\tb " })).toBe("a,\tb");
    expect(unfold("a\n b\r\n\tc")).toBe("a b\tc");
  });

  test("findHeaders ignores case", () => {
    const m = split("TO: a\nCc: b\nto: c\n\n");
    expect(findHeaders(m.headers, "To").map((h) => h.text)).toEqual(["TO: a", "to: c"]);
  });

  test("header classes", () => {
    expect(headerClass("from")).toMatchObject({ name: "From", sender: true });
    expect(headerClass("RESENT-TO")).toMatchObject({ name: "Resent-To", recipient: true, extract: true, resent: true });
    expect(headerClass("Apparently-To")?.extract).toBeUndefined();
    expect(headerClass("X-To")).toBeUndefined();
    expect(isAddressHeader("Reply-To")).toBe(true);
    expect(isAddressHeader("Subject")).toBe(false);
  });
});

describe("dates", () => {
  test("mailDate: Postfix's layout, day padded with a space, zone comment", () => {
    const saved = process.env.TZ;
    process.env.TZ = "UTC";
    try {
      expect(mailDate(new Date(Date.UTC(2024, 0, 1, 12, 0, 5)))).toBe("Mon,  1 Jan 2024 12:00:05 +0000 (UTC)");
      expect(mailDate(new Date(Date.UTC(2026, 10, 21, 6, 23, 7)))).toBe("Sat, 21 Nov 2026 06:23:07 +0000 (UTC)");
      process.env.TZ = "America/New_York";
      expect(mailDate(new Date(Date.UTC(2024, 0, 1, 12, 0, 5)))).toBe("Mon,  1 Jan 2024 07:00:05 -0500 (EST)");
      process.env.TZ = "Asia/Kolkata";
      expect(mailDate(new Date(Date.UTC(2024, 0, 1, 12, 0, 5)))).toMatch(/^Mon, {2}1 Jan 2024 17:30:05 \+0530( \([A-Z]+\))?$/);
    } finally {
      process.env.TZ = saved;
    }
  });

  test("mailDate: the remembered zone name follows a change of TZ and of daylight saving time within the hour", () => {
    const saved = process.env.TZ;
    try {
      process.env.TZ = "America/New_York";
      // 2024-03-10: EST until 07:00 UTC, EDT from then on; both instants are in the same UTC hour as 06:59:59
      expect(mailDate(new Date(Date.UTC(2024, 2, 10, 6, 59, 59)))).toBe("Sun, 10 Mar 2024 01:59:59 -0500 (EST)");
      expect(mailDate(new Date(Date.UTC(2024, 2, 10, 6, 59, 59)))).toBe("Sun, 10 Mar 2024 01:59:59 -0500 (EST)");
      expect(mailDate(new Date(Date.UTC(2024, 2, 10, 7, 0, 0)))).toBe("Sun, 10 Mar 2024 03:00:00 -0400 (EDT)");
      process.env.TZ = "UTC";
      expect(mailDate(new Date(Date.UTC(2024, 2, 10, 7, 0, 1)))).toBe("Sun, 10 Mar 2024 07:00:01 +0000 (UTC)");
      process.env.TZ = "Europe/London";
      expect(mailDate(new Date(Date.UTC(2024, 2, 10, 7, 0, 2)))).toBe("Sun, 10 Mar 2024 07:00:02 +0000 (GMT)");
    } finally {
      process.env.TZ = saved;
    }
  });

  test("mailDate works in a process without TZ (daemons run so)", () => {
    const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
    const code = `import { mailDate } from ${JSON.stringify(`${import.meta.dir}/../../../../src/global/message/mail-date.ts`)}; console.log(mailDate(new Date(0)));`;
    const p = Bun.spawnSync([process.execPath, "-e", code], { env, stdout: "pipe", stderr: "pipe" });
    expect(p.stderr.toString()).toBe("");
    expect(p.exitCode).toBe(0);
    expect(p.stdout.toString()).toMatch(/^\w{3}, [ \d]\d \w{3} 19(69|70) \d\d:\d\d:00 [+-]\d{4}/);
  });

  test("messageIdStamp is UTC", () => {
    expect(messageIdStamp(new Date(Date.UTC(2026, 10, 21, 6, 23, 8)))).toBe("20261121062308");
  });
});
