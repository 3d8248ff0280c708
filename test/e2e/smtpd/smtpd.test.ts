/**
 * The SMTP server end to end: `postern start` with an smtp service on
 * 127.0.0.1, driven by swaks, Python's smtplib and raw sockets. Mail from
 * 127.0.0.1 comes from outside mynetworks here (mynetworks is a network the
 * tests never use), so relay control applies to the test client.
 */
import { RFC5322_DATE } from "../../helpers/dates.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HOST, RawSmtp, SmtpdSystem, python, swaks } from "../../helpers/smtpd-system.ts";

const systems: SmtpdSystem[] = [];
afterAll(async () => {
  await Promise.all(systems.map((s) => s.cleanup()));
});

async function system(params: ConstructorParameters<typeof SmtpdSystem>[0] = {}, services?: ConstructorParameters<typeof SmtpdSystem>[1]): Promise<SmtpdSystem> {
  const s = new SmtpdSystem(params, services);
  systems.push(s);
  await s.start();
  return s;
}

/** Connects, reads the greeting, says EHLO. */
async function session(port: number, helo = "client.example"): Promise<RawSmtp> {
  const c = await RawSmtp.connect(port);
  expect(await c.reply()).toMatch(/^220 /);
  expect(await c.cmd(`EHLO ${helo}`)).toMatch(/^250-/);
  return c;
}

describe("the smtp service", () => {
  let sys: SmtpdSystem;
  beforeAll(async () => {
    sys = await system({ smtpd_hard_error_limit: 100, smtpd_soft_error_limit: 100 });
  });

  test("swaks: a message is queued with Postfix's Received: header and log lines", async () => {
    const r = await swaks(["--server", `127.0.0.1:${sys.port}`, "--helo", "client.example", "--from", "alice@example.org", "--to", `root@${HOST}`, "--h-Subject", "swaks one"]);
    expect(r.code).toBe(0);
    const id = /250 2\.0\.0 Ok: queued as ([0-9A-F]+)/.exec(r.out)?.[1];
    expect(id).toBeDefined();
    const m = await sys.message("swaks one");
    expect(m.id).toBe(id!);
    expect(m.sender).toBe("alice@example.org");
    expect(m.recipients.map((x) => x.address)).toEqual([`root@${HOST}`]);
    expect(m.text).toMatch(new RegExp(`^Received: from client\\.example \\(localhost \\[127\\.0\\.0\\.1\\]\\)\\n\\tby ${HOST.replace(/\./g, "\\.")} \\(postern\\) with ESMTP id ${id}\\n\\tfor <root@${HOST.replace(/\./g, "\\.")}>; ${RFC5322_DATE}`));
    expect(m.attributes).toMatchObject({ client_name: "localhost", client_address: "127.0.0.1", helo: "client.example", protocol: "ESMTP", origin: "smtpd" });
    const log = await sys.waitForLog(new RegExp(`postfix/smtpd\\[\\d+\\]: ${id}: client=localhost\\[127\\.0\\.0\\.1\\]\\n`));
    expect(log).toBeDefined();
    await sys.waitForLog(new RegExp(`postfix/cleanup\\[\\d+\\]: ${id}: message-id=<`));
    await sys.waitForLog(/postfix\/smtpd\[\d+\]: disconnect from localhost\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5\n/);
  });

  test("Python smtplib: DSN parameters, 8BITMIME and SMTPUTF8 are recorded in the queue file", async () => {
    const script = `
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.ehlo("py.example")
msg = "Subject: smtplib one\\r\\n\\r\\nH\\u00e9llo\\r\\n".encode("utf-8")
s.sendmail("bob@example.org", ["root@${HOST}"], msg, mail_options=["BODY=8BITMIME", "RET=HDRS", "ENVID=env+2B1", "SMTPUTF8"], rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;original@example.org"])
s.quit()
print("sent")
`;
    const r = await python(script, [String(sys.port)]);
    expect(r.out).toBe("sent\n");
    const m = await sys.message("smtplib one");
    expect(m.attributes).toMatchObject({ encoding: "8BITMIME", ret: "HDRS", envid: "env+1", smtputf8: "yes" });
    expect(m.recipients[0]).toMatchObject({ address: `root@${HOST}`, notify: ["SUCCESS", "FAILURE"], orcpt: "rfc822;original@example.org" });
    expect(m.text).toContain("with UTF8SMTP id");
    expect(Buffer.from(m.content).toString("utf8")).toContain("H\u00e9llo\n");
  });

  test("BDAT (CHUNKING) over a raw socket", async () => {
    const c = await session(sys.port);
    const body = "Subject: chunked one\r\n\r\nin two chunks\r\n";
    c.send(`MAIL FROM:<carol@example.org>\r\nRCPT TO:<root@${HOST}>\r\nBDAT 10\r\n${body.slice(0, 10)}`);
    expect(await c.reply()).toBe("250 2.1.0 Ok\r\n");
    expect(await c.reply()).toBe("250 2.1.5 Ok\r\n");
    expect(await c.reply()).toBe("250 2.0.0 Ok: 10 bytes\r\n");
    c.send(`BDAT ${body.length - 10} LAST\r\n${body.slice(10)}`);
    expect(await c.reply()).toMatch(new RegExp(`^250 2\\.0\\.0 Ok: ${body.length} bytes queued as [0-9A-F]+\\r\\n$`));
    await c.quit();
    const text = (await sys.message("chunked one")).text;
    expect(text).toContain("\nSubject: chunked one\n");
    expect(text.endsWith("\n\nin two chunks\n")).toBe(true);
  });

  for (const [name, sep] of [
    ["\\n.\\n", "\n.\n"],
    ["\\n.\\r\\n", "\n.\r\n"],
    ["\\r\\n.\\n", "\r\n.\n"],
    ["\\r.\\r\\n", "\r.\r\n"],
  ] as const) {
    test(`SMTP smuggling with "${name}": one message, the smuggled one is only text in it`, async () => {
      const tag = name.replace(/\\/g, "");
      const c = await session(sys.port);
      c.send(`MAIL FROM:<dave@example.org>\r\nRCPT TO:<root@${HOST}>\r\nDATA\r\n`);
      expect(await c.reply()).toBe("250 2.1.0 Ok\r\n");
      expect(await c.reply()).toBe("250 2.1.5 Ok\r\n");
      expect(await c.reply()).toBe("354 End data with <CR><LF>.<CR><LF>\r\n");
      c.send(
        `Subject: carrier ${tag}\r\n\r\nfirst part${sep}MAIL FROM:<evil@example.org>\r\nRCPT TO:<root@${HOST}>\r\nDATA\r\nSubject: smuggled ${tag}\r\n\r\nsmuggled\r\n.\r\n`,
      );
      const answer = await c.reply();
      expect(answer).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-F]+\r\n$/);
      expect(await c.cmd("NOOP")).toBe("250 2.0.0 Ok\r\n");
      await c.quit();
      const m = await sys.message(`carrier ${tag}`);
      expect(m.text).toContain("MAIL FROM:<evil@example.org>\n");
      expect(m.text).toContain(`Subject: smuggled ${tag}\n`);
      // no message of its own: only the carrier holds that text
      expect(sys.messagesContaining(`Subject: smuggled ${tag}`)).toEqual([m.id]);
    });
  }

  test("pipelining after EHLO is served; without EHLO it ends the session (554 5.5.0)", async () => {
    const c = await session(sys.port);
    c.send(`MAIL FROM:<erin@example.org>\r\nRCPT TO:<root@${HOST}>\r\nRSET\r\n`);
    expect([await c.reply(), await c.reply(), await c.reply()]).toEqual(["250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n", "250 2.0.0 Ok\r\n"]);
    await c.quit();

    const d = await RawSmtp.connect(sys.port);
    await d.reply();
    expect(await d.cmd("HELO client.example")).toBe(`250 ${HOST}\r\n`);
    d.send(`MAIL FROM:<erin@example.org>\r\nRCPT TO:<root@${HOST}>\r\n`);
    expect(await d.reply()).toBe("554 5.5.0 Error: SMTP protocol synchronization\r\n");
    expect(await d.waitClosed()).toBe(true);
    await sys.waitForLog(/improper command pipelining after MAIL from localhost\[127\.0\.0\.1\]: RCPT TO:</);
  });

  test("relay control: the classic open-relay forms are all refused for a client outside mynetworks", async () => {
    const host = HOST;
    const forms = [
      "<user@target.example>",
      `<user%target.example@${host}>`,
      "<user%target.example@[127.0.0.1]>",
      `<"user@target.example">`,
      `<"user%target.example">`,
      `<user@target.example@${host}>`,
      `<"user@target.example"@${host}>`,
      "<user@target.example@[127.0.0.1]>",
      `<"user@target.example"@[127.0.0.1]>`,
      `<@${host}:user@target.example>`,
      "<@[127.0.0.1]:user@target.example>",
      `<@${host},@localhost:user@target.example>`,
      "<target.example!user>",
      `<target.example!user@${host}>`,
      "<target.example!user@[127.0.0.1]>",
      `<${host}!target.example!user@${host}>`,
      "<user%target.example>",
      `<user%target.example%${host}>`,
      `<"user%target.example"@${host}>`,
      "<user@[192.0.2.99]>",
      "<user@TARGET.EXAMPLE.>",
    ];
    const c = await session(sys.port, "relaytest.example");
    expect(await c.cmd("MAIL FROM:<spammer@example.org>")).toBe("250 2.1.0 Ok\r\n");
    for (const form of forms) {
      const r = await c.cmd(`RCPT TO:${form}`);
      expect({ form, r }).toEqual({ form, r: expect.stringMatching(/^454 4\.7\.1 <.*>: Relay access denied\r\n$/) as unknown as string });
    }
    expect(await c.cmd(`RCPT TO:<root@${host}>`)).toBe("250 2.1.5 Ok\r\n");
    await c.quit();
    await sys.waitForLog(
      /NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 454 4\.7\.1 <user@target\.example>: Relay access denied; from=<spammer@example\.org> to=<user@target\.example> proto=ESMTP helo=<relaytest\.example>\n/,
    );
  });

  test("unknown local users: 550 5.1.1 ... User unknown in local recipient table", async () => {
    const c = await session(sys.port);
    await c.cmd("MAIL FROM:<a@example.org>");
    expect(await c.cmd(`RCPT TO:<no-such-user-xyz@${HOST}>`)).toBe(`550 5.1.1 <no-such-user-xyz@${HOST}>: Recipient address rejected: User unknown in local recipient table\r\n`);
    await c.quit();
  });

  test("a message over message_size_limit is refused at MAIL (SIZE=) and after DATA", async () => {
    const small = await system({ message_size_limit: 2000 });
    const c = await session(small.port);
    expect(await c.cmd("MAIL FROM:<a@example.org> SIZE=5000")).toBe("552 5.3.4 Message size exceeds fixed limit\r\n");
    await c.cmd("MAIL FROM:<a@example.org>");
    await c.cmd(`RCPT TO:<root@${HOST}>`);
    await c.cmd("DATA");
    c.send(`Subject: too big\r\n\r\n${"z".repeat(3000)}\r\n.\r\n`);
    expect(await c.reply()).toBe("552 5.3.4 Error: message file too big\r\n");
    await c.quit();
    expect(small.messagesContaining("Subject: too big")).toEqual([]);
  });
});

describe("abuse and limits", () => {
  test("a client that talks before the greeting is refused", async () => {
    const sys = await system({ smtpd_delay_reject: "no", smtpd_client_restrictions: "sleep 1" });
    const c = await RawSmtp.connect(sys.port);
    c.send("EHLO early.example\r\n");
    expect(await c.reply()).toMatch(/^220 /);
    expect(await c.reply()).toBe("554 5.5.0 Error: SMTP protocol synchronization\r\n");
    expect(await c.waitClosed()).toBe(true);
    await sys.waitForLog(/improper command pipelining after CONNECT from localhost\[127\.0\.0\.1\]: EHLO early\.example/);
  });

  test("smtpd_hard_error_limit, smtpd_timeout, smtpd_client_connection_count_limit", async () => {
    const sys = await system({ smtpd_hard_error_limit: 3, smtpd_timeout: "2s", smtpd_client_connection_count_limit: 2 });
    const a = await session(sys.port);
    for (const w of ["FOO", "BAR"]) expect(await a.cmd(w)).toBe("500 5.5.2 Error: command not recognized\r\n");
    expect(await a.cmd("BAZ")).toBe("500 5.5.2 Error: command not recognized\r\n");
    expect(await a.reply()).toBe(`421 4.7.0 ${HOST} Error: too many errors\r\n`);
    expect(await a.waitClosed()).toBe(true);

    const b = await session(sys.port);
    const c = await session(sys.port);
    const d = await RawSmtp.connect(sys.port);
    expect(await d.reply()).toBe(`421 4.7.0 ${HOST} Error: too many connections from 127.0.0.1\r\n`);
    expect(await d.waitClosed()).toBe(true);
    await sys.waitForLog(/warning: Connection concurrency limit exceeded: 3 from localhost\[127\.0\.0\.1\] for service smtp/);
    // idle sessions time out
    expect(await b.reply(10_000)).toBe(`421 4.4.2 ${HOST} Error: timeout exceeded\r\n`);
    expect(await c.reply(10_000)).toBe(`421 4.4.2 ${HOST} Error: timeout exceeded\r\n`);
    await sys.waitForLog(/timeout after EHLO from localhost\[127\.0\.0\.1\]/);
  });

  test("queue_minfree: 452 4.3.1 Insufficient system storage, nothing queued", async () => {
    const sys = await system({ queue_minfree: 2 ** 52 });
    const c = await session(sys.port);
    expect(await c.cmd("MAIL FROM:<a@example.org>")).toBe("452 4.3.1 Insufficient system storage\r\n");
    await c.quit();
    await sys.waitForLog(/warning: not enough free space in mail queue/);
  });

  test("1,000 idle sessions at once are all greeted and served", async () => {
    const sys = await system({ smtpd_client_connection_count_limit: 0 }, { smtp: { process_limit: 2000 } });
    const clients = await Promise.all(Array.from({ length: 1000 }, () => RawSmtp.connect(sys.port)));
    const greetings = await Promise.all(clients.map((c) => c.reply(30_000)));
    expect(greetings.filter((g) => g.startsWith("220 ")).length).toBe(1000);
    // still serving while they idle
    const fresh = await session(sys.port);
    expect(await fresh.cmd("NOOP")).toBe("250 2.0.0 Ok\r\n");
    await fresh.quit();
    const byes = await Promise.all(clients.map((c) => c.cmd("QUIT", 30_000)));
    expect(byes.filter((b) => b === "221 2.0.0 Bye\r\n").length).toBe(1000);
    for (const c of clients) c.destroy();
  }, 120_000);
});
