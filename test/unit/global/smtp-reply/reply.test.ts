import { describe, expect, test } from "bun:test";
import { ReplyAssembler, ReplySyntaxError, makeReply, replyDsn, replyText, replyTexts } from "../../../../src/global/smtp-reply/reply.ts";

function feed(lines: string[]) {
  const a = new ReplyAssembler();
  const out = [];
  for (const l of lines) {
    const r = a.push(l);
    if (r) out.push(r);
  }
  return { out, pending: a.pending };
}

describe("ReplyAssembler", () => {
  test("a single line reply with an enhanced status code", () => {
    const { out } = feed(["250 2.1.0 Ok"]);
    expect(out).toEqual([{ code: 250, lines: ["250 2.1.0 Ok"], enhanced: "2.1.0" }]);
  });

  test("a multi-line reply ends at the line with a space after the code", () => {
    const { out, pending } = feed(["250-mx.example.com", "250-PIPELINING", "250 SIZE 1000"]);
    expect(pending).toBe(false);
    expect(out).toHaveLength(1);
    expect(out[0]!.lines).toEqual(["250-mx.example.com", "250-PIPELINING", "250 SIZE 1000"]);
    expect(replyTexts(out[0]!)).toEqual(["mx.example.com", "PIPELINING", "SIZE 1000"]);
  });

  test("continuation lines keep the reply pending", () => {
    const { out, pending } = feed(["550-5.1.1 first"]);
    expect(out).toEqual([]);
    expect(pending).toBe(true);
  });

  test("a bare code is a complete reply", () => {
    expect(feed(["354"]).out[0]!.code).toBe(354);
  });

  test("lines that are not replies are refused", () => {
    expect(() => new ReplyAssembler().push("hello")).toThrow(ReplySyntaxError);
    expect(() => new ReplyAssembler().push("25 short")).toThrow(ReplySyntaxError);
    expect(() => new ReplyAssembler().push("650 bad class")).toThrow(ReplySyntaxError);
    expect(() => new ReplyAssembler().push("250xno separator")).toThrow(ReplySyntaxError);
  });

  test("a continuation with another code is refused", () => {
    const a = new ReplyAssembler();
    a.push("250-first");
    expect(() => a.push("251 second")).toThrow(ReplySyntaxError);
  });

  test("an endless reply is refused", () => {
    const a = new ReplyAssembler();
    expect(() => {
      for (let i = 0; i < 2000; i++) a.push("250-more");
    }).toThrow(ReplySyntaxError);
  });
});

describe("reply texts", () => {
  test("Postfix's one-line form keeps the codes of every line", () => {
    const r = makeReply(550, ["550-5.1.1 The email account that you tried to reach does not exist.", "550 5.1.1 Learn more - gsmtp"]);
    expect(replyText(r)).toBe("550-5.1.1 The email account that you tried to reach does not exist. 550 5.1.1 Learn more - gsmtp");
    expect(replyDsn(r)).toBe("5.1.1");
  });

  test("a reply without an enhanced code gets the class with .0.0", () => {
    expect(replyDsn(makeReply(451, ["451 try later"]))).toBe("4.0.0");
    expect(replyDsn(makeReply(250, ["250 ok"]))).toBe("2.0.0");
  });

  test("an enhanced code of another class than the reply is ignored", () => {
    expect(makeReply(550, ["550 4.1.1 confused"]).enhanced).toBeUndefined();
  });

  test("an enhanced code needs a space or the end after it", () => {
    expect(makeReply(250, ["250 2.0.0"]).enhanced).toBe("2.0.0");
    expect(makeReply(250, ["250 2.0.0x"]).enhanced).toBeUndefined();
  });
});
