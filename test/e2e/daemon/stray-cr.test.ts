/**
 * Outbound SMTP smuggling (issue 9, item 13): a message with a stray <CR>
 * before ".\r\n" (and "\r.\r" elsewhere), submitted with sendmail and over
 * SMTP with DATA and with BDAT, reaches a real relay (the Python sink)
 * without the stray CR and without any line that is a lone dot, however
 * the next hop splits lines (Postfix 3.9's cleanup_replace_stray_cr_lf).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { startPythonSink, type PythonSink } from "../../helpers/python-sink.ts";
import { RawSmtp, SmtpdSystem } from "../../helpers/smtpd-system.ts";
import { waitFor } from "../../helpers/mail-system.ts";

let sys: SmtpdSystem | undefined;
let sink: PythonSink | undefined;
afterAll(async () => {
  await sys?.cleanup();
  sink?.stop();
});

/** Lines as a next hop that takes a bare CR or LF for a line end would see them. */
const looseLines = (data: string) => data.split(/\r\n|\r|\n/);

describe("stray CR in the content", () => {
  test("sendmail, SMTP DATA and BDAT: the relay gets spaces, never a stray CR or a lone dot line", async () => {
    sink = await startPythonSink();
    sys = new SmtpdSystem({ relayhost: `[127.0.0.1]:${sink.port}`, default_transport: "smtp", relay_transport: "relay", mynetworks: "127.0.0.0/8" });
    await sys.start();

    // sendmail: LF line ends, so every CR is stray
    await sys.send(["far@sink.example"], "Subject: stray-sendmail\n\nfirst\r.\rhidden\nlast\r.\n");

    const c = await RawSmtp.connect(sys.port);
    expect(await c.reply()).toMatch(/^220 /);
    expect(await c.cmd("EHLO client.example")).toContain("CHUNKING");
    expect(await c.cmd("MAIL FROM:<a@client.example>")).toMatch(/^250 /);
    expect(await c.cmd("RCPT TO:<far@sink.example>")).toMatch(/^250 /);
    expect(await c.cmd("DATA")).toMatch(/^354 /);
    expect(await c.cmd("Subject: stray-data\r\n\r\nfirst\r.\rhidden\r\nlast\r.\r\n.")).toMatch(/^250 /);
    // BDAT carries any byte: a CR at the very end of a line too
    const chunk = "Subject: stray-bdat\r\n\r\nfirst\r.\rhidden\r\nlast\r.\r\r\nend\r";
    expect(await c.cmd("MAIL FROM:<a@client.example>")).toMatch(/^250 /);
    expect(await c.cmd("RCPT TO:<far@sink.example>")).toMatch(/^250 /);
    expect(await c.cmd(`BDAT ${Buffer.byteLength(chunk, "latin1")} LAST\r\n${chunk}`.replace(/\r\n$/, ""))).toMatch(/^250 /);
    await c.quit();

    const got = await waitFor("three messages at the sink", () => {
      const m = sink!.messages();
      return m.length >= 3 ? m : undefined;
    });
    const bySubject = new Map(got.map((m) => [/^Subject: (\S+)\r$/m.exec(m.data)?.[1], m.data]));
    for (const subject of ["stray-sendmail", "stray-data", "stray-bdat"]) {
      const data = bySubject.get(subject);
      expect([subject, data !== undefined]).toEqual([subject, true]);
      expect([subject, /\r(?!\n)/.test(data!)]).toEqual([subject, false]);
      expect([subject, looseLines(data!).includes(".")]).toEqual([subject, false]);
      expect(data).toContain("\r\n\r\nfirst . hidden\r\nlast .");
    }
    expect(bySubject.get("stray-bdat")).toContain("\r\nlast . \r\nend \r\n");
    await sys.waitForEmptyQueue();
  }, 60_000);
});
