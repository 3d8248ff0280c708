/**
 * canonical(5) mapping end to end (issue 12, part 2): the envelope sender
 * and recipients of mail from sendmail and from SMTP clients, and the
 * headers of local mail, mapped by canonical_maps and
 * recipient_canonical_maps, as seen by the next hop (the Python sink).
 * An SMTP recipient that only recipient_canonical_maps know is accepted, as
 * Postfix's reject_unlisted_recipient accepts it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ensureMailOwner, HOST, isRoot, message, waitFor } from "../../helpers/mail-system.ts";
import { startPythonSink, type PythonSink } from "../../helpers/python-sink.ts";
import { RawSmtp, SmtpdSystem } from "../../helpers/smtpd-system.ts";

describe.skipIf(!isRoot)("canonical maps", () => {
  let sys: SmtpdSystem;
  let sink: PythonSink;

  beforeAll(async () => {
    ensureMailOwner();
    sink = await startPythonSink();
    sys = new SmtpdSystem({ default_transport: "smtp", relayhost: `[127.0.0.1]:${sink.port}`, mynetworks: "127.0.0.0/8" });
    const canonical = sys.etcFile("canonical", "wietse  Wietse.Venema\n");
    const recipient = sys.etcFile("recipient_canonical", "@old.example  @sink.example\nlegacy  far@sink.example\n");
    sys.writeConfig({ canonical_maps: `texthash:${canonical}`, recipient_canonical_maps: `texthash:${recipient}` });
    await sys.start();
  }, 60_000);

  afterAll(async () => {
    await sys?.cleanup();
    sink?.stop();
  });

  const atSink = (subject: string) => waitFor(`${subject} at the sink`, () => sink.messages().find((m) => m.data.includes(`Subject: ${subject}`)));

  test("sendmail: envelope and headers mapped", async () => {
    await sys.send(["someone@old.example"], `From: wietse\nTo: someone@old.example\n${message("canon-sendmail")}`, { sender: "wietse" });
    const m = await atSink("canon-sendmail");
    expect(m.mail_from).toBe(`Wietse.Venema@${HOST}`);
    expect(m.rcpt_tos).toEqual(["someone@sink.example"]);
    expect(m.data).toContain(`From: Wietse.Venema@${HOST}\r\n`);
    expect(m.data).toContain("To: someone@sink.example\r\n");
  }, 60_000);

  test("SMTP: the envelope mapped; a recipient only the canonical table knows is accepted", async () => {
    const c = await RawSmtp.connect(sys.port);
    expect(await c.reply()).toMatch(/^220 /);
    await c.cmd("EHLO client.example");
    expect(await c.cmd(`MAIL FROM:<wietse@${HOST}>`)).toMatch(/^250 /);
    expect(await c.cmd(`RCPT TO:<legacy@${HOST}>`)).toMatch(/^250 /);
    expect(await c.cmd("DATA")).toMatch(/^354 /);
    expect(await c.cmd(`${message("canon-smtp").replace(/\n/g, "\r\n")}.`)).toMatch(/^250 /);
    await c.quit();
    const m = await atSink("canon-smtp");
    expect(m.mail_from).toBe(`Wietse.Venema@${HOST}`);
    expect(m.rcpt_tos).toEqual(["far@sink.example"]);
  }, 60_000);
});
