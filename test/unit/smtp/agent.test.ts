/**
 * The SMTP client agent against a scripted server on 127.0.0.1: results
 * and their wording, the protocol it speaks (pipelining, SIZE, 8BITMIME,
 * DSN, SMTPUTF8, HELO fallback, multi-line replies), connection reuse and
 * failures at each stage.
 */
import { describe, expect, test } from "bun:test";
import { useAgentTests } from "../../helpers/smtp-client-bench.ts";
import type { FakeSmtpServer } from "../../helpers/smtp-server.ts";
import { parseOrcpt } from "../../../src/global/message/dsn-params.ts";
import { decodeQueueFile, encodeQueueFile } from "../../../src/global/queue/format.ts";

const { server, bench } = useAgentTests();

const relay = (s: FakeSmtpServer) => `[127.0.0.1]:${s.port}`;

describe("delivery through a relay", () => {
  test("sent: the server's reply, relay=NAME[IP]:PORT, and the message as sent", async () => {
    const s = server();
    const b = bench();
    const results = await b.deliver({ nexthop: relay(s), content: "Subject: hi\n\n.leading dot\nlast line" });
    expect(results).toEqual([{ index: 0, status: "sent", dsn: "2.0.0", reason: "250 2.0.0 Ok: queued as Q1", relay: `127.0.0.1[127.0.0.1]:${s.port}`, action: "relayed" }]);
    expect(s.messages[0]).toMatchObject({ sender: "sender@example.test", recipients: ["rcpt@example.org"], data: "Subject: hi\r\n\r\n.leading dot\r\nlast line\r\n" });
    expect(s.commands[0]).toBe("EHLO client.example.test");
  });

  test("the content the queue manager holds is sent as it is, without reading the queue file again", async () => {
    const s = server();
    const b = bench();
    const req = b.request({ nexthop: relay(s), content: "Subject: on disk\n\nfrom the file\n" });
    // the file read at activation; a delivery that read it again would send the other text
    req.content = () => Buffer.from("Subject: held\n\n.from memory\n");
    const results = await b.agent.deliver(req);
    expect(results).toMatchObject([{ index: 0, status: "sent" }]);
    expect(s.messages[0]!.data).toBe("Subject: held\r\n\r\n.from memory\r\n");
    // undefined (released, or never held): the file is read
    const again = b.request({ nexthop: relay(s), content: "Subject: on disk\n\nfrom the file\n" });
    again.content = () => undefined;
    expect(await b.agent.deliver(again)).toMatchObject([{ index: 0, status: "sent" }]);
    expect(s.messages[1]!.data).toBe("Subject: on disk\r\n\r\nfrom the file\r\n");
  });

  test("several recipients in one transaction, each with its own result", async () => {
    const s = server({ onRcpt: (a) => (a.startsWith("bad") ? "550 5.1.1 <bad@example.org>: Recipient address rejected: User unknown" : a.startsWith("later") ? "451 4.3.0 <later@example.org>: Temporary lookup failure" : undefined) });
    const b = bench();
    const results = await b.deliver({ nexthop: relay(s), recipients: ["good@example.org", "bad@example.org", "later@example.org", "good2@example.org"] });
    const namaddr = "127.0.0.1[127.0.0.1]";
    expect(results.map((r) => [r.status, r.dsn, r.reason])).toEqual([
      ["sent", "2.0.0", "250 2.0.0 Ok: queued as Q1"],
      ["bounced", "5.1.1", `host ${namaddr} said: 550 5.1.1 <bad@example.org>: Recipient address rejected: User unknown (in reply to RCPT TO command)`],
      ["deferred", "4.3.0", `host ${namaddr} said: 451 4.3.0 <later@example.org>: Temporary lookup failure (in reply to RCPT TO command)`],
      ["sent", "2.0.0", "250 2.0.0 Ok: queued as Q1"],
    ]);
    expect(s.transactions).toBe(1);
    expect(s.messages[0]!.recipients).toEqual(["good@example.org", "good2@example.org"]);
  });

  test("MAIL FROM rejected: every recipient fails with the reply", async () => {
    const s = server({ onCommand: (verb) => (verb === "MAIL" ? "553 5.7.1 <sender@example.test>: Sender address rejected: not owned by user" : undefined) });
    const b = bench();
    const results = await b.deliver({ nexthop: relay(s), recipients: ["a@example.org", "b@example.org"] });
    for (const r of results) {
      expect(r).toMatchObject({ status: "bounced", dsn: "5.7.1", reason: "host 127.0.0.1[127.0.0.1] said: 553 5.7.1 <sender@example.test>: Sender address rejected: not owned by user (in reply to MAIL FROM command)" });
    }
    expect(s.transactions).toBe(0);
    expect(s.commands).toContain("RSET");
  });

  test("the end of data refused for now: deferred, in reply to end of DATA command", async () => {
    const s = server({ onData: () => "451 4.7.1 Please try again later" });
    const b = bench();
    const [r] = await b.deliver({ nexthop: relay(s) });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.1", reason: "host 127.0.0.1[127.0.0.1] said: 451 4.7.1 Please try again later (in reply to end of DATA command)", relay: `127.0.0.1[127.0.0.1]:${s.port}` });
  });

  test("a multi-line rejection is one line with every code, as Postfix logs it", async () => {
    const s = server({ onRcpt: () => "550-5.1.1 The email account that you tried to reach does not exist.\r\n550 5.1.1 Please try double-checking. - gsmtp" });
    const b = bench();
    const [r] = await b.deliver({ nexthop: relay(s) });
    expect(r!.reason).toBe(
      "host 127.0.0.1[127.0.0.1] said: 550-5.1.1 The email account that you tried to reach does not exist. 550 5.1.1 Please try double-checking. - gsmtp (in reply to RCPT TO command)",
    );
  });

  test("a reply outside 4xx and 5xx is a protocol error", async () => {
    const s = server({ onCommand: (verb) => (verb === "DATA" ? "250 2.0.0 what" : undefined) });
    const b = bench();
    const [r] = await b.deliver({ nexthop: relay(s) });
    expect(r).toMatchObject({ status: "bounced", dsn: "5.5.0", reason: "Protocol error: host 127.0.0.1[127.0.0.1] said: 250 2.0.0 what (in reply to DATA command)" });
  });

  test("a 4xx greeting defers; a 5xx greeting is treated as 4xx (smtp_skip_5xx_greeting)", async () => {
    const s1 = server({ banner: "421 4.3.2 Service shutting down" });
    const s2 = server({ banner: "554 5.7.1 You are not welcome" });
    const b = bench();
    const [r1] = await b.deliver({ nexthop: relay(s1) });
    const [r2] = await b.deliver({ nexthop: relay(s2) });
    expect(r1).toMatchObject({ status: "deferred", dsn: "4.3.2", reason: "host 127.0.0.1[127.0.0.1] refused to talk to me: 421 4.3.2 Service shutting down" });
    expect(r2).toMatchObject({ status: "deferred", dsn: "4.7.1", reason: "host 127.0.0.1[127.0.0.1] refused to talk to me: 554 5.7.1 You are not welcome" });
  });

  test("connection refused: deferred with relay=none, the attempt logged", async () => {
    const s = server();
    const port = s.port;
    s.stop();
    const b = bench({ relayhost: `[127.0.0.1]:${port}` });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${port}` });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.4.1", reason: `connect to 127.0.0.1[127.0.0.1]:${port}: Connection refused`, relay: "none" });
    expect(b.logLines().some((l) => l.endsWith(`/smtp[${process.pid}]: connect to 127.0.0.1[127.0.0.1]:${port}: Connection refused`))).toBe(true);
  });

  test("the server hangs up after its greeting", async () => {
    const s = server({ hangUpAfterGreeting: () => true });
    const b = bench();
    const [r] = await b.deliver({ nexthop: relay(s) });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.4.2", reason: "lost connection with 127.0.0.1[127.0.0.1] while performing the EHLO handshake" });
  });

  test("a server that does not answer in time", async () => {
    const s = server({ onCommand: (verb) => (verb === "DATA" ? "" : undefined) });
    const b = bench({ smtp_data_init_timeout: "1s" });
    const [r] = await b.deliver({ nexthop: relay(s) });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.4.2", reason: "conversation with 127.0.0.1[127.0.0.1] timed out while sending DATA command" });
  });

  test("a malformed reply ends the session", async () => {
    const s = server({ onCommand: (verb) => (verb === "MAIL" ? "hello there" : undefined) });
    const b = bench();
    const [r] = await b.deliver({ nexthop: relay(s) });
    expect(r!.status).toBe("deferred");
    expect(r!.reason).toStartWith("malformed reply from 127.0.0.1[127.0.0.1] while sending MAIL FROM");
  });
});

describe("ESMTP", () => {
  test("HELO when EHLO is refused, and no ESMTP parameters then", async () => {
    const s = server({ ehloReply: "502 5.5.2 Error: command not recognized" });
    const b = bench();
    const [r] = await b.deliver({ nexthop: relay(s), attributes: { encoding: "8BITMIME" } });
    expect(r!.status).toBe("sent");
    expect(s.commands.slice(0, 3)).toEqual(["EHLO client.example.test", "HELO client.example.test", "MAIL FROM:<sender@example.test>"]);
  });

  test("smtp_never_send_ehlo", async () => {
    const s = server();
    const b = bench({ smtp_never_send_ehlo: true });
    await b.deliver({ nexthop: relay(s) });
    expect(s.commands[0]).toBe("HELO client.example.test");
  });

  test("SIZE, BODY=8BITMIME and DSN parameters when the server offers them", async () => {
    const s = server();
    const b = bench();
    const [r] = await b.deliver({
      nexthop: relay(s),
      recipients: [{ address: "a@example.org", notify: ["SUCCESS", "FAILURE"], original: "alias@example.test" }, { address: "b@example.org", orcpt: "rfc822;b+x@example.org" }],
      attributes: { encoding: "8BITMIME", envid: "env id+1", ret: "HDRS" },
      content: "Subject: x\n\nhi\n",
    });
    expect(s.commands[1]).toBe("MAIL FROM:<sender@example.test> SIZE=18 BODY=8BITMIME ENVID=env+20id+2B1 RET=HDRS");
    expect(s.commands[2]).toBe("RCPT TO:<a@example.org> ORCPT=rfc822;alias@example.test NOTIFY=SUCCESS,FAILURE");
    expect(s.commands[3]).toBe("RCPT TO:<b@example.org> ORCPT=rfc822;b+2Bx@example.org");
    // the next hop announced DSN and was told NOTIFY=SUCCESS: the success notice is its job now
    expect(r).toMatchObject({ status: "sent", action: "relayed", dsnPassedOn: true });
  });

  test("ORCPT over UTF-8: xtext of the octets for rfc822, utf-8-addr-xtext for utf-8 (as Postfix's smtp client)", async () => {
    const s = server();
    const b = bench();
    await b.deliver({
      nexthop: relay(s),
      recipients: [
        { address: "a@example.org", orcpt: "rfc822;\u0100€+x@example.org" },
        { address: "b@example.org", orcpt: "utf-8;jürgen+x\\y@example.org" },
      ],
      content: "Subject: x\n\nhi\n",
    });
    expect(s.commands[2]).toBe("RCPT TO:<a@example.org> ORCPT=rfc822;+C4+80+E2+82+AC+2Bx@example.org");
    expect(s.commands[3]).toBe("RCPT TO:<b@example.org> ORCPT=utf-8;j\\x{FC}rgen\\x{2B}x\\x{5C}y@example.org");
  });

  // what smtpd accepts as Postfix's does ("=", octets that are not UTF-8, controls, \x{D800}) is queued, read back
  // and sent as valid xtext or utf-8-addr-xtext that the next hop (our smtpd's parser) reads as we did
  test("ORCPT and ENVID round trip: as smtpd read them, through the queue file, out as valid xtext", async () => {
    const s = server();
    const b = bench();
    const sent = [
      ["rfc822;a=b@example.org", "rfc822;a+3Db@example.org"],
      ["rfc822;j+FCrgen@example.org", "rfc822;j+FCrgen@example.org"],
      ["rfc822;a+0Ab@example.org", "rfc822;a+0Ab@example.org"],
      ["utf-8;a\\x{D800}\\b@example.org", "utf-8;a\\x{D800}\\x{5C}b@example.org"],
    ];
    const kept = sent.map(([wire]) => parseOrcpt(wire!)!);
    const queued = decodeQueueFile(encodeQueueFile({ arrivalTime: 0, sender: "", recipients: kept.map((orcpt, i) => ({ address: `r${i}@example.org`, orcpt })), attributes: {}, content: Buffer.alloc(0) }));
    await b.deliver({ nexthop: relay(s), recipients: queued.recipients, attributes: { envid: "a=b\tc" } });
    expect(s.commands[1]).toEndWith(" ENVID=a+3Db+09c");
    for (const [i, [, out]] of sent.entries()) {
      expect(s.commands[2 + i]).toBe(`RCPT TO:<r${i}@example.org> ORCPT=${out}`);
      expect(parseOrcpt(out!)).toBe(kept[i]!);
    }
  });

  // before session 6 smtpd queued a utf-8 ORCPT as it came ("\x{FC}" and all); it went out as "\x{5C}x{FC}"
  test("a utf-8 ORCPT queued undecoded by an older postern goes out as it came in", async () => {
    const s = server();
    const b = bench();
    await b.deliver({ nexthop: relay(s), recipients: [{ address: "a@example.org", orcpt: "utf-8;j\\x{FC}rgen\\x{20AC}@example.org" }] });
    expect(s.commands[2]).toBe("RCPT TO:<a@example.org> ORCPT=utf-8;j\\x{FC}rgen\\x{20AC}@example.org");
  });

  test("no ORCPT kept: a non-ASCII original recipient is of type utf-8 when the sender asked for SMTPUTF8, else rfc822", async () => {
    for (const [smtputf8, orcpt] of [["yes", "utf-8;j\\x{FC}rg@example.test"], [undefined, "rfc822;j+C3+BCrg@example.test"]] as const) {
      const s = server({ extensions: ["PIPELINING", "8BITMIME", "DSN", "SMTPUTF8"] });
      const b = bench();
      await b.deliver({ nexthop: relay(s), recipients: [{ address: "a@example.org", original: "jürg@example.test" }], ...(smtputf8 ? { attributes: { smtputf8 } } : {}) });
      expect(s.commands[2]).toBe(`RCPT TO:<a@example.org> ORCPT=${orcpt}`);
    }
  });

  test("no DSN parameters for a server without DSN; the success notice stays ours", async () => {
    const s = server({ extensions: ["PIPELINING", "8BITMIME"] });
    const b = bench();
    const [r] = await b.deliver({ nexthop: relay(s), recipients: [{ address: "a@example.org", notify: ["SUCCESS"] }], attributes: { envid: "x", ret: "FULL" } });
    expect(s.commands[1]).toBe("MAIL FROM:<sender@example.test>");
    expect(s.commands[2]).toBe("RCPT TO:<a@example.org>");
    expect(r!.dsnPassedOn).toBeUndefined();
    expect(r!.action).toBe("relayed");
  });

  test("the null sender and addresses that need quoting", async () => {
    const s = server();
    const b = bench();
    await b.deliver({ nexthop: relay(s), sender: "", recipients: ["john doe@example.org"] });
    expect(s.commands[1]).toStartWith("MAIL FROM:<> ");
    expect(s.commands[2]).toBe('RCPT TO:<"john doe"@example.org>');
  });

  test("a message larger than the server's SIZE bounces without being sent", async () => {
    const s = server({ extensions: ["PIPELINING", "SIZE 100"] });
    const b = bench();
    const [r] = await b.deliver({ nexthop: relay(s), content: `Subject: big\n\n${"x".repeat(200)}\n` });
    expect(r).toMatchObject({ status: "bounced", dsn: "5.3.4", reason: "message size 218 exceeds size limit 100 of server 127.0.0.1[127.0.0.1]" });
    expect(s.commands.some((c) => c.startsWith("MAIL"))).toBe(false);
  });

  test("SMTPUTF8 needed but not offered bounces", async () => {
    const s = server();
    const b = bench();
    const [r] = await b.deliver({ nexthop: relay(s), recipients: ["jörg@example.org"], attributes: { smtputf8: "yes" } });
    expect(r).toMatchObject({ status: "bounced", dsn: "5.6.7", reason: "SMTPUTF8 is required, but was not offered by host 127.0.0.1[127.0.0.1]" });
  });

  test("SMTPUTF8 passed on when offered", async () => {
    const s = server({ extensions: ["PIPELINING", "8BITMIME", "SMTPUTF8"] });
    const b = bench();
    const [r] = await b.deliver({ nexthop: relay(s), recipients: ["jörg@example.org"], attributes: { smtputf8: "yes" } });
    expect(r!.status).toBe("sent");
    expect(s.commands[1]).toEndWith(" SMTPUTF8");
  });

  test("without PIPELINING every command waits for its reply, and DATA is not sent when no recipient was accepted", async () => {
    const s = server({ extensions: ["8BITMIME"], onRcpt: () => "550 5.1.1 no such user" });
    const b = bench();
    const [r] = await b.deliver({ nexthop: relay(s) });
    expect(r!.status).toBe("bounced");
    expect(s.commands.filter((c) => c !== "QUIT")).toEqual(["EHLO client.example.test", "MAIL FROM:<sender@example.test>", "RCPT TO:<rcpt@example.org>", "RSET"]);
  });

  test("long lines are broken at smtp_line_length_limit", async () => {
    const s = server();
    const b = bench({ smtp_line_length_limit: 50 });
    await b.deliver({ nexthop: relay(s), content: `Subject: x\n\n${"y".repeat(120)}\n` });
    const lines = s.messages[0]!.data.split("\r\n");
    expect(lines.slice(2, 5)).toEqual(["y".repeat(50), ` ${"y".repeat(49)}`, ` ${"y".repeat(21)}`]);
  });
});

describe("connection reuse", () => {
  test("several messages over one connection", async () => {
    const s = server();
    const b = bench();
    for (let i = 0; i < 3; i++) {
      const [r] = await b.deliver({ nexthop: relay(s) });
      expect(r!.status).toBe("sent");
    }
    expect(s.connections).toBe(1);
    expect(s.transactions).toBe(3);
    expect(s.commands.filter((c) => c.startsWith("EHLO"))).toHaveLength(1);
  });

  test("no reuse with smtp_connection_cache_on_demand = no", async () => {
    const s = server();
    const b = bench({ smtp_connection_cache_on_demand: false });
    await b.deliver({ nexthop: relay(s) });
    await b.deliver({ nexthop: relay(s) });
    expect(s.connections).toBe(2);
  });

  test("smtp_connection_cache_destinations keeps connections for the named destinations", async () => {
    const s = server();
    const b = bench({ smtp_connection_cache_on_demand: false, smtp_connection_cache_destinations: "127.0.0.1" });
    await b.deliver({ nexthop: relay(s) });
    await b.deliver({ nexthop: relay(s) });
    expect(s.connections).toBe(1);
  });

  test("smtp_connection_reuse_count_limit", async () => {
    const s = server();
    const b = bench({ smtp_connection_reuse_count_limit: 2 });
    for (let i = 0; i < 4; i++) await b.deliver({ nexthop: relay(s) });
    expect(s.connections).toBe(2);
  });

  test("a cached connection the server dropped is replaced without a failure", async () => {
    const s = server({ onCommand: (verb, _line, st) => (verb === "MAIL" && st.connection === 1 && st.transaction === 1 ? "421 4.4.2 idle too long" : undefined) });
    const b = bench();
    expect((await b.deliver({ nexthop: relay(s) }))[0]!.status).toBe("sent");
    const [r] = await b.deliver({ nexthop: relay(s) });
    expect(r!.status).toBe("sent");
    expect(s.connections).toBe(2);
  });

  test("after a rejected transaction the connection is RSET and reused", async () => {
    const s = server({ onRcpt: (a) => (a.startsWith("bad") ? "550 5.1.1 unknown" : undefined) });
    const b = bench();
    await b.deliver({ nexthop: relay(s), recipients: ["bad@example.org"] });
    const [r] = await b.deliver({ nexthop: relay(s), recipients: ["good@example.org"] });
    expect(r!.status).toBe("sent");
    expect(s.connections).toBe(1);
  });
});

describe("relays in order and the fallback relay", () => {
  test("the next relay of the list when the first refuses connections", async () => {
    const dead = server();
    const deadPort = dead.port;
    dead.stop();
    const s = server();
    const b = bench();
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${deadPort}, [127.0.0.1]:${s.port}` });
    expect(r).toMatchObject({ status: "sent", relay: `127.0.0.1[127.0.0.1]:${s.port}` });
  });

  test("a temporary refusal moves on to the next relay; a permanent one does not", async () => {
    const first = server({ onRcpt: () => "450 4.2.0 mailbox busy" });
    const second = server();
    const b = bench();
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${first.port} [127.0.0.1]:${second.port}` });
    expect(r!.status).toBe("sent");
    expect(b.logLines().some((l) => l.includes(": host 127.0.0.1[127.0.0.1] said: 450 4.2.0 mailbox busy (in reply to RCPT TO command)"))).toBe(true);

    const hard = server({ onRcpt: () => "550 5.1.1 unknown" });
    const third = server();
    const [h] = await b.deliver({ nexthop: `[127.0.0.1]:${hard.port} [127.0.0.1]:${third.port}` });
    expect(h!.status).toBe("bounced");
    expect(third.connections).toBe(0);
  });

  test("smtp_fallback_relay after the destination's servers", async () => {
    const dead = server();
    const deadPort = dead.port;
    dead.stop();
    const fallback = server();
    const b = bench({ smtp_fallback_relay: `[127.0.0.1]:${fallback.port}` });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${deadPort}` });
    expect(r).toMatchObject({ status: "sent", relay: `127.0.0.1[127.0.0.1]:${fallback.port}` });
  });

  test("sender_dependent_relayhost_maps overrides relayhost for a sender", async () => {
    const main = server();
    const special = server();
    const b = bench({ relayhost: `[127.0.0.1]:${main.port}`, sender_dependent_relayhost_maps: `inline:{ {boss@example.test = [127.0.0.1]:${special.port}} }` });
    await b.deliver({ nexthop: `[127.0.0.1]:${main.port}`, sender: "boss@example.test" });
    await b.deliver({ nexthop: `[127.0.0.1]:${main.port}`, sender: "other@example.test" });
    expect(special.messages.map((m) => m.sender)).toEqual(["boss@example.test"]);
    expect(main.messages.map((m) => m.sender)).toEqual(["other@example.test"]);
  });

  test("a relayhost that permanently fails is a configuration problem: deferred 4.3.5", async () => {
    const b = bench({ relayhost: "[127.0.0.1]:25" });
    const [r] = await b.deliver({ nexthop: "[127.0.0.1]:25" });
    // 127.0.0.1 is this machine (inet_interfaces): mail for it loops
    expect(r).toMatchObject({ status: "deferred", dsn: "4.3.5", reason: "mail for 127.0.0.1 loops back to myself" });
    expect(b.logLines().some((l) => l.includes("warning: relayhost configuration problem"))).toBe(true);
  });

  test("a bad next hop defers with the problem", async () => {
    const b = bench();
    const [r] = await b.deliver({ nexthop: "[127.0.0.1]:notaport" });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.3.5", reason: 'server configuration error: unknown service "notaport" in destination "[127.0.0.1]:notaport"' });
  });
});
