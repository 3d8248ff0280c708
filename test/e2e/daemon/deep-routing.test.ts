/**
 * The queue manager's side of issue 9, item 1: it routes with the one
 * resolver smtpd also asks, so routing of any depth through our own domains
 * goes to the domain at its end (here: remote delivery, switched off with an
 * error: transport), never to local delivery, and an address the resolver
 * gives up on bounces. Submitted with sendmail, which trusts its caller as
 * Postfix's does: the relay refusal is smtpd's job (test/e2e/smtpd/deep-routing.test.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ensureMailOwner, HOST, isRoot, MailSystem, message } from "../../helpers/mail-system.ts";
import { exploit } from "../../helpers/routing-forms.ts";

describe.skipIf(!isRoot)("deep routing through the queue manager", () => {
  let sys: MailSystem;

  beforeAll(async () => {
    ensureMailOwner();
    sys = new MailSystem({
      recipient_delimiter: "+",
      empty_address_recipient: "",
      default_transport: "error:5.7.1 remote delivery is off in this test",
    });
    await sys.start();
  }, 60_000);

  afterAll(async () => {
    await sys?.cleanup();
  });

  test("101 layers of our domain end at the remote domain, not in local delivery", async () => {
    const deep = exploit(101, "%", HOST);
    await sys.send([deep], message("deep 101"), { sender: "" });
    // the default transport (error: here) took it: the resolver ended at victim.example
    await sys.waitForLog(/postfix\/error\[\d+\]: [0-9A-F]+: to=<root\+x%victim\.example%[^>]*>, relay=none, .*dsn=5\.7\.1, status=bounced \(remote delivery is off in this test\)/);
    expect(sys.log()).not.toMatch(/relay=local/);
  }, 60_000);

  test("an address the resolver gives up on bounces with 5.1.3, never delivered locally", async () => {
    await sys.send([`""@${HOST}`], message("resolver loop"), { sender: "" });
    await sys.waitForLog(/to=<@mail\.example\.test>, .*relay=none, .*dsn=5\.1\.3, status=bounced \(Address resolution loop\)/);
    expect(sys.log()).not.toMatch(/relay=local/);
  }, 60_000);
});
