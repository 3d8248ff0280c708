import { describe, expect, test } from "bun:test";
import { reply } from "../../../../src/smtpd/protocol/reply.ts";
import type { SaslServer, SaslStep, TlsSummary } from "../../../../src/smtpd/protocol/types.ts";
import { start } from "./harness.ts";

const EHLO_REPLY =
  "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n";

describe("greeting and hello", () => {
  test("banner, EHLO keywords in Postfix's order, HELO", async () => {
    const { t } = start();
    expect(await t.reply()).toBe("220 mx.example.test ESMTP postern\r\n");
    expect(await t.cmd("EHLO client.example.org")).toBe(EHLO_REPLY);
    expect(await t.cmd("HELO client.example.org")).toBe("250 mx.example.test\r\n");
    expect(await t.cmd("HELO")).toBe("501 Syntax: HELO hostname\r\n");
    expect(await t.cmd("EHLO")).toBe("501 Syntax: EHLO hostname\r\n");
  });

  test("smtpd_discard_ehlo_keywords, SIZE without a limit, VRFY disabled, SMTPUTF8 off", async () => {
    const { t } = start({ settings: { discardEhloKeywords: new Set(["pipelining", "chunking", "dsn"]), messageSizeLimit: 0, disableVrfy: true, smtputf8: false } });
    await t.reply();
    expect(await t.cmd("EHLO x")).toBe("250-mx.example.test\r\n250-SIZE\r\n250-ETRN\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n");
    expect(await t.cmd("BDAT 0 LAST")).toBe("500 5.5.2 Error: command not recognized\r\n");
    expect(await t.cmd("VRFY root")).toBe("502 5.5.1 VRFY command is disabled\r\n");
    expect(await t.cmd("MAIL FROM:<a@example.org> RET=FULL")).toBe("555 5.5.4 Unsupported option: RET=FULL\r\n");
  });

  test("discarding ENHANCEDSTATUSCODES takes the codes out of replies", async () => {
    const { t } = start({ settings: { discardEhloKeywords: new Set(["enhancedstatuscodes"]) } });
    await t.reply();
    await t.cmd("EHLO x");
    expect(await t.cmd("MAIL FROM:<a@example.org>")).toBe("250 Ok\r\n");
  });
});

describe("sequence and syntax errors, with Postfix's replies", () => {
  test("the usual mistakes", async () => {
    const { t, logs } = start({ settings: { heloRequired: true, hardErrorLimit: 100 } });
    await t.reply();
    expect(await t.cmd("MAIL FROM:<a@example.org>")).toBe("503 5.5.1 Error: send HELO/EHLO first\r\n");
    await t.cmd("EHLO x");
    expect(await t.cmd("RCPT TO:<b@example.org>")).toBe("503 5.5.1 Error: need MAIL command\r\n");
    expect(await t.cmd("DATA")).toBe("503 5.5.1 Error: need RCPT command\r\n");
    expect(await t.cmd("MAIL TO:<a@example.org>")).toBe("501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
    expect(await t.cmd("MAIL FROM:<a@b@>>")).toBe("501 5.1.7 Bad sender address syntax\r\n");
    expect(await t.cmd("MAIL FROM:<a@example.org> FOO=1")).toBe("555 5.5.4 Unsupported option: FOO=1\r\n");
    expect(await t.cmd("MAIL FROM:<a@example.org> SIZE=x")).toBe("501 5.5.4 Bad message size syntax\r\n");
    expect(await t.cmd("MAIL FROM:<a@example.org> BODY=foo")).toBe("555 5.5.4 Unsupported option: BODY=foo\r\n");
    expect(await t.cmd("MAIL FROM:<a@example.org> ENVID=a+2")).toBe("501 5.5.4 Bad ENVID parameter syntax\r\n");
    expect(await t.cmd("MAIL FROM:<a@example.org> SIZE=20000000")).toBe("552 5.3.4 Message size exceeds fixed limit\r\n");
    expect(await t.cmd("MAIL FROM:a@example.org")).toBe("250 2.1.0 Ok\r\n");
    expect(await t.cmd("MAIL FROM:<a@example.org>")).toBe("503 5.5.1 Error: nested MAIL command\r\n");
    expect(await t.cmd("RCPT TO:<>")).toBe("501 5.1.3 Bad recipient address syntax\r\n");
    expect(await t.cmd("RCPT TO:<b@example.org> NOTIFY=FOO")).toBe("501 5.5.4 Error: Bad NOTIFY parameter syntax\r\n");
    expect(await t.cmd("RCPT TO:<b@example.org> NOTIFY=NEVER,SUCCESS")).toBe("501 5.5.4 Error: Bad NOTIFY parameter syntax\r\n");
    expect(await t.cmd("RCPT TO:<b@example.org> ORCPT=x")).toBe("501 5.5.4 Error: Bad ORCPT parameter syntax\r\n");
    expect(await t.cmd("RCPT TO:<b@example.org> <c>")).toBe("555 5.5.4 Unsupported option: <c>\r\n");
    expect(await t.cmd("DATA")).toBe("554 5.5.1 Error: no valid recipients\r\n");
    expect(await t.cmd("FOO")).toBe("500 5.5.2 Error: command not recognized\r\n");
    expect(await t.cmd("")).toBe("500 5.5.2 Error: bad syntax\r\n");
    expect(await t.cmd("RSET x")).toBe("501 5.5.4 Syntax: RSET\r\n");
    expect(await t.cmd("NOOP x")).toBe("250 2.0.0 Ok\r\n");
    expect(await t.cmd("HELP")).toMatch(/^214 2\.0\.0 Commands: /);
    expect(await t.cmd("QUIT")).toBe("221 2.0.0 Bye\r\n");
    expect(await t.closedAfter()).toBe(true);
    expect(logs).toContain("NOQUEUE: reject: DATA from client.example.org[192.0.2.7]: 554 5.5.1 Error: no valid recipients; from=<a@example.org> to=<b@example.org> proto=ESMTP helo=<x>");
    expect(logs).toContain("warning: Illegal address syntax from client.example.org[192.0.2.7] in RCPT command: <>");
  });

  test("the disconnect line counts commands as Postfix does", async () => {
    const { t, logs, done } = start();
    await t.reply();
    await t.cmd("EHLO x");
    await t.cmd("MAIL FROM:<a@example.org>");
    await t.cmd("RCPT TO:<>");
    await t.cmd("BOGUS");
    await t.cmd("QUIT");
    await done;
    expect(logs.at(-1)).toBe("disconnect from client.example.org[192.0.2.7] ehlo=1 mail=1 rcpt=0/1 quit=1 unknown=0/1 commands=3/5");
    expect(logs[0]).toBe("connect from client.example.org[192.0.2.7]");
  });

  test("non-SMTP commands end the session (smtpd_forbidden_commands, lines starting with a non-letter)", async () => {
    for (const line of ["GET / HTTP/1.1", "POST /x", ". something"]) {
      const { t, logs } = start();
      await t.reply();
      expect(await t.cmd(line)).toBe("221 2.7.0 Error: I can break rules, too. Goodbye.\r\n");
      expect(await t.closedAfter()).toBe(true);
      expect(logs.some((l) => l.startsWith("warning: non-SMTP command from client.example.org[192.0.2.7]: "))).toBe(true);
    }
  });
});

describe("a message", () => {
  test("DATA: the sink gets envelope, DSN parameters and unstuffed content; the reply names the queue ID", async () => {
    const { t, sink, logs } = start();
    await t.reply();
    await t.cmd("EHLO client.example.org");
    expect(await t.cmd("MAIL FROM:<Sender@Example.org> BODY=8BITMIME RET=HDRS ENVID=abc+2Bdef SMTPUTF8 SIZE=100")).toBe("250 2.1.0 Ok\r\n");
    expect(await t.cmd("RCPT TO:<a@example.net> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+40x@example.net")).toBe("250 2.1.5 Ok\r\n");
    expect(await t.cmd('RCPT TO:<"b c"@example.net>')).toBe("250 2.1.5 Ok\r\n");
    expect(await t.cmd("DATA")).toBe("354 End data with <CR><LF>.<CR><LF>\r\n");
    t.send("Subject: hi\r\n\r\n..dot\r\nend\r\n.\r\n");
    expect(await t.reply()).toBe("250 2.0.0 Ok: queued as ID1\r\n");
    const m = sink.messages[0]!;
    expect(m.sender).toBe("Sender@Example.org");
    expect(m.mailParams).toEqual({ body: "8BITMIME", ret: "HDRS", envid: "abc+def", smtputf8: true, size: 100 });
    expect(m.recipients).toEqual([
      { address: "a@example.net", written: "a@example.net", notify: ["SUCCESS", "DELAY"], orcpt: "rfc822;a@x@example.net" },
      { address: "b c@example.net", written: '"b c"@example.net' },
    ]);
    expect(m.content.toString()).toBe("Subject: hi\n\n.dot\nend\n");
    expect(m.received("ID1")).toMatch(/^Received: from client\.example\.org \(client\.example\.org \[192\.0\.2\.7\]\)\n\tby mx\.example\.test \(postern\) with UTF8SMTP id ID1; \w{3}, /);
    // the transaction is over: a new MAIL is fine
    expect(await t.cmd("MAIL FROM:<>")).toBe("250 2.1.0 Ok\r\n");
    expect(logs).not.toContain(expect.stringContaining("reject"));
  });

  test("ORCPT with UTF-8: xtext octets and utf-8-addr-xtext are kept decoded, as Postfix's smtpd keeps them", async () => {
    const { t, sink } = start();
    await t.reply();
    await t.cmd("EHLO client.example.org");
    expect(await t.cmd("MAIL FROM:<s@example.org> SMTPUTF8")).toBe("250 2.1.0 Ok\r\n");
    expect(await t.cmd("RCPT TO:<a@example.net> ORCPT=rfc822;j+C3+BCrgen+E2+82+AC@example.net")).toBe("250 2.1.5 Ok\r\n");
    expect(await t.cmd("RCPT TO:<b@example.net> ORCPT=utf-8;j\\x{FC}rgen\\x{20AC}@example.net")).toBe("250 2.1.5 Ok\r\n");
    // unitext: the raw UTF-8 octets (the harness sends one byte per character)
    expect(await t.cmd(Buffer.from("RCPT TO:<c@example.net> ORCPT=utf-8;jürgen@example.net", "utf8").toString("latin1"))).toBe("250 2.1.5 Ok\r\n");
    await t.cmd("DATA");
    t.send("Subject: hi\r\n\r\nx\r\n.\r\n");
    expect(await t.reply()).toStartWith("250 2.0.0 Ok: queued as ");
    expect(sink.messages[0]!.recipients.map((r) => r.orcpt)).toEqual(["rfc822;jürgen€@example.net", "utf-8;jürgen€@example.net", "utf-8;jürgen@example.net"]);
  });

  // Postfix's smtpd: xtext_unquote/uxtext_unquote must succeed and the address hold no NUL (ORCPT); ENVID also
  // all_isprint_tab. Everything else passes: "=", raw UTF-8, octets that are not UTF-8, controls, any type
  test("ORCPT and ENVID: accepted and refused as Postfix's smtpd accepts and refuses them", async () => {
    const { t, sink } = start();
    await t.reply();
    await t.cmd("EHLO client.example.org");
    for (const bad of ["ENVID=a+2", "ENVID=+00", "ENVID=a+0Ab", "ENVID=j+C3+BCrgen", "ENVID=+FC", `ENVID=${"x".repeat(101)}`, "ENVID="]) {
      expect({ bad, r: await t.cmd(`MAIL FROM:<s@example.org> ${bad}`) }).toEqual({ bad, r: "501 5.5.4 Bad ENVID parameter syntax\r\n" });
    }
    expect(await t.cmd(Buffer.from("MAIL FROM:<s@example.org> ENVID=jürgen", "utf8").toString("latin1"))).toBe("501 5.5.4 Bad ENVID parameter syntax\r\n");
    expect(await t.cmd("MAIL FROM:<s@example.org> ENVID=a=b+09c")).toBe("250 2.1.0 Ok\r\n");
    const accepted = [
      ["ORCPT=rfc822;a=b@example.net", "rfc822;a=b@example.net"],
      ["ORCPT=rfc822;j+FCrgen@example.net", "rfc822;j\udcfcrgen@example.net"],
      ["ORCPT=rfc822;a+0Ab@example.net", "rfc822;a\nb@example.net"],
      ["ORCPT=rfc822;", "rfc822;"],
      ["ORCPT=x=y;z", "x=y;z"],
      ["ORCPT=utf-8;\\x{D800}@example.net", "utf-8;\ud800@example.net"],
      ["ORCPT=utf-8;a\\b@example.net", "utf-8;a\\b@example.net"],
    ];
    for (const [i, [param]] of accepted.entries()) expect(await t.cmd(`RCPT TO:<r${i}@example.net> ${param}`)).toBe("250 2.1.5 Ok\r\n");
    // raw UTF-8 in xtext: its own octets (the harness sends one byte per character)
    expect(await t.cmd(Buffer.from("RCPT TO:<u@example.net> ORCPT=rfc822;jürgen@example.net", "utf8").toString("latin1"))).toBe("250 2.1.5 Ok\r\n");
    for (const bad of ["ORCPT=rfc822;a+0", "ORCPT=rfc822;a+00b", "ORCPT=;a", "ORCPT=a", "ORCPT=utf-8;\\x{}", "ORCPT=utf-8;\\x{110000}", "ORCPT=utf-8;\\x{41", `ORCPT=rfc822;${"z".repeat(501)}`]) {
      expect({ bad, r: await t.cmd(`RCPT TO:<b@example.net> ${bad}`) }).toEqual({ bad, r: "501 5.5.4 Error: Bad ORCPT parameter syntax\r\n" });
    }
    await t.cmd("DATA");
    t.send("Subject: hi\r\n\r\nx\r\n.\r\n");
    expect(await t.reply()).toStartWith("250 2.0.0 Ok: queued as ");
    const m = sink.messages[0]!;
    expect(m.mailParams.envid).toBe("a=b\tc");
    expect(m.recipients.map((r) => r.orcpt)).toEqual([...accepted.map(([, kept]) => kept), "rfc822;jürgen@example.net"]);
  });

  // Postfix's smtpd_sasl_mail_opt: AUTH= is not decoded, only made printable; a second one is a 503
  test("MAIL AUTH= is kept as sent, as Postfix keeps it; a second one is refused with Postfix's 503", async () => {
    const { t, sink } = start();
    await t.reply();
    await t.cmd("EHLO client.example.org");
    expect(await t.cmd("MAIL FROM:<s@example.org> AUTH=a AUTH=b")).toBe("503 5.5.4 Error: multiple AUTH= options\r\n");
    expect(await t.cmd("MAIL FROM:<s@example.org> AUTH=a+2=b\x01c+40d")).toBe("250 2.1.0 Ok\r\n");
    await t.cmd("RCPT TO:<b@example.net>");
    await t.cmd("DATA");
    t.send("Subject: hi\r\n\r\nx\r\n.\r\n");
    expect(await t.reply()).toStartWith("250 2.0.0 Ok: queued as ");
    expect(sink.messages[0]!.mailParams.auth).toBe("a+2=b?c+40d");
  });

  test("one recipient: the Received: header says for <...>; TLS and SASL details when asked", async () => {
    const { t, sink } = start();
    await t.reply();
    await t.cmd("HELO h");
    await t.cmd("MAIL FROM:<a@example.org>");
    await t.cmd("RCPT TO:<one@example.net>");
    await t.cmd("DATA");
    t.send("x\r\n.\r\n");
    await t.reply();
    expect(sink.messages[0]!.received("Q1")).toMatch(/^Received: from h \(client\.example\.org \[192\.0\.2\.7\]\)\n\tby mx\.example\.test \(postern\) with SMTP id Q1\n\tfor <one@example\.net>; /);
  });

  test("over message_size_limit: 552 5.3.4 after the end of DATA, nothing queued", async () => {
    const { t, sink } = start({ settings: { messageSizeLimit: 50 } });
    await t.reply();
    await t.cmd("EHLO x");
    await t.cmd("MAIL FROM:<a@example.org>");
    await t.cmd("RCPT TO:<b@example.org>");
    await t.cmd("DATA");
    t.send(`${"y".repeat(100)}\r\n.\r\n`);
    expect(await t.reply()).toBe("552 5.3.4 Error: message file too big\r\n");
    expect(sink.messages).toEqual([]);
  });

  test("the sink refuses (disk full): the client hears it and nothing is acknowledged", async () => {
    const { t, sink } = start();
    sink.refuse = reply(452, "4.3.1", "Insufficient system storage");
    await t.reply();
    await t.cmd("EHLO x");
    await t.cmd("MAIL FROM:<a@example.org>");
    await t.cmd("RCPT TO:<b@example.org>");
    await t.cmd("DATA");
    t.send("x\r\n.\r\n");
    expect(await t.reply()).toBe("452 4.3.1 Insufficient system storage\r\n");
    sink.space = reply(452, "4.3.1", "Insufficient system storage");
    expect(await t.cmd("MAIL FROM:<a@example.org>")).toBe("452 4.3.1 Insufficient system storage\r\n");
  });

  test("smtpd_recipient_limit: 452 4.5.3 beyond it", async () => {
    const { t } = start({ settings: { recipientLimit: 2 } });
    await t.reply();
    await t.cmd("EHLO x");
    await t.cmd("MAIL FROM:<a@example.org>");
    expect(await t.cmd("RCPT TO:<1@example.org>")).toBe("250 2.1.5 Ok\r\n");
    expect(await t.cmd("RCPT TO:<2@example.org>")).toBe("250 2.1.5 Ok\r\n");
    expect(await t.cmd("RCPT TO:<3@example.org>")).toBe("452 4.5.3 Error: too many recipients\r\n");
  });

  test("smtpd_forbid_bare_newline = reject: a command or a message with a bare LF is refused", async () => {
    const { t, sink } = start({ settings: { bareNewline: "reject" } });
    await t.reply();
    t.send("EHLO x\n");
    expect(await t.reply()).toBe("550 5.5.2 Error: bare <LF> received\r\n");
    await t.cmd("EHLO x");
    await t.cmd("MAIL FROM:<a@example.org>");
    await t.cmd("RCPT TO:<b@example.org>");
    await t.cmd("DATA");
    t.send("line\n.\nMAIL FROM:<evil@example.org>\r\n.\r\n");
    expect(await t.reply()).toBe("550 5.5.2 Error: bare <LF> received\r\n");
    expect(sink.messages).toEqual([]);
    expect(await t.cmd("NOOP")).toBe("250 2.0.0 Ok\r\n");
  });
});

describe("BDAT (CHUNKING)", () => {
  test("chunks, then LAST queues the message; CRLF becomes LF, no dot-unstuffing", async () => {
    const { t, sink } = start();
    await t.reply();
    await t.cmd("EHLO x");
    t.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 12\r\nSubject: x\r\n");
    expect(await t.reply()).toBe("250 2.1.0 Ok\r\n");
    expect(await t.reply()).toBe("250 2.1.5 Ok\r\n");
    expect(await t.reply()).toBe("250 2.0.0 Ok: 12 bytes\r\n");
    expect(await t.cmd("DATA")).toBe("503 5.5.1 Error: DATA after BDAT\r\n");
    expect(await t.cmd("MAIL FROM:<a@example.org>")).toBe("503 5.5.1 Error: MAIL after BDAT\r\n");
    t.send("BDAT 10 LAST\r\n\r\n..body\r\n");
    expect(await t.reply()).toBe("250 2.0.0 Ok: 22 bytes queued as ID1\r\n");
    expect(sink.messages[0]!.content.toString()).toBe("Subject: x\n\n..body\n");
  });

  test("without a transaction the chunk is read and refused, then discarded until LAST", async () => {
    const { t } = start();
    await t.reply();
    await t.cmd("EHLO x");
    t.send("BDAT 3\r\nabc");
    expect(await t.reply()).toBe("503 5.5.1 Error: need RCPT command\r\n");
    expect(await t.cmd("MAIL FROM:<a@example.org>")).toBe("503 5.5.1 Error: MAIL after BDAT\r\n");
    t.send("BDAT 2 LAST\r\nxy");
    expect(await t.reply()).toBe("551 5.0.0 Discarded 2 bytes after earlier error\r\n");
    expect(await t.cmd("MAIL FROM:<a@example.org>")).toBe("250 2.1.0 Ok\r\n");
    t.send("BDAT 0\r\n");
    expect(await t.reply()).toBe("554 5.5.1 Error: no valid recipients\r\n");
  });

  test("a BDAT count that is not a number ends the session (the client and server are out of step)", async () => {
    const { t } = start();
    await t.reply();
    await t.cmd("EHLO x");
    expect(await t.cmd("BDAT x")).toBe("521 5.5.4 Syntax: BDAT count [LAST]\r\n");
    expect(await t.closedAfter()).toBe(true);
  });
});

describe("pipelining (RFC 2920) and early talkers", () => {
  test("after EHLO, MAIL/RCPT/DATA may come in one write", async () => {
    const { t } = start();
    await t.reply();
    await t.cmd("EHLO x");
    t.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n");
    expect(await t.reply()).toBe("250 2.1.0 Ok\r\n");
    expect(await t.reply()).toBe("250 2.1.5 Ok\r\n");
    expect(await t.reply()).toBe("250 2.1.5 Ok\r\n");
    expect(await t.reply()).toBe("354 End data with <CR><LF>.<CR><LF>\r\n");
  });

  for (const [what, before, batch] of [
    ["without EHLO", "HELO x", "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"],
    ["after EHLO, a command behind EHLO", undefined, "EHLO x\r\nMAIL FROM:<a@example.org>\r\n"],
    ["content behind DATA", "EHLO x", "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: x\r\n\r\n.\r\n"],
    ["a command behind NOOP", "EHLO x", "NOOP\r\nNOOP\r\n"],
  ] as const) {
    test(`refused ${what}: 554 5.5.0 and the session ends`, async () => {
      const { t, logs } = start();
      await t.reply();
      if (before) await t.cmd(before);
      t.send(batch);
      let r: string;
      do r = await t.reply();
      while (r.startsWith("250") || r.startsWith("354"));
      expect(r).toBe("554 5.5.0 Error: SMTP protocol synchronization\r\n");
      expect(await t.closedAfter()).toBe(true);
      expect(logs.some((l) => /^improper command pipelining after \w+ from client\.example\.org\[192\.0\.2\.7\]: /.test(l))).toBe(true);
    });
  }

  test("a client that talks before the greeting is refused", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { t, logs } = start({ policy: { connect: async () => {
          await gate;
          return {};
        } } });
    t.send("EHLO early\r\n");
    release();
    expect(await t.reply()).toBe("220 mx.example.test ESMTP postern\r\n");
    expect(await t.reply()).toBe("554 5.5.0 Error: SMTP protocol synchronization\r\n");
    expect(await t.closedAfter()).toBe(true);
    expect(logs).toContain("improper command pipelining after CONNECT from client.example.org[192.0.2.7]: EHLO early");
  });

  test("with smtpd_forbid_unauth_pipelining = no the same batch is served", async () => {
    const { t } = start({ settings: { forbidUnauthPipelining: false } });
    await t.reply();
    t.send("HELO x\r\nMAIL FROM:<a@example.org>\r\n");
    expect(await t.reply()).toBe("250 mx.example.test\r\n");
    expect(await t.reply()).toBe("250 2.1.0 Ok\r\n");
  });
});

describe("limits and time", () => {
  test("smtpd_hard_error_limit: 421 after the limit, logged", async () => {
    const { t, logs } = start({ settings: { hardErrorLimit: 3 } });
    await t.reply();
    await t.cmd("EHLO x");
    await t.cmd("FOO");
    await t.cmd("BAR");
    expect(await t.cmd("BAZ")).toBe("500 5.5.2 Error: command not recognized\r\n");
    expect(await t.reply()).toBe("421 4.7.0 mx.example.test Error: too many errors\r\n");
    expect(await t.closedAfter()).toBe(true);
    expect(logs).toContain("too many errors after UNKNOWN from client.example.org[192.0.2.7]");
  });

  test("smtpd_soft_error_limit: error replies wait smtpd_error_sleep_time", async () => {
    const { t } = start({ settings: { softErrorLimit: 1, errorSleepMs: 300 } });
    await t.reply();
    await t.cmd("FOO");
    const before = performance.now();
    await t.cmd("BAR");
    expect(performance.now() - before).toBeGreaterThanOrEqual(250);
  });

  test("smtpd_junk_command_limit: junk beyond it counts as errors", async () => {
    const { t } = start({ settings: { junkCommandLimit: 2, hardErrorLimit: 2 } });
    await t.reply();
    for (let i = 0; i < 3; i++) expect(await t.cmd("NOOP")).toBe("250 2.0.0 Ok\r\n");
    expect(await t.cmd("NOOP")).toBe("250 2.0.0 Ok\r\n");
    expect(await t.reply()).toBe("421 4.7.0 mx.example.test Error: too many errors\r\n");
  });

  test("smtpd_timeout: 421 4.4.2 and 'timeout after' in the log", async () => {
    const { t, logs, done } = start({ settings: { timeoutMs: 100 } });
    await t.reply();
    await t.cmd("EHLO x");
    expect(await t.reply()).toBe("421 4.4.2 mx.example.test Error: timeout exceeded\r\n");
    await done;
    expect(logs).toContain("timeout after EHLO from client.example.org[192.0.2.7]");
  });

  test("a lost connection is logged with the last command", async () => {
    const { t, logs, done } = start();
    await t.reply();
    await t.cmd("EHLO x");
    await t.cmd("MAIL FROM:<a@example.org>");
    t.hangUp();
    await done;
    expect(logs).toContain("lost connection after MAIL from client.example.org[192.0.2.7]");
  });
});

describe("policy answers", () => {
  test("a RCPT refusal is sent and logged with Postfix's NOQUEUE line", async () => {
    const { t, logs } = start({
      policy: { rcpt: async (_s, r) => (r.address.endsWith("@remote.example") ? { reject: reply(554, "5.7.1", `<${r.address}>: Relay access denied`) } : {}) },
    });
    await t.reply();
    await t.cmd("EHLO helo.example");
    await t.cmd("MAIL FROM:<a@example.org>");
    expect(await t.cmd("RCPT TO:<x@remote.example>")).toBe("554 5.7.1 <x@remote.example>: Relay access denied\r\n");
    expect(logs).toContain(
      "NOQUEUE: reject: RCPT from client.example.org[192.0.2.7]: 554 5.7.1 <x@remote.example>: Relay access denied; from=<a@example.org> to=<x@remote.example> proto=ESMTP helo=<helo.example>",
    );
  });

  test("refused at connect: the reply replaces the greeting, then only QUIT works", async () => {
    const { t } = start({ policy: { connect: async () => ({ reject: reply(554, "5.7.1", "<client.example.org[192.0.2.7]>: Client host rejected: Access denied") }) } });
    expect(await t.reply()).toBe("554 5.7.1 <client.example.org[192.0.2.7]>: Client host rejected: Access denied\r\n");
    expect(await t.cmd("EHLO x")).toBe("503 5.7.0 Error: access denied for client.example.org[192.0.2.7]\r\n");
    expect(await t.cmd("QUIT")).toBe("221 2.0.0 Bye\r\n");
  });

  test("421 at connect (a limit) ends the session", async () => {
    const { t } = start({ policy: { connect: async () => ({ reject: reply(421, "4.7.0", "mx.example.test Error: too many connections from 192.0.2.7") }) } });
    expect(await t.reply()).toBe("421 4.7.0 mx.example.test Error: too many connections from 192.0.2.7\r\n");
    expect(await t.closedAfter()).toBe(true);
  });

  test("VRFY and ETRN", async () => {
    const sites: string[] = [];
    const { t } = start({
      policy: { vrfy: async (_s, a) => (a === "nobody" ? { reject: reply(550, "5.1.1", "<nobody>: Recipient address rejected: User unknown in local recipient table") } : {}) },
      etrn: async (d) => {
        sites.push(d);
        return reply(250, undefined, "Queuing started");
      },
    });
    await t.reply();
    expect(await t.cmd("VRFY")).toBe("501 5.5.4 Syntax: VRFY address [SMTPUTF8]\r\n");
    expect(await t.cmd("VRFY root")).toBe("252 2.0.0 root\r\n");
    expect(await t.cmd("VRFY nobody")).toBe("550 5.1.1 <nobody>: Recipient address rejected: User unknown in local recipient table\r\n");
    expect(await t.cmd("ETRN")).toBe("500 Syntax: ETRN domain\r\n");
    expect(await t.cmd("ETRN example.net")).toBe("250 Queuing started\r\n");
    expect(sites).toEqual(["example.net"]);
  });
});

describe("STARTTLS", () => {
  const TLS: TlsSummary = { protocol: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", bits: 256 };

  test("plaintext sent after STARTTLS (before and during the handshake) is never read as commands", async () => {
    let push!: (s: string) => void;
    const { t, sink } = start({
      settings: { tlsLevel: "may", forbidUnauthPipelining: false },
      transport: (tr) => {
        push = (s) => tr.send(s);
        tr.startTls = async () => {
          // an attacker's bytes arriving while the handshake runs
          push("RCPT TO:<during@example.org>\r\n");
          tr.tls = TLS;
          return TLS;
        };
      },
    });
    await t.reply();
    expect(await t.cmd("EHLO x")).toContain("250-STARTTLS\r\n");
    t.send("STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n");
    expect(await t.reply()).toBe("220 2.0.0 Ready to start TLS\r\n");
    // after TLS the client starts over; STARTTLS is no longer offered
    const ehlo = await t.cmd("EHLO x");
    expect(ehlo).not.toContain("STARTTLS");
    expect(await t.cmd("RCPT TO:<b@example.org>")).toBe("503 5.5.1 Error: need MAIL command\r\n");
    expect(await t.cmd("MAIL FROM:<a@example.org>")).toBe("250 2.1.0 Ok\r\n");
    await t.cmd("RCPT TO:<b@example.org>");
    await t.cmd("DATA");
    t.send("x\r\n.\r\n");
    await t.reply();
    expect(sink.messages[0]!.received("Q")).toContain("with ESMTPS id Q");
    expect(await t.cmd("STARTTLS")).toBe("554 5.5.1 Error: TLS already active\r\n");
  });

  test("smtpd_tls_security_level = encrypt: mail commands wait for STARTTLS", async () => {
    const { t } = start({ settings: { tlsLevel: "encrypt" }, transport: (tr) => (tr.startTls = async () => TLS) });
    await t.reply();
    await t.cmd("EHLO x");
    for (const c of ["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA", "VRFY x", "ETRN x", "RSET", "AUTH PLAIN"]) {
      expect(await t.cmd(c)).toBe("530 5.7.0 Must issue a STARTTLS command first\r\n");
    }
    expect(await t.cmd("NOOP")).toBe("250 2.0.0 Ok\r\n");
    expect(await t.cmd("STARTTLS x")).toBe("501 5.5.4 Syntax: STARTTLS\r\n");
  });

  test("without TLS configured STARTTLS is not implemented", async () => {
    const { t } = start();
    await t.reply();
    expect(await t.cmd("STARTTLS")).toBe("502 5.5.1 Error: command not implemented\r\n");
  });
});

describe("AUTH", () => {
  function sasl(): SaslServer {
    return {
      mechanisms: () => ["PLAIN", "LOGIN"],
      start(mech) {
        let user: string | undefined;
        return {
          async step(resp): Promise<SaslStep> {
            const text = resp === undefined ? undefined : Buffer.from(resp, "base64").toString();
            if (mech === "PLAIN") {
              if (text === undefined) return { kind: "challenge", challenge: "" };
              return text === "\0alice\0secret" ? { kind: "success", username: "alice" } : { kind: "failure", reason: "authentication failure" };
            }
            if (user === undefined) {
              if (text === undefined) return { kind: "challenge", challenge: "VXNlcm5hbWU6" };
              user = text;
              return { kind: "challenge", challenge: "UGFzc3dvcmQ6" };
            }
            return user === "alice" && text === "secret" ? { kind: "success", username: "alice" } : { kind: "failure", reason: "authentication failure" };
          },
        };
      },
    };
  }
  const b64 = (s: string) => Buffer.from(s).toString("base64");

  test("PLAIN with an initial response, LOGIN in steps, failures and aborts", async () => {
    const { t, sink, logs } = start({ settings: { saslEnabled: true }, sasl: sasl() });
    await t.reply();
    expect(await t.cmd("EHLO x")).toContain("250-AUTH PLAIN LOGIN\r\n");
    expect(await t.cmd(`AUTH PLAIN ${b64("\0alice\0wrong")}`)).toBe("535 5.7.8 Error: authentication failed: authentication failure\r\n");
    expect(await t.cmd("AUTH CRAM-MD5")).toBe("535 5.7.8 Error: authentication failed: Invalid authentication mechanism\r\n");
    expect(await t.cmd("AUTH LOGIN")).toBe("334 VXNlcm5hbWU6\r\n");
    expect(await t.cmd("*")).toBe("501 5.7.0 Authentication aborted\r\n");
    expect(await t.cmd("AUTH PLAIN")).toBe("334 \r\n");
    expect(await t.cmd("not base64!")).toBe("501 5.5.2 Cannot decode response\r\n");
    expect(await t.cmd("AUTH LOGIN")).toBe("334 VXNlcm5hbWU6\r\n");
    expect(await t.cmd(b64("alice"))).toBe("334 UGFzc3dvcmQ6\r\n");
    expect(await t.cmd(b64("secret"))).toBe("235 2.7.0 Authentication successful\r\n");
    expect(await t.cmd(`AUTH PLAIN ${b64("\0alice\0secret")}`)).toBe("503 5.5.1 Error: already authenticated\r\n");
    await t.cmd("MAIL FROM:<alice@example.org> AUTH=<>");
    await t.cmd("RCPT TO:<b@example.org>");
    await t.cmd("DATA");
    t.send("x\r\n.\r\n");
    await t.reply();
    expect(sink.messages[0]!.session.sasl).toEqual({ method: "LOGIN", username: "alice" });
    expect(sink.messages[0]!.received("Q")).toContain("with ESMTPA id Q");
    expect(logs).toContain("warning: client.example.org[192.0.2.7]: SASL PLAIN authentication failed: authentication failure");
  });

  test("AUTH refusals: not enabled, TLS required first, inside a transaction", async () => {
    const off = start();
    await off.t.reply();
    expect(await off.t.cmd("AUTH PLAIN")).toBe("503 5.5.1 Error: authentication not enabled\r\n");
    const tlsOnly = start({ settings: { saslEnabled: true, tlsAuthOnly: true }, sasl: sasl() });
    await tlsOnly.t.reply();
    expect(await tlsOnly.t.cmd("EHLO x")).not.toContain("AUTH");
    expect(await tlsOnly.t.cmd("AUTH PLAIN")).toBe("538 5.7.11 Encryption required for requested authentication mechanism\r\n");
    const tx = start({ settings: { saslEnabled: true }, sasl: sasl() });
    await tx.t.reply();
    await tx.t.cmd("EHLO x");
    await tx.t.cmd("MAIL FROM:<a@example.org>");
    expect(await tx.t.cmd("AUTH PLAIN")).toBe("503 5.5.1 Error: MAIL transaction in progress\r\n");
    expect(await tx.t.cmd("AUTH")).toBe("501 5.5.4 Syntax: AUTH mechanism\r\n");
  });
});

describe("UTF-8 command lines (RFC 6531)", () => {
  /** The wire form of a UTF-8 command line, as FakeTransport.send takes it (one char per byte). */
  const utf8 = (line: string) => Buffer.from(`${line}\r\n`, "utf8").toString("latin1");

  test("addresses are decoded as UTF-8: jürgen reaches the sink as written, not double-encoded", async () => {
    const { t, sink } = start();
    await t.reply();
    await t.cmd("EHLO client.example.org");
    t.send(utf8("MAIL FROM:<rené@example.org> SMTPUTF8"));
    expect(await t.reply()).toBe("250 2.1.0 Ok\r\n");
    t.send(utf8("RCPT TO:<jürgen@bücher.example>"));
    expect(await t.reply()).toBe("250 2.1.5 Ok\r\n");
    await t.cmd("DATA");
    t.send("Subject: x\r\n\r\nx\r\n.\r\n");
    expect(await t.reply()).toMatch(/^250 /);
    const m = sink.messages[0]!;
    expect(m.sender).toBe("rené@example.org");
    expect(m.recipients[0]!.address).toBe("jürgen@bücher.example");
    expect(Buffer.from(m.recipients[0]!.address, "utf8")).toEqual(Buffer.from([...Buffer.from("j"), 0xc3, 0xbc, ...Buffer.from("rgen@b"), 0xc3, 0xbc, ...Buffer.from("cher.example")]));
  });

  test("a line that is not UTF-8 is refused: 500 5.5.2 Error: bad UTF-8 syntax, an error, an unknown command", async () => {
    const { t, logs, done } = start();
    await t.reply();
    await t.cmd("EHLO client.example.org");
    await t.cmd("MAIL FROM:<a@example.org> SMTPUTF8");
    // latin1 ü, an overlong "/", a lone continuation byte, a surrogate, a truncated sequence
    for (const bad of ["RCPT TO:<j\xfcrgen@example.net>", "RCPT TO:<a\xc0\xafb@example.net>", "RCPT TO:<\x80@example.net>", "RCPT TO:<\xed\xa0\x80@example.net>", "RCPT TO:<a@example.net> \xe2\x82"]) {
      expect(await t.cmd(bad)).toBe("500 5.5.2 Error: bad UTF-8 syntax\r\n");
    }
    expect(await t.cmd("QUIT")).toBe("221 2.0.0 Bye\r\n");
    await done;
    expect(logs.at(-1)).toBe("disconnect from client.example.org[192.0.2.7] ehlo=1 mail=1 quit=1 unknown=0/5 commands=3/8");
  });

  test("strict_smtputf8: a non-ASCII address without SMTPUTF8 gets 553 5.6.7 in MAIL, RCPT and VRFY", async () => {
    const { t, sink } = start({ settings: { strictSmtputf8: true } });
    await t.reply();
    await t.cmd("EHLO client.example.org");
    t.send(utf8("MAIL FROM:<rené@example.org>"));
    expect(await t.reply()).toBe("553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n");
    expect(await t.cmd("MAIL FROM:<a@example.org>")).toBe("250 2.1.0 Ok\r\n");
    t.send(utf8("RCPT TO:<jürgen@example.net>"));
    expect(await t.reply()).toBe("553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n");
    expect(await t.cmd("RCPT TO:<juergen@example.net>")).toBe("250 2.1.5 Ok\r\n");
    t.send(utf8("VRFY <jürgen@example.net>"));
    expect(await t.reply()).toBe("553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n");
    t.send(utf8("VRFY <jürgen@example.net> SMTPUTF8"));
    expect(await t.reply()).toMatch(/^252 2\.0\.0 /);
    await t.cmd("RSET");
    t.send(utf8("MAIL FROM:<rené@example.org> SMTPUTF8"));
    expect(await t.reply()).toBe("250 2.1.0 Ok\r\n");
    t.send(utf8("RCPT TO:<jürgen@example.net>"));
    expect(await t.reply()).toBe("250 2.1.5 Ok\r\n");
    expect(sink.messages).toEqual([]);
  });

  test("without strict_smtputf8 (Postfix's default) a non-ASCII address is accepted without SMTPUTF8, as Postfix does", async () => {
    const { t } = start();
    await t.reply();
    await t.cmd("EHLO client.example.org");
    await t.cmd("MAIL FROM:<a@example.org>");
    t.send(utf8("RCPT TO:<jürgen@example.net>"));
    expect(await t.reply()).toBe("250 2.1.5 Ok\r\n");
  });

  test("a command line cut at line_length_limit is cut between characters, not inside one", async () => {
    const { t } = start({ settings: { lineLengthLimit: 20 } });
    await t.reply();
    await t.cmd("EHLO client.example.org");
    // "NOOP " + "é" x 10: byte 20 falls inside an "é"
    t.send(utf8(`NOOP ${"é".repeat(10)}`));
    expect(await t.reply()).toBe("250 2.0.0 Ok\r\n");
  });
});

describe("slow clients: smtpd_per_request_deadline and smtpd_min_data_rate", () => {
  /** Sends `text` one piece at a time, `every` ms apart, until it is all out or the session has closed. */
  async function trickle(t: FakeTransportLike, text: string, piece: number, every: number): Promise<void> {
    for (let i = 0; i < text.length && !t.closed; i += piece) {
      t.send(text.slice(i, i + piece));
      await Bun.sleep(every);
    }
  }
  type FakeTransportLike = { send(text: string): void; closed: boolean };

  test("without the deadline, every byte restarts smtpd_timeout: a command trickled a byte at a time is served", async () => {
    const { t } = start({ settings: { timeoutMs: 400 } });
    await t.reply();
    await trickle(t, "NOOP and some more words\r\n", 1, 40);
    expect(await t.reply()).toBe("250 2.0.0 Ok\r\n");
  });

  test("with the deadline, smtpd_timeout is for the whole command: a byte-at-a-time client gets 421 4.4.2", async () => {
    const { t, logs, done } = start({ settings: { timeoutMs: 400, requestDeadline: true } });
    await t.reply();
    // 60 bytes, 40 ms apart: 2.4 s for one command line
    await trickle(t, `NOOP ${"x".repeat(55)}\r\n`, 1, 40);
    expect(await t.reply()).toBe("421 4.4.2 mx.example.test Error: timeout exceeded\r\n");
    await done;
    expect(logs).toContain("timeout after CONNECT from client.example.org[192.0.2.7]");
    expect(t.out).not.toContain("250 2.0.0 Ok");
  });

  test("with the deadline, message content below smtpd_min_data_rate times out; content at the rate goes on past smtpd_timeout", async () => {
    const slow = start({ settings: { timeoutMs: 400, requestDeadline: true, minDataRate: 500 } });
    await slow.t.reply();
    await slow.t.cmd("EHLO x");
    await slow.t.cmd("MAIL FROM:<a@example.org>");
    await slow.t.cmd("RCPT TO:<b@example.net>");
    expect(await slow.t.cmd("DATA")).toMatch(/^354 /);
    // 25 bytes a second earns 50 ms a second
    await trickle(slow.t, `Subject: slow\r\n\r\n${"y".repeat(100)}\r\n.\r\n`, 1, 40);
    expect(await slow.t.reply()).toBe("421 4.4.2 mx.example.test Error: timeout exceeded\r\n");
    await slow.done;
    expect(slow.logs.some((l) => /^timeout after DATA \(\d+ bytes\) from client\.example\.org\[192\.0\.2\.7\]$/.test(l))).toBe(true);

    const fast = start({ settings: { timeoutMs: 400, requestDeadline: true, minDataRate: 500 } });
    await fast.t.reply();
    await fast.t.cmd("EHLO x");
    await fast.t.cmd("MAIL FROM:<a@example.org>");
    await fast.t.cmd("RCPT TO:<b@example.net>");
    expect(await fast.t.cmd("DATA")).toMatch(/^354 /);
    // 200 bytes every 40 ms (5,000 bytes a second, ten times the minimum) for 1.2 s, three times smtpd_timeout
    await trickle(fast.t, `Subject: fast\r\n\r\n${`${"z".repeat(198)}\r\n`.repeat(30)}`, 200, 40);
    fast.t.send(".\r\n");
    expect(await fast.t.reply()).toBe("250 2.0.0 Ok: queued as ID1\r\n");
  });
});

describe("a client that does not read its replies", () => {
  test("past 64 KB of unread replies the session waits for them within smtpd_timeout, then logs the timeout and drops the client", async () => {
    let backlog = 0;
    let destroyed = false;
    const { t, logs, done } = start({
      settings: { timeoutMs: 200 },
      transport: (ft) => {
        ft.backlog = () => backlog;
        // the client reads nothing: what waits never leaves
        ft.flushed = () => (backlog > 0 ? new Promise<void>(() => {}) : Promise.resolve());
        ft.destroy = () => {
          destroyed = true;
          void ft.end();
        };
      },
    });
    await t.reply();
    expect(await t.cmd("NOOP")).toBe("250 2.0.0 Ok\r\n");
    backlog = 100_000;
    t.send("NOOP\r\n");
    await done;
    expect(logs).toContain("timeout after NOOP from client.example.org[192.0.2.7]");
    expect(destroyed).toBe(true);
  });
});
