/**
 * The MIME reader behind header_checks and body_checks, against Postfix's
 * mime_state.c: header classes (primary, mime, nested), multipart
 * boundaries (nested, closed, digest), message/rfc822 nesting, folding kept,
 * header_size_limit, line pieces, the body offset, the nesting limit.
 */
import { describe, expect, test } from "bun:test";
import { readMime, type MimeEvent, type MimeLimits, type MimeReadState } from "../../../../src/global/message/mime-reader.ts";

const LIMITS: MimeLimits = { lineLengthLimit: 2048, headerSizeLimit: 102400, nestingLimit: 100, boundaryLengthLimit: 2048 };

function events(text: string, limits: Partial<MimeLimits> = {}, state?: MimeReadState): MimeEvent[] {
  return [...readMime(Buffer.from(text, "latin1"), { ...LIMITS, ...limits }, state)];
}

/** "H:cls:text" for headers, "B:text" for body lines. */
function brief(text: string, limits: Partial<MimeLimits> = {}): string[] {
  return events(text, limits).map((e) => (e.kind === "header" ? `H:${e.cls}:${e.text}` : `B:${e.text}`));
}

describe("MIME reader", () => {
  test("primary headers, folding kept with newlines, the body", () => {
    expect(brief("Subject: one\n two\nFrom: a@b\n\nbody\n")).toEqual(["H:primary:Subject: one\n two", "H:primary:From: a@b", "B:", "B:body"]);
  });

  test("MIME headers are mime headers even among the primary ones; Name : is read as Name:", () => {
    expect(brief("MIME-Version: 1.0\nContent-Type : text/plain\nX-A: 1\n\nx\n")).toEqual(["H:mime:MIME-Version: 1.0", "H:mime:Content-Type: text/plain", "H:primary:X-A: 1", "B:", "B:x"]);
  });

  test("a line that is not a header ends the primary headers with an empty line put before it", () => {
    const ev = events("Subject: x\nnot a header\nmore\n");
    expect(ev.map((e) => e.kind === "body" && e.synthetic === true)).toEqual([false, true, false, false]);
    expect(brief("Subject: x\nnot a header\n")).toEqual(["H:primary:Subject: x", "B:", "B:not a header"]);
  });

  test("multipart: part headers are mime headers, other part headers too, the closing boundary ends them", () => {
    const msg = [
      "Content-Type: multipart/mixed; boundary=\"XX\"",
      "",
      "prolog",
      "--XX",
      "Content-Type: text/plain",
      "X-Part: 1",
      "",
      "part one",
      "--XX--",
      "X-Not: header",
      "",
    ].join("\n");
    expect(brief(msg)).toEqual([
      "H:mime:Content-Type: multipart/mixed; boundary=\"XX\"",
      "B:",
      "B:prolog",
      "B:--XX",
      "H:mime:Content-Type: text/plain",
      "H:mime:X-Part: 1",
      "B:",
      "B:part one",
      "B:--XX--",
      "B:X-Not: header",
    ]);
  });

  test("message/rfc822 parts: the attached message's headers are nested headers, its MIME headers mime ones", () => {
    const msg = [
      "Content-Type: multipart/mixed; boundary=b1",
      "",
      "--b1",
      "Content-Type: message/rfc822",
      "",
      "Subject: inner",
      "Content-Type: text/plain",
      "",
      "inner body",
      "--b1--",
      "",
    ].join("\n");
    expect(brief(msg)).toEqual([
      "H:mime:Content-Type: multipart/mixed; boundary=b1",
      "B:",
      "B:--b1",
      "H:mime:Content-Type: message/rfc822",
      "B:",
      "H:nested:Subject: inner",
      "H:mime:Content-Type: text/plain",
      "B:",
      "B:inner body",
      "B:--b1--",
    ]);
  });

  test("multipart/digest parts default to message/rfc822; an outer boundary closes inner multiparts", () => {
    const msg = [
      "Content-Type: multipart/mixed; boundary=outer",
      "",
      "--outer",
      "Content-Type: multipart/digest; boundary=inner",
      "",
      "--inner",
      "",
      "Subject: digested",
      "",
      "text",
      "--outer",
      "X-After: 1",
      "",
      "z",
      "",
    ].join("\n");
    const b = brief(msg);
    expect(b).toContain("H:nested:Subject: digested");
    expect(b).toContain("H:mime:X-After: 1");
  });

  test("header_size_limit: the rest of a long header is dropped and marked", () => {
    const ev = events(`Subject: ${"a".repeat(50)}\n ${"b".repeat(50)}\n\nx\n`, { headerSizeLimit: 40, lineLengthLimit: 20 });
    const h = ev[0]!;
    expect(h.kind).toBe("header");
    if (h.kind !== "header") return;
    expect(h.truncated).toBe(true);
    expect(h.text.length).toBeLessThan(70);
    expect(h.text.startsWith("Subject: aaaa")).toBe(true);
  });

  test("long body lines come in pieces of line_length_limit; offsets count from the start of the body part", () => {
    const ev = events(`S: x\n\n${"a".repeat(25)}\nend`, { lineLengthLimit: 10 });
    const body = ev.filter((e) => e.kind === "body") as Extract<MimeEvent, { kind: "body" }>[];
    expect(body.map((e) => [e.text, e.eol, e.offset])).toEqual([
      ["", true, 0],
      ["aaaaaaaaaa", false, 1],
      ["aaaaaaaaaa", false, 12],
      ["aaaaa", true, 23],
      ["end", false, 29],
    ]);
  });

  test("a boundary is not looked for in the middle of a long line", () => {
    const msg = `Content-Type: multipart/mixed; boundary=q\n\n${"x".repeat(10)}--q\nHeader: no\n`;
    expect(brief(msg, { lineLengthLimit: 10 })).toContain("B:Header: no");
  });

  test("mime_nesting_limit: deeper boundaries are not followed and the state says so", () => {
    const parts: string[] = [];
    for (let i = 0; i < 5; i++) parts.push(`Content-Type: multipart/mixed; boundary=b${i}`, "", `--b${i}`);
    const state: MimeReadState = { nestingExceeded: false };
    events(`${parts.join("\n")}\n`, { nestingLimit: 3 }, state);
    expect(state.nestingExceeded).toBe(true);
    expect(state.nestingText).toContain("boundary=b3");
    const ok: MimeReadState = { nestingExceeded: false };
    events(`${parts.join("\n")}\n`, { nestingLimit: 10 }, ok);
    expect(ok.nestingExceeded).toBe(false);
  });

  test("a message that ends inside its headers, without a final newline", () => {
    expect(brief("Subject: a\n b")).toEqual(["H:primary:Subject: a\n b"]);
  });
});
