/**
 * A hostile next hop that answers with a reply of several megabytes (999
 * lines of 8,000 characters, control characters included): what the client
 * keeps of it, and so every defer reason, bounce text and log line made from
 * it, is bounded and printable, as Postfix's smtp_chat_resp() bounds it.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { ReplyAssembler, REPLY_TEXT_LIMIT } from "../../../src/global/smtp-reply/reply.ts";
import { FakeSmtpServer } from "../../helpers/smtp-server.ts";
import { AgentBench } from "../../helpers/smtp-client-bench.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** 999 lines of 8,000 characters with an ESC sequence in each: about 8 MB. */
function hugeReply(code: string): string {
  const line = `\x1b[2J${"y".repeat(7996)}`;
  return Array.from({ length: 999 }, (_, i) => `${code}${i < 998 ? "-" : " "}${line}`).join("\r\n");
}

/** Generous room for "host NAME[ADDR] said: " and "(in reply to ... command)" around the kept reply text. */
const BOUND = 2 * REPLY_TEXT_LIMIT + 200;

describe("a huge reply from the next hop", () => {
  for (const [stage, code, status] of [
    ["RCPT", "550", "bounced"],
    ["DATA", "451", "deferred"],
  ] as const) {
    test(`${code} to ${stage}: the ${status} reason and the log lines are bounded and printable`, async () => {
      const s = FakeSmtpServer.start(stage === "RCPT" ? { onRcpt: () => hugeReply(code) } : { onData: () => hugeReply(code) });
      cleanups.push(() => s.stop());
      const b = new AgentBench();
      cleanups.push(() => b.close());
      const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
      expect(r!.status).toBe(status);
      expect(r!.reason).toStartWith(`host 127.0.0.1[127.0.0.1] said: ${code}-?[2Jyyy`);
      expect(r!.reason.length).toBeLessThanOrEqual(BOUND);
      expect(r!.reason).not.toMatch(/[^\x20-\x7e]/);
      for (const line of b.logLines()) {
        expect(line.length).toBeLessThanOrEqual(BOUND + 200);
        expect(line).not.toMatch(/[\x00-\x1f\x7f]/);
      }
    }, 30_000);
  }
});

describe("ReplyAssembler", () => {
  test("keeps lines while the kept text is under the limit, reads and drops the rest", () => {
    const a = new ReplyAssembler();
    for (let i = 0; i < 998; i++) expect(a.push(`250-${"k".repeat(100)}`)).toBeUndefined();
    const reply = a.push("250 last")!;
    expect(reply.code).toBe(250);
    expect(reply.truncated).toBe(true);
    expect(reply.lines.join("\n").length).toBeLessThan(REPLY_TEXT_LIMIT + 110);
    // the next reply starts afresh
    expect(a.push("354 go ahead")).toEqual({ code: 354, lines: ["354 go ahead"] });
  });

  test("a line longer than the limit is cut, control characters become ?", () => {
    const a = new ReplyAssembler();
    const reply = a.push(`550 5.1.1 \x1b]0;x\x07${"z".repeat(5000)}`)!;
    expect(reply.lines).toHaveLength(1);
    expect(reply.lines[0]!.length).toBe(REPLY_TEXT_LIMIT);
    expect(reply.lines[0]).toStartWith("550 5.1.1 ?]0;x?zz");
    expect(reply.enhanced).toBe("5.1.1");
  });
});
