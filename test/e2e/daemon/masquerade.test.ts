/**
 * masquerade_domains end to end (issue 12, part 2): mail from sendmail
 * leaves with the host name stripped from the envelope sender and the
 * From: header, as the next hop (the Python sink) sees it; a user in
 * masquerade_exceptions keeps the full address.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { isRoot, message } from "../../helpers/mail-system.ts";
import { relayToSink, type RelayToSink } from "../../helpers/relay-sink.ts";
import type { SmtpdSystem } from "../../helpers/smtpd-system.ts";

describe.skipIf(!isRoot)("masquerading", () => {
  let sys: SmtpdSystem;
  let bench: RelayToSink;

  beforeAll(async () => {
    bench = await relayToSink({ masquerade_domains: "example.test", masquerade_exceptions: "root" });
    ({ sys } = bench);
  }, 60_000);

  afterAll(() => bench?.stop());

  const atSink = (subject: string) => bench.atSink(subject);

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
