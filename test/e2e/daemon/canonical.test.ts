/**
 * canonical(5) mapping end to end (issue 12, part 2): the envelope sender
 * and recipients of mail from sendmail and from SMTP clients, and the
 * headers of local mail, mapped by canonical_maps and
 * recipient_canonical_maps, as seen by the next hop (the Python sink).
 * An SMTP recipient that only recipient_canonical_maps know is accepted, as
 * Postfix's reject_unlisted_recipient accepts it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HOST, isRoot, message } from "../../helpers/mail-system.ts";
import { relayToSink, type RelayToSink } from "../../helpers/relay-sink.ts";
import { RawSmtp, type SmtpdSystem } from "../../helpers/smtpd-system.ts";

describe.skipIf(!isRoot)("canonical maps", () => {
  let sys: SmtpdSystem;
  let bench: RelayToSink;

  beforeAll(async () => {
    bench = await relayToSink({ mynetworks: "127.0.0.0/8" }, (s) => ({
      canonical_maps: `texthash:${s.etcFile("canonical", "wietse  Wietse.Venema\n")}`,
      recipient_canonical_maps: `texthash:${s.etcFile("recipient_canonical", "@old.example  @sink.example\nlegacy  far@sink.example\n")}`,
    }));
    ({ sys } = bench);
  }, 60_000);

  afterAll(() => bench?.stop());

  const atSink = (subject: string) => bench.atSink(subject);

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
