/**
 * header_checks and body_checks end to end (issue 14, part 3): mail from an
 * SMTP client and from sendmail through regexp: and pcre: tables, each
 * action with its effect on the queue and Postfix's reply and log line;
 * receive_override_options on a second SMTP service (no_header_body_checks,
 * no_address_mappings, no_unknown_recipient_checks); smtp_header_checks and
 * smtp_body_checks on mail relayed to a sink.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ensureMailOwner, HOST, isRoot, message, waitFor } from "../../helpers/mail-system.ts";
import { relayToSink, type RelayToSink } from "../../helpers/relay-sink.ts";
import { RawSmtp, SmtpdSystem } from "../../helpers/smtpd-system.ts";

const HEADER_CHECKS = [
  "/^Subject: reject-plain/ REJECT",
  "/^Subject: reject-soft/ REJECT 4.7.1 try again later",
  "/^Subject: discard-me/ DISCARD spam",
  "/^Subject: hold-me/ HOLD held by test",
  "/^Subject: actions/ PREPEND X-Checked: yes",
  "/^X-Drop:/ IGNORE",
  "/^X-Old: (.*)/ REPLACE X-New: $1",
  "/^X-Filter:/ FILTER smtp:[127.0.0.1]:10025",
  "/^X-Redirect:/ REDIRECT elsewhere@example.org",
  "/^X-Bcc:/ BCC copy@example.org",
  "/^X-Warn:/ WARN looked at",
  "/^Subject: nested-secret/ REJECT 5.7.0 no nested secrets",
  "/^Received: from own-check\\.example / PREPEND X-Own: seen",
  "/^Received: by .*from userid 0/ INFO local received",
  "",
].join("\n");

const BODY_CHECKS = ["/^forbidden (\\w+)/ REJECT 5.7.0 $1 is not allowed", "/^strip this/ STRIP", ""].join("\n");

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe.skipIf(!isRoot)("header and body checks", () => {
  let sys: SmtpdSystem;

  beforeAll(async () => {
    ensureMailOwner();
    sys = new SmtpdSystem({ mynetworks: "127.0.0.0/8" }, { smtp: {}, reinject: { receive_override_options: "no_header_body_checks, no_address_mappings, no_unknown_recipient_checks" } });
    const header = sys.etcFile("header_checks", HEADER_CHECKS);
    const body = sys.etcFile("body_checks", BODY_CHECKS);
    const canonical = sys.etcFile("canonical", `mapped@${HOST} canon@${HOST}\n`);
    sys.writeConfig({
      header_checks: `regexp:${header}`,
      body_checks: `pcre:${body}`,
      canonical_maps: `texthash:${canonical}`,
      local_recipient_maps: `inline:{ known@${HOST}=x, mapped@${HOST}=x }`,
    });
    await sys.start();
  }, 60_000);

  afterAll(async () => {
    await sys?.cleanup();
  });

  /** One SMTP transaction; the reply to the end of DATA. */
  async function smtp(text: string, opts: { port?: number; rcpt?: string; helo?: string } = {}): Promise<string> {
    const c = await RawSmtp.connect(opts.port ?? sys.port);
    expect(await c.reply()).toMatch(/^220 /);
    await c.cmd(`EHLO ${opts.helo ?? "client.example"}`);
    expect(await c.cmd("MAIL FROM:<sender@client.example>")).toMatch(/^250 /);
    expect(await c.cmd(`RCPT TO:<${opts.rcpt ?? `known@${HOST}`}>`)).toMatch(/^250 /);
    expect(await c.cmd("DATA")).toMatch(/^354 /);
    const reply = await c.cmd(`${text.replace(/\n/g, "\r\n")}.`);
    await c.quit();
    return reply;
  }

  test("SMTP: REJECT answers the end of DATA 550 5.7.1 and logs Postfix's cleanup line; nothing is queued", async () => {
    expect(await smtp(message("reject-plain"))).toBe("550 5.7.1 message content rejected\r\n");
    await sys.waitForLog(
      new RegExp(`postfix/cleanup\\[\\d+\\]: [0-9A-F]+: reject: header Subject: reject-plain from localhost\\[127\\.0\\.0\\.1\\]; from=<sender@client\\.example> to=<known@${esc(HOST)}> proto=ESMTP helo=<client\\.example>: 5\\.7\\.1 message content rejected`),
    );
    expect(sys.messagesContaining("reject-plain")).toEqual([]);
  });

  test("SMTP: a 4.x.x REJECT answers 451; a body_checks REJECT with $1 answers with its own status", async () => {
    expect(await smtp(message("reject-soft"))).toBe("451 4.7.1 try again later\r\n");
    expect(await smtp(message("body-reject", "hello\nforbidden fruit\n"))).toBe("550 5.7.0 fruit is not allowed\r\n");
    await sys.waitForLog(/reject: body forbidden fruit from localhost\[127\.0\.0\.1\]; .*: 5\.7\.0 fruit is not allowed/);
  });

  test("SMTP: DISCARD says 250 and queues nothing; HOLD queues into hold/", async () => {
    expect(await smtp(message("discard-me"))).toMatch(/^250 2\.0\.0 Ok: queued as /);
    await sys.waitForLog(/discard: header Subject: discard-me from localhost\[127\.0\.0\.1\]; .*: spam/);
    expect(sys.messagesContaining("discard-me")).toEqual([]);
    expect(await smtp(message("hold-me"))).toMatch(/^250 /);
    const held = await sys.message("hold-me");
    expect(sys.queueIds("hold")).toContain(held.id);
    await sys.waitForLog(new RegExp(`${held.id}: hold: header Subject: hold-me from localhost\\[127\\.0\\.0\\.1\\]; .*: held by test`));
  });

  test("SMTP: PREPEND, REPLACE, IGNORE, STRIP change the queued message; FILTER, REDIRECT, BCC go into the queue file", async () => {
    const headers = "X-Drop: gone\nX-Old: value\nX-Filter: yes\nX-Bcc: yes\nX-Warn: yes\n";
    expect(await smtp(`Subject: actions\n${headers}\nkeep this\nstrip this line\nand this\n`)).toMatch(/^250 /);
    const m = await sys.message("actions");
    expect(m.text).toContain("X-Checked: yes\nSubject: actions\n");
    expect(m.text).toContain("X-New: value\n");
    expect(m.text).not.toContain("X-Drop");
    expect(m.text).toContain("keep this\nand this\n");
    expect(m.attributes.filter).toBe("smtp:[127.0.0.1]:10025");
    const bcc = m.recipients.find((r) => r.address === "copy@example.org");
    expect(bcc?.notify).toEqual(["NEVER"]);
    await sys.waitForLog(new RegExp(`${m.id}: warning: header X-Warn: yes from localhost\\[127\\.0\\.0\\.1\\]; .*: looked at`));
  });

  test("SMTP: REDIRECT goes into the queue file and ends the inspection (a later HOLD is not acted on)", async () => {
    expect(await smtp("Subject: redirect-me\nX-Redirect: yes\nSubject: hold-me too\n\nbody\n")).toMatch(/^250 /);
    const m = await sys.message("redirect-me");
    expect(m.attributes.redirect).toBe("elsewhere@example.org");
    expect(sys.queueIds("hold")).not.toContain(m.id);
    await sys.waitForLog(new RegExp(`${m.id}: redirect: header X-Redirect: yes from localhost\\[127\\.0\\.0\\.1\\]; .*: elsewhere@example\\.org`));
  });

  test("the server's own Received: header is checked first, as Postfix's cleanup sees it; its queue ID is the real one", async () => {
    expect(await smtp(message("own-smtp"), { helo: "own-check.example" })).toMatch(/^250 /);
    const m = await sys.message("own-smtp");
    expect(m.text).toStartWith(`X-Own: seen\nReceived: from own-check.example (localhost [127.0.0.1])\n\tby ${HOST} (postern) with ESMTP id ${m.id}\n`);
    await sys.send([`known@${HOST}`], message("own-local"));
    const l = await sys.message("own-local");
    await sys.waitForLog(new RegExp(`${l.id}: info: header Received: by ${esc(HOST)} \\(postern, from userid 0\\).*id ${l.id}; .* from local; .*: local received`));
    expect(l.text).toStartWith(`Received: by ${HOST} (postern, from userid 0)\n\tid ${l.id}; `);
  });

  test("SMTP: nested_header_checks (default $header_checks) see an attached message's headers", async () => {
    const body = ["--b1", "Content-Type: message/rfc822", "", "Subject: nested-secret", "", "inner", "--b1--", ""].join("\n");
    const reply = await smtp(message("outer", body, 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b1"\n'));
    expect(reply).toBe("550 5.7.0 no nested secrets\r\n");
  });

  test("receive_override_options on a service: no checks, no canonical mapping, unknown recipients accepted", async () => {
    const main = await RawSmtp.connect(sys.port);
    await main.reply();
    await main.cmd("EHLO client.example");
    await main.cmd("MAIL FROM:<sender@client.example>");
    expect(await main.cmd(`RCPT TO:<nobody@${HOST}>`)).toMatch(/^550 5\.1\.1 /);
    await main.quit();

    // a subject header_checks rejects on the main service
    expect(await smtp(message("reject-plain-reinjected"), { port: sys.ports.reinject! })).toMatch(/^250 /);
    expect(await smtp(message("ok-reinjected", "forbidden fruit\n", "X-Old: kept\n"), { port: sys.ports.reinject!, rcpt: `mapped@${HOST}` })).toMatch(/^250 /);
    const m = await sys.message("ok-reinjected");
    expect(m.text).toContain("X-Old: kept\n");
    expect(m.recipients.map((r) => r.address)).toEqual([`mapped@${HOST}`]);
    expect(await smtp(message("unknown-reinjected"), { port: sys.ports.reinject!, rcpt: `nobody@${HOST}` })).toMatch(/^250 /);

    // the main service maps and checks
    expect(await smtp(message("ok-main"), { rcpt: `mapped@${HOST}` })).toMatch(/^250 /);
    expect((await sys.message("ok-main")).recipients.map((r) => r.address)).toEqual([`canon@${HOST}`]);
  });

  test("sendmail: REJECT returns the message to the sender (5.7.1, bounced in cleanup)", async () => {
    await sys.send([`known@${HOST}`], message("reject-plain-local"), { sender: `author@${HOST}` });
    await sys.waitForLog(new RegExp(`reject: header Subject: reject-plain-local from local; from=<author@${esc(HOST)}> to=<known@${esc(HOST)}>: 5\\.7\\.1 message content rejected`));
    await sys.waitForLog(new RegExp(`to=<known@${esc(HOST)}>, relay=none, .*dsn=5\\.7\\.1, status=bounced \\(message content rejected\\)`));
    await sys.waitForLog(/sender non-delivery notification/);
  });

  test("sendmail: HOLD into hold/, DISCARD removes, REPLACE changes the queued message", async () => {
    await sys.send([`known@${HOST}`], message("hold-me-local"));
    const held = await sys.message("hold-me-local");
    expect(sys.queueIds("hold")).toContain(held.id);
    await sys.send([`known@${HOST}`], message("discard-me-local"));
    await sys.waitForLog(/discard: header Subject: discard-me-local from local;/);
    await sys.send([`known@${HOST}`], message("replaced-local", "body\n", "X-Old: local value\n"));
    const m = await sys.message("replaced-local");
    expect(m.text).toContain("X-New: local value\n");
    await waitFor("maildrop/ empty", () => sys.queueIds("maildrop").length === 0);
    expect(sys.messagesContaining("discard-me-local")).toEqual([]);
  });
});

describe.skipIf(!isRoot)("smtp_header_checks and smtp_body_checks", () => {
  let bench: RelayToSink;

  beforeAll(async () => {
    bench = await relayToSink({ mynetworks: "127.0.0.0/8" }, (s) => ({
      mydestination: "",
      smtp_header_checks: `regexp:${s.etcFile("smtp_header_checks", "/^Subject: (outbound.*)/ REPLACE Subject: [ext] $1\n/^X-Internal:/ STRIP\n/^X-Mark:/ PREPEND X-Added: 1\n")}`,
      smtp_body_checks: `regexp:${s.etcFile("smtp_body_checks", "/^secret/ IGNORE\n/^note/ INFO noted\n/^refuse/ REJECT\n")}`,
    }));
  }, 60_000);

  afterAll(() => bench?.stop());

  test("the relayed message leaves as the client's checks rewrite it, with Postfix's smtp log lines", async () => {
    const { sys } = bench;
    await sys.send(["friend@remote.example"], message("outbound-one", "secret stuff\nnote this\nrefuse nothing\nvisible\n", "X-Internal: 10.1.2.3\nX-Mark: y\n"));
    const m = await bench.atSink("[ext] outbound-one");
    expect(m.data).not.toContain("X-Internal");
    expect(m.data).toContain("X-Added: 1\r\nX-Mark: y\r\n");
    expect(m.data).toContain("\r\nnote this\r\nrefuse nothing\r\nvisible\r\n");
    expect(m.data).not.toContain("secret stuff");
    await sys.waitForLog(/postfix\/smtp\[\d+\]: [0-9A-F]+: replace: header Subject: outbound-one: Subject: \[ext\] outbound-one/);
    await sys.waitForLog(/: strip: header X-Internal: 10\.1\.2\.3/);
    await sys.waitForLog(/: info: body note this: noted/);
    await sys.waitForLog(/warning: unsupported command in smtp_body_checks map: REJECT/);
  }, 60_000);
});
