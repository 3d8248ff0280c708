/**
 * UTF-8 addresses through the real smtpd (issue 9, item 10): command lines
 * are decoded as UTF-8, so `RCPT TO:<jürgen@...>` is queued and relayed
 * with the bytes the client sent (it used to go out double-encoded, as
 * another address); a line that is not UTF-8 is refused as Postfix refuses
 * it; with strict_smtputf8 a non-ASCII address needs SMTPUTF8. The next hop
 * is the fake SMTP server of test/helpers, which records each command line
 * byte for byte.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { FakeSmtpServer } from "../../helpers/smtp-server.ts";
import { RawSmtp, SmtpdSystem, waitFor } from "../../helpers/smtpd-system.ts";

let sys: SmtpdSystem;
let sink: FakeSmtpServer;

/** A command line as the client sends it: UTF-8 bytes. */
const utf8 = (line: string) => Buffer.from(`${line}\r\n`, "utf8");

beforeAll(async () => {
  sink = FakeSmtpServer.start({ extensions: ["PIPELINING", "SIZE 10240000", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"] });
  sys = new SmtpdSystem(
    { default_transport: "smtp", relayhost: `[127.0.0.1]:${sink.port}`, mynetworks: "127.0.0.0/8", smtpd_hard_error_limit: 100 },
    { smtp: {}, strict: { strict_smtputf8: "yes" } },
  );
  await sys.start();
}, 60_000);

afterAll(async () => {
  await sys?.cleanup();
  sink?.stop();
});

async function session(port: number): Promise<RawSmtp> {
  const c = await RawSmtp.connect(port);
  expect(await c.reply()).toMatch(/^220 /);
  expect(await c.cmd("EHLO client.example")).toMatch(/^250-/);
  return c;
}

async function send(c: RawSmtp, line: string): Promise<string> {
  c.send(utf8(line));
  return c.reply();
}

describe("UTF-8 in MAIL FROM and RCPT TO", () => {
  test("with SMTPUTF8, jürgen is accepted, queued and relayed with the very bytes the client sent", async () => {
    const c = await session(sys.port);
    expect(await send(c, "MAIL FROM:<rené@example.org> SMTPUTF8")).toBe("250 2.1.0 Ok\r\n");
    expect(await send(c, "RCPT TO:<jürgen@remote.example>")).toBe("250 2.1.5 Ok\r\n");
    expect(await c.cmd("DATA")).toMatch(/^354 /);
    c.send("Subject: utf8 relay\r\n\r\nhallo\r\n.\r\n");
    expect(await c.reply()).toMatch(/^250 2\.0\.0 Ok: queued as/);
    await c.quit();
    await waitFor("the message at the next hop", () => sink.messages.length > 0, 60_000);
    // the fake server keeps each line as latin1 text: one char per byte on the wire
    const wire = sink.commands.map((l) => Buffer.from(l, "latin1"));
    expect(wire).toContainEqual(Buffer.from("RCPT TO:<jürgen@remote.example>", "utf8"));
    const mail = Buffer.from("MAIL FROM:<rené@example.org> ", "utf8");
    const mailLine = wire.find((l) => l.subarray(0, mail.length).equals(mail));
    expect(mailLine).toBeDefined();
    expect(mailLine!.toString("latin1")).toEndWith(" SMTPUTF8");
    // no double encoding anywhere (Ã¼ is ü's UTF-8 read as latin1, encoded again)
    expect(wire.some((l) => l.includes(Buffer.from("Ã¼", "utf8")))).toBe(false);
  }, 90_000);

  test("a line that is not UTF-8 (a latin1 ü) is refused: 500 5.5.2 Error: bad UTF-8 syntax", async () => {
    const c = await session(sys.port);
    expect(await c.cmd("MAIL FROM:<a@example.org> SMTPUTF8")).toBe("250 2.1.0 Ok\r\n");
    c.send(Buffer.from("RCPT TO:<j\xfcrgen@remote.example>\r\n", "latin1"));
    expect(await c.reply()).toBe("500 5.5.2 Error: bad UTF-8 syntax\r\n");
    await c.quit();
  });

  test("strict_smtputf8 = yes: a non-ASCII address without SMTPUTF8 gets 553 5.6.7; with it, 250", async () => {
    const c = await session(sys.ports.strict!);
    expect(await send(c, "MAIL FROM:<rené@example.org>")).toBe("553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n");
    expect(await c.cmd("MAIL FROM:<a@example.org>")).toBe("250 2.1.0 Ok\r\n");
    expect(await send(c, "RCPT TO:<jürgen@remote.example>")).toBe("553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n");
    expect(await c.cmd("RSET")).toBe("250 2.0.0 Ok\r\n");
    expect(await send(c, "MAIL FROM:<rené@example.org> SMTPUTF8")).toBe("250 2.1.0 Ok\r\n");
    expect(await send(c, "RCPT TO:<jürgen@remote.example>")).toBe("250 2.1.5 Ok\r\n");
    await c.quit();
  });
});
