/**
 * masquerade_domains end to end (issue 12, part 2): mail from sendmail
 * leaves with the host name stripped from the envelope sender and the
 * From: header, as the next hop (the Python sink) sees it; a user in
 * masquerade_exceptions keeps the full address.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ensureMailOwner, isRoot, message, waitFor } from "../../helpers/mail-system.ts";
import { startPythonSink, type PythonSink } from "../../helpers/python-sink.ts";
import { SmtpdSystem } from "../../helpers/smtpd-system.ts";

describe.skipIf(!isRoot)("masquerading", () => {
  let sys: SmtpdSystem;
  let sink: PythonSink;

  beforeAll(async () => {
    ensureMailOwner();
    sink = await startPythonSink();
    sys = new SmtpdSystem({ default_transport: "smtp", relayhost: `[127.0.0.1]:${sink.port}`, masquerade_domains: "example.test", masquerade_exceptions: "root" });
    await sys.start();
  }, 60_000);

  afterAll(async () => {
    await sys?.cleanup();
    sink?.stop();
  });

  const atSink = (subject: string) => waitFor(`${subject} at the sink`, () => sink.messages().find((m) => m.data.includes(`Subject: ${subject}`)));

  test("sendmail: joe@mail.example.test leaves as joe@example.test, envelope and From:", async () => {
    await sys.send(["far@sink.example"], `From: joe\n${message("masq-joe")}`, { sender: "joe" });
    const m = await atSink("masq-joe");
    expect(m.mail_from).toBe("joe@example.test");
    expect(m.data).toContain("From: joe@example.test\r\n");
    expect(m.rcpt_tos).toEqual(["far@sink.example"]);
  }, 60_000);

  test("a user in masquerade_exceptions keeps the host name", async () => {
    await sys.send(["far@sink.example"], `From: root\n${message("masq-root")}`, { sender: "root" });
    const m = await atSink("masq-root");
    expect(m.mail_from).toBe("root@mail.example.test");
    expect(m.data).toContain("From: root@mail.example.test\r\n");
  }, 60_000);
});
