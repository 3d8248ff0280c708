/**
 * Fuzz target: the SMTP reply parser the SMTP/LMTP client uses
 * (src/global/smtp-reply/reply.ts). Replies come from any server on the
 * internet. Properties: any lines give replies or a ReplySyntaxError, never
 * another exception; a reply written as a server writes it (the server's own
 * formatReply) reads back with its code, lines and enhanced status code; no
 * reply holds more than MAX_REPLY_LINES lines; and the client's session
 * (src/smtp/session.ts), which cuts the server's bytes into
 * lines, settles the same replies and errors (SessionError only) however the
 * bytes are cut into TCP segments.
 */
import { describe, expect, test } from "bun:test";
import { SessionError, SmtpClientSession } from "../../src/smtp/session.ts";
import { formatReply } from "../../src/smtpd/protocol/reply.ts";
import type { Connection } from "../../src/util/net/connection.ts";
import { MAX_REPLY_LINES, ReplyAssembler, ReplySyntaxError, replyDsn, replyText, type RemoteReply } from "../../src/global/smtp-reply/reply.ts";
import { bytesFrom, chunked, expectOnly, fc, fuzz, fuzzAsync, TEST_TIMEOUT_MS } from "./fuzz.ts";
import { awkwardText, textFrom } from "./strings.ts";
import { printable } from "../../src/util/printable.ts";

const code = fc.integer({ min: 200, max: 599 });
const dsnFor = (c: number) => fc.tuple(fc.nat(999), fc.nat(999)).map(([a, b]) => `${String(c)[0]}.${a}.${b}`);
/** Reply text as a server writes it: no line ends, no trailing blanks (formatReply trims them). */
const lineText = awkwardText(40).map((t) => t.replace(/[\r\n]/g, ""));

describe("SMTP replies", () => {
  test("a reply the server side writes reads back with its code, lines and enhanced code", () => {
    const reply = code.chain((c) => fc.record({ code: fc.constant(c), dsn: c < 300 || c >= 400 ? fc.option(dsnFor(c), { nil: undefined }) : fc.constant(undefined), lines: fc.array(lineText, { minLength: 1, maxLength: 5 }) }));
    fuzz(0x5e91, 2000, reply, (r) => {
      const wire = formatReply(r.dsn === undefined ? { code: r.code, lines: r.lines } : { code: r.code, dsn: r.dsn, lines: r.lines });
      const lines = wire.split("\r\n").slice(0, -1);
      const a = new ReplyAssembler();
      let got: RemoteReply | undefined;
      lines.forEach((line, i) => {
        got = a.push(line);
        expect(got === undefined).toBe(i < lines.length - 1);
      });
      expect(got!.code).toBe(r.code);
      // the client keeps each line as printable text (Postfix's smtp_chat_resp)
      expect(got!.lines).toEqual(lines.map((l) => printable(l, true)));
      // the enhanced code is read from the first line's text; "2.0.0" style with leading zeros normalized
      if (r.dsn !== undefined) expect(got!.enhanced).toBe(r.dsn.split(".").map(Number).join("."));
      expect(replyDsn(got!)).toMatch(/^[245]\.\d{1,3}\.\d{1,3}$|^3\.0\.0$/);
      expect(replyText(got!)).toBe(lines.map((l) => printable(l, true)).join(" "));
      expect(a.pending).toBe(false);
    });
  }, TEST_TIMEOUT_MS);

  test("any lines give replies or a ReplySyntaxError", () => {
    const line = fc.oneof(
      awkwardText(30),
      fc.tuple(textFrom([..."0123456789"], 3, 3), fc.constantFrom("-", " ", "", "\t", "x"), awkwardText(20)).map(([c, sep, t]) => `${c}${sep}${t}`),
      fc.tuple(code, fc.constantFrom("-", " "), textFrom([..."2345.0 x"], 12)).map(([c, sep, t]) => `${c}${sep}${t}`),
    );
    fuzz(0x5e92, 2000, fc.array(line, { maxLength: 12 }), (lines) => {
      const a = new ReplyAssembler();
      for (const l of lines) {
        const r = expectOnly(() => a.push(l), ReplySyntaxError);
        if (r instanceof Error) return;
        if (r) {
          expect(r.code).toBeGreaterThanOrEqual(200);
          expect(r.code).toBeLessThanOrEqual(599);
          expect(r.lines.every((x) => x.startsWith(String(r.code)))).toBe(true);
          if (r.enhanced) expect(r.enhanced[0]).toBe(String(r.code)[0]);
        }
      }
    });
  }, TEST_TIMEOUT_MS);

  test("a reply never grows past MAX_REPLY_LINES lines", () => {
    fuzz(0x5e93, 5, fc.integer({ min: MAX_REPLY_LINES - 2, max: MAX_REPLY_LINES + 50 }), (n) => {
      const a = new ReplyAssembler();
      let failed = false;
      for (let i = 0; i < n && !failed; i++) {
        const r = expectOnly(() => a.push("250-x"), ReplySyntaxError);
        if (r instanceof Error) failed = true;
        else expect(r).toBeUndefined();
      }
      expect(failed).toBe(n >= MAX_REPLY_LINES);
    });
  }, TEST_TIMEOUT_MS);

  /** Just what SmtpClientSession uses of a connection: input is pushed by the test, output dropped. */
  function fakeConnection() {
    let onData: (chunk: Uint8Array) => void = () => {};
    const closers: Array<() => void> = [];
    let closed = false;
    const conn = {
      closed: false,
      tls: undefined,
      onData: (h: (chunk: Uint8Array) => void) => (onData = h),
      onClose: (h: () => void) => closers.push(h),
      write: () => {},
      flushed: async () => {},
      setIdleTimeout: () => {},
      destroy: () => {
        closed = true;
      },
      end: async () => {
        closed = true;
      },
    };
    return { conn: conn as unknown as Connection, push: (b: Uint8Array) => onData(b), close: () => {
        for (const c of closers) c();
      }, get destroyed() { return closed; } };
  }

  /** What a client session settles for `expected` replies when the server sends `pieces`. */
  async function settled(pieces: Uint8Array[], expected: number): Promise<string[]> {
    const f = fakeConnection();
    const session = new SmtpClientSession(f.conn);
    const results = Array.from({ length: expected }, () =>
      session.expect(0).then(
        (r) => `reply ${r.code} ${JSON.stringify(r.lines)} ${r.enhanced ?? "-"}`,
        (e) => {
          if (!(e instanceof SessionError)) throw new Error(`not a SessionError: ${e?.stack ?? e}`);
          return `error ${e.kind} ${e.message}`;
        },
      ),
    );
    for (const p of pieces) f.push(p);
    f.close();
    return Promise.all(results);
  }

  test("the client's session settles the same replies however the server's bytes are cut", async () => {
    const line = fc.oneof(
      { weight: 4, arbitrary: fc.tuple(code, fc.constantFrom("-", " "), lineText).map(([c, sep, t]) => `${c}${sep}${t}`) },
      { weight: 1, arbitrary: awkwardText(20) },
    );
    const stream = fc
      .array(fc.tuple(line, fc.constantFrom("\r\n", "\r\n", "\n", "\r\r\n")), { maxLength: 8 })
      .map((ls) => Buffer.from(ls.map(([l, e]) => l + e).join(""), "utf8"))
      .chain((b) => fc.tuple(fc.constant(b), chunked(b), fc.nat(6)));
    await fuzzAsync(0x5e94, 1000, stream, async ([bytes, pieces, expected]) => {
      expect(await settled(pieces, expected)).toEqual(await settled([bytes], expected));
    });
    // raw bytes, UTF-8 sequences cut in the middle included
    const raw = bytesFrom([0x32, 0x35, 0x30, 0x2d, 0x20, 0x0d, 0x0a, 0xc3, 0xa9, 0xe2], 200).chain((b) => fc.tuple(fc.constant(b), chunked(b), fc.nat(6)));
    await fuzzAsync(0x5e95, 500, raw, async ([bytes, pieces, expected]) => {
      expect(await settled(pieces, expected)).toEqual(await settled([bytes], expected));
    });
  }, TEST_TIMEOUT_MS);
});
