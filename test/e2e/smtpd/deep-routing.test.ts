/**
 * The open relay of issue 9 (item 1) through the real smtpd: an untrusted
 * client (127.0.0.1 is outside mynetworks) sends `root+x@victim.example`
 * wrapped in 1 to 101 layers of our own domain with `%`, `!`, `@` and a mix,
 * with recipient_delimiter = + and an empty local_recipient_maps (every
 * local part is a user). Every form is refused as relaying, an address the
 * resolver gives up on is refused too, and nothing is queued but the one
 * legitimate message sent for comparison.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HOST, RawSmtp, SmtpdSystem } from "../../helpers/smtpd-system.ts";
import { HOP_COUNTS, ROUTING_FORMS, exploit } from "../../helpers/routing-forms.ts";

let sys: SmtpdSystem;

beforeAll(async () => {
  // the error limits are raised so one session can try every form
  sys = new SmtpdSystem({ recipient_delimiter: "+", local_recipient_maps: "", empty_address_recipient: "", smtpd_soft_error_limit: 100, smtpd_hard_error_limit: 100 });
  await sys.start();
}, 60_000);

afterAll(async () => {
  await sys?.cleanup();
});

function queued(): string[] {
  return ["maildrop", "incoming", "active", "deferred", "hold"].flatMap((q) => sys.queueIds(q).map((id) => `${q}/${id}`));
}

describe("deep sender-specified routing from an untrusted client", () => {
  test("every depth and form is refused as relaying; nothing is queued", async () => {
    const c = await RawSmtp.connect(sys.port);
    expect(await c.reply()).toMatch(/^220 /);
    expect(await c.cmd("EHLO client.example")).toMatch(/^250-/);
    expect(await c.cmd("MAIL FROM:<spammer@example.org>")).toMatch(/^250 /);
    const forms = [exploit(11, "%", HOST)];
    for (const form of ROUTING_FORMS) for (const hops of HOP_COUNTS) forms.push(exploit(hops, form, "localhost"));
    for (const a of forms) {
      const written = a.includes("@") && a.slice(0, a.lastIndexOf("@")).includes("@") ? `"${a.slice(0, a.lastIndexOf("@"))}"${a.slice(a.lastIndexOf("@"))}` : a;
      const r = await c.cmd(`RCPT TO:<${written}>`);
      expect({ a, r }).toEqual({ a, r: expect.stringMatching(/^454 4\.7\.1 <.*>: Relay access denied\r\n$/) });
    }
    // an address the resolver gives up on (the empty local part resolves to itself here) is refused, not local
    expect(await c.cmd(`RCPT TO:<""@${HOST}>`)).toBe(`550 5.1.3 <@${HOST}>: Recipient address rejected: Address resolution loop\r\n`);
    expect(await c.cmd("DATA")).toMatch(/^554 5\.5\.1 /);
    expect(await c.cmd("QUIT")).toMatch(/^221 /);
    c.destroy();

    // a legitimate message afterwards is queued, for the only recipient it names
    const ok = await RawSmtp.connect(sys.port);
    expect(await ok.reply()).toMatch(/^220 /);
    expect(await ok.cmd("EHLO client.example")).toMatch(/^250-/);
    expect(await ok.cmd("MAIL FROM:<friend@example.org>")).toMatch(/^250 /);
    expect(await ok.cmd(`RCPT TO:<root+x@${HOST}>`)).toMatch(/^250 /);
    expect(await ok.cmd("DATA")).toMatch(/^354 /);
    expect(await ok.cmd("Subject: deep routing control\r\n\r\nhello\r\n.")).toMatch(/^250 2\.0\.0 Ok: queued as /);
    expect(await ok.cmd("QUIT")).toMatch(/^221 /);
    ok.destroy();
    const m = await sys.message("deep routing control");
    expect(m.recipients.map((r) => r.address)).toEqual([`root+x@${HOST}`]);
    expect(queued()).toHaveLength(1);
    expect(sys.messagesContaining("victim.example")).toEqual([]);
    expect(sys.log()).toMatch(/NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 454 4\.7\.1 <root\+x%victim\.example%localhost/);
  }, 60_000);
});
