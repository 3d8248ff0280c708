/**
 * The SMTP/LMTP client in verify mode (sendmail -bv): a probe with MAIL FROM
 * and RCPT TO, never DATA, then RSET, as Postfix's smtp(8) probes for a
 * trace-only request. The answer for each recipient is the reply to its
 * RCPT TO: 2xx is deliverable (the reply is the reason), 5xx bounced, 4xx
 * deferred, in the same words as a delivery.
 */
import { describe, expect, test } from "bun:test";
import { useAgentTests } from "../../helpers/smtp-client-bench.ts";
import type { FakeSmtpServer } from "../../helpers/smtp-server.ts";

const { server, bench } = useAgentTests();

const relay = (s: FakeSmtpServer) => `[127.0.0.1]:${s.port}`;
const namaddr = "127.0.0.1[127.0.0.1]";
const rcptRules = (a: string) =>
  a.startsWith("bad") ? "550 5.1.1 <bad@example.org>: Recipient address rejected: User unknown" : a.startsWith("later") ? "450 4.2.0 <later@example.org>: Recipient address rejected: try later" : undefined;

/** The verbs the server saw, in order. */
const verbs = (s: FakeSmtpServer) => s.commands.map((c) => c.split(/[\s:]/)[0]!.toUpperCase());

describe("verify mode probes with RCPT TO and sends no DATA", () => {
  for (const pipelining of [true, false]) {
    test(`${pipelining ? "with" : "without"} PIPELINING: deliverable, undeliverable, deferred; RSET ends the probe`, async () => {
      const s = server({ onRcpt: rcptRules, ...(pipelining ? {} : { extensions: ["SIZE 10240000", "8BITMIME", "DSN", "ENHANCEDSTATUSCODES"] }) });
      const b = bench();
      const req = b.request({ nexthop: relay(s), recipients: ["good@example.org", "bad@example.org", "later@example.org"] });
      const results = await b.agent.deliver({ ...req, verify: true });
      expect(results.map((r) => [r.status, r.dsn, r.reason, r.relay])).toEqual([
        ["sent", "2.1.5", "250 2.1.5 Ok", `${namaddr}:${s.port}`],
        ["bounced", "5.1.1", `host ${namaddr} said: 550 5.1.1 <bad@example.org>: Recipient address rejected: User unknown (in reply to RCPT TO command)`, `${namaddr}:${s.port}`],
        ["deferred", "4.2.0", `host ${namaddr} said: 450 4.2.0 <later@example.org>: Recipient address rejected: try later (in reply to RCPT TO command)`, `${namaddr}:${s.port}`],
      ]);
      expect(verbs(s)).toEqual(["EHLO", "MAIL", "RCPT", "RCPT", "RCPT", "RSET"]);
      expect(s.messages).toEqual([]);
    });
  }

  test("MAIL FROM refused: every recipient undeliverable with that reply, still no DATA", async () => {
    const s = server({ onCommand: (verb) => (verb === "MAIL" ? "553 5.7.1 <sender@example.test>: Sender address rejected: not owned by user" : undefined) });
    const b = bench();
    const req = b.request({ nexthop: relay(s), recipients: ["a@example.org", "b@example.org"] });
    const results = await b.agent.deliver({ ...req, verify: true });
    for (const r of results) expect(r).toMatchObject({ status: "bounced", dsn: "5.7.1", reason: expect.stringContaining("(in reply to MAIL FROM command)") });
    expect(verbs(s)).not.toContain("DATA");
    expect(s.messages).toEqual([]);
  });

  test("the probe leaves the session clean: the next real delivery reuses it and sends DATA", async () => {
    const s = server();
    const b = bench({ smtp_connection_cache_on_demand: true });
    const probe = b.request({ nexthop: relay(s) });
    const [v] = await b.agent.deliver({ ...probe, verify: true });
    expect(v).toMatchObject({ status: "sent", reason: "250 2.1.5 Ok" });
    const [d] = await b.deliver({ nexthop: relay(s) });
    expect(d).toMatchObject({ status: "sent", reason: "250 2.0.0 Ok: queued as Q1" });
    expect(s.connections).toBe(1);
    expect(verbs(s)).toEqual(["EHLO", "MAIL", "RCPT", "RSET", "MAIL", "RCPT", "DATA"]);
    expect(s.messages.length).toBe(1);
  });

  test("a message too big for the server is still refused before MAIL FROM, as in a delivery", async () => {
    const s = server({ extensions: ["PIPELINING", "SIZE 100", "ENHANCEDSTATUSCODES"] });
    const b = bench();
    const req = b.request({ nexthop: relay(s), content: `Subject: big\n\n${"x".repeat(500)}\n` });
    const [r] = await b.agent.deliver({ ...req, verify: true });
    expect(r).toMatchObject({ status: "bounced", dsn: "5.3.4" });
    expect(verbs(s)).not.toContain("DATA");
  });
});

describe("LMTP in verify mode", () => {
  test("RCPT TO only; no DATA, no per-recipient data replies", async () => {
    const s = server({ lmtp: true, onRcpt: rcptRules });
    const b = bench({}, { lmtp: true });
    const req = b.request({ nexthop: `inet:127.0.0.1:${s.port}`, recipients: ["good@example.org", "bad@example.org"] });
    const results = await b.agent.deliver({ ...req, verify: true });
    expect(results.map((r) => [r.status, r.dsn])).toEqual([
      ["sent", "2.1.5"],
      ["bounced", "5.1.1"],
    ]);
    expect(verbs(s)).toEqual(["LHLO", "MAIL", "RCPT", "RCPT", "RSET"]);
    expect(s.messages).toEqual([]);
  });
});
