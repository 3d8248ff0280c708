import { describe, expect, test } from "bun:test";
import { GrowingBuffer, InputClosedError, InputTimeoutError, SmtpInput, type BareNewlineMode } from "../../../../src/smtpd/protocol/input.ts";

function input(text: string | Buffer, opts: { end?: boolean; timeoutMs?: number } = {}): SmtpInput {
  const i = new SmtpInput({ timeoutMs: opts.timeoutMs ?? 1000 });
  i.push(typeof text === "string" ? Buffer.from(text, "latin1") : text);
  if (opts.end !== false) i.end();
  return i;
}

async function data(text: string, mode: BareNewlineMode = "normalize", limit = 0) {
  const i = input(text);
  const d = await i.readData(mode, limit, true);
  const rest = i.pending() ? i.peek(1000) : "";
  return { content: d.content?.toString("latin1"), size: d.size, bareLf: d.bareLf, rest };
}

describe("command lines", () => {
  test("CRLF and bare LF endings; the ending is reported", async () => {
    const i = input("EHLO a\r\nNOOP\nQUIT\r\n");
    expect(await i.readLine(2048)).toEqual({ text: "EHLO a", bareLf: false, truncated: false, badUtf8: false });
    expect(await i.readLine(2048)).toEqual({ text: "NOOP", bareLf: true, truncated: false, badUtf8: false });
    expect(i.pending()).toBe(6);
    expect(await i.readLine(2048)).toEqual({ text: "QUIT", bareLf: false, truncated: false, badUtf8: false });
    await expect(i.readLine(2048)).rejects.toBeInstanceOf(InputClosedError);
  });

  test("a line over the limit is cut there and the rest of it skipped", async () => {
    const i = input(`X${"a".repeat(5000)}\r\nNOOP\r\n`);
    const l = await i.readLine(100);
    expect(l.truncated).toBe(true);
    expect(l.text).toBe(`X${"a".repeat(99)}`);
    expect((await i.readLine(100)).text).toBe("NOOP");
  });

  test("a long line arriving in pieces is cut too, without holding it all", async () => {
    const i = new SmtpInput({ timeoutMs: 1000 });
    const p = i.readLine(10);
    for (let n = 0; n < 50; n++) i.push(Buffer.from("abcdefghij"));
    i.push(Buffer.from("\r\nNEXT\r\n"));
    expect(await p).toEqual({ text: "abcdefghij", bareLf: false, truncated: true, badUtf8: false });
    expect(i.pending()).toBe(6);
  });

  test("a read that waits too long times out", async () => {
    const i = input("", { end: false, timeoutMs: 50 });
    await expect(i.readLine(100)).rejects.toBeInstanceOf(InputTimeoutError);
  });
});

describe("DATA", () => {
  test("ends at CRLF.CRLF; dot-unstuffing; CRLF stored as LF; what follows stays unread", async () => {
    const d = await data("Subject: x\r\n\r\n..leading dot\r\nline\r\n.\r\nQUIT\r\n");
    expect(d.content).toBe("Subject: x\n\n.leading dot\nline\n");
    expect(d.bareLf).toBe(false);
    expect(d.rest).toBe("QUIT\r\n");
  });

  test("an empty message", async () => {
    expect((await data(".\r\n")).content).toBe("");
  });

  // SMTP smuggling (CVE-2023-51764): none of these end the message
  const smuggled = "MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n";
  for (const [name, sep] of [
    ["\\n.\\n", "\n.\n"],
    ["\\n.\\r\\n", "\n.\r\n"],
    ["\\r\\n.\\n", "\r\n.\n"],
    ["\\r.\\r\\n", "\r.\r\n"],
  ] as const) {
    test(`"${name}" does not end DATA (normalize): the smuggled commands are content`, async () => {
      const d = await data(`Subject: one\r\n\r\nfirst${sep}${smuggled}.\r\nQUIT\r\n`);
      expect(d.rest).toBe("QUIT\r\n");
      expect(d.content).toContain("MAIL FROM:<evil@example.com>\nRCPT TO:<victim@example.com>\nDATA\nSubject: smuggled\n");
      expect(d.content!.endsWith("smuggled\n")).toBe(true);
    });

    test(`"${name}" does not end DATA (reject) and is reported when it has a bare LF`, async () => {
      const d = await data(`Subject: one\r\n\r\nfirst${sep}${smuggled}.\r\nQUIT\r\n`, "reject");
      expect(d.rest).toBe("QUIT\r\n");
      expect(d.bareLf).toBe(sep !== "\r.\r\n");
    });
  }

  test("a bare-LF '.' line that does not end DATA is unstuffed to an empty line", async () => {
    const d = await data("a\n.\nb\r\n.\r\n");
    expect(d.content).toBe("a\n\nb\n");
    expect(d.bareLf).toBe(true);
  });

  test("after a bare-LF DATA command a '.' line does not end the message", async () => {
    const i = input(".\r\nstill content\r\n.\r\n");
    const d = await i.readData("normalize", 0, false);
    expect(d.content!.toString()).toBe("\nstill content\n");
  });

  test("the old rule (no): any '.' line ends DATA, also after a bare LF", async () => {
    const d = await data("first\n.\nMAIL FROM:<evil@example.com>\r\n.\r\n", "no");
    expect(d.content).toBe("first\n");
    expect(d.rest).toBe("MAIL FROM:<evil@example.com>\r\n.\r\n");
  });

  test("a bare CR is content", async () => {
    expect((await data("a\rb\r\n\r.\r\n.\r\n")).content).toBe("a\rb\n\r.\n");
  });

  test("over the size limit: read to the end, no content, the size counted", async () => {
    const body = "x".repeat(100) + "\r\n";
    const d = await data(`${body.repeat(20)}.\r\nNOOP\r\n`, "normalize", 500);
    expect(d.content).toBeUndefined();
    // counted with CRLF line ends, as Postfix counts
    expect(d.size).toBe(102 * 20);
    expect(d.rest).toBe("NOOP\r\n");
  });

  test("one endless line over the limit does not pile up in memory", async () => {
    const i = new SmtpInput({ timeoutMs: 1000 });
    const p = i.readData("normalize", 1000, true);
    for (let n = 0; n < 1000; n++) i.push(Buffer.alloc(1000, 0x41));
    i.push(Buffer.from("\r\n.\r\n"));
    const d = await p;
    expect(d.content).toBeUndefined();
    expect(d.size).toBe(1_000_002);
  });

  test("content split across many small pushes, the end marker too", async () => {
    const i = new SmtpInput({ timeoutMs: 1000 });
    const p = i.readData("normalize", 0, true);
    for (const ch of "line one\r\n..two\r\n.\r") i.push(Buffer.from(ch));
    i.push(Buffer.from("\n"));
    expect((await p).content!.toString()).toBe("line one\n.two\n");
  });

  test("the connection closing in DATA is an error", async () => {
    await expect(input("no end").readData("normalize", 0, true)).rejects.toBeInstanceOf(InputClosedError);
  });
});

describe("back-pressure", () => {
  test("too much input ahead of the session pauses the socket; reading it resumes", async () => {
    const calls: boolean[] = [];
    const i = new SmtpInput({ timeoutMs: 1000, onPressure: (p) => calls.push(p) });
    for (let n = 0; n < 10000; n++) i.push(Buffer.from("NOOP and some padding to fill the buffer\r\n"));
    expect(calls).toEqual([true]);
    for (let n = 0; n < 10000; n++) await i.readLine(2048);
    expect(calls).toEqual([true, false]);
  });
});

describe("BDAT chunks", () => {
  test("exactly the count, as raw bytes", async () => {
    const i = input("abc\r\n.\r\nNOOP\r\n");
    const got: Buffer[] = [];
    await i.readBytes(8, (b) => got.push(b));
    expect(Buffer.concat(got).toString()).toBe("abc\r\n.\r\n");
    expect(i.peek(100)).toBe("NOOP\r\n");
  });
});

describe("the content buffer", () => {
  test("grows by doubling, appends pieces and bytes, truncates and clears", () => {
    const b = new GrowingBuffer();
    b.append(Buffer.from("abc"));
    b.append(Buffer.from("xxdefxx"), 2, 5);
    b.appendByte(10);
    b.append(Buffer.alloc(5000, "z"));
    expect(b.length).toBe(5007);
    expect(b.bytes().subarray(0, 7).toString()).toBe("abcdef\n");
    b.truncate(3);
    expect(b.bytes().toString()).toBe("abc");
    b.clear();
    expect(b.length).toBe(0);
  });

  test("a million empty lines are a million bytes of content", async () => {
    const d = await data(`${"\r\n".repeat(1_000_000)}.\r\n`);
    expect(d.content!.length).toBe(1_000_000);
    expect(d.size).toBe(2_000_000);
  });
});
