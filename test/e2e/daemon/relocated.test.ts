/**
 * relocated_maps end to end (issue 12, part 2): an SMTP client is refused
 * at RCPT TO with Postfix's "550 5.1.6 <addr>: Recipient address rejected:
 * User has moved to NEW", and mail submitted with sendmail bounces to its
 * sender with the same status, as Postfix's queue manager bounces it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ensureMailOwner, HOST, isRoot, mboxMessages, message, TestUsers, waitFor } from "../../helpers/mail-system.ts";
import { RawSmtp, SmtpdSystem } from "../../helpers/smtpd-system.ts";
import type { PasswdEntry } from "../../../src/util/passwd.ts";

const users = new TestUsers("prl");

describe.skipIf(!isRoot)("relocated users", () => {
  let sys: SmtpdSystem;
  let alice: PasswdEntry;
  let gone: string;

  beforeAll(async () => {
    ensureMailOwner();
    sys = new SmtpdSystem({ local_transport: "local", mynetworks: "127.0.0.0/8" });
    alice = users.add("al", join(sys.dir, "home"));
    gone = `${alice.name.slice(0, -2)}gone`;
    const table = sys.etcFile("relocated", `${gone}@${HOST} ${gone}@elsewhere.example\n`);
    sys.writeConfig({ relocated_maps: `texthash:${table}` });
    await sys.start();
  }, 60_000);

  afterAll(async () => {
    await sys?.cleanup();
    users.removeAll();
  });

  test("SMTP: 550 5.1.6 User has moved to NEW at RCPT TO", async () => {
    const c = await RawSmtp.connect(sys.port);
    expect(await c.reply()).toMatch(/^220 /);
    await c.cmd("EHLO client.example");
    expect(await c.cmd("MAIL FROM:<x@client.example>")).toMatch(/^250 /);
    const moved = await c.cmd(`RCPT TO:<${gone}@${HOST}>`);
    expect(moved.trimEnd()).toBe(`550 5.1.6 <${gone}@${HOST}>: Recipient address rejected: User has moved to ${gone}@elsewhere.example`);
    expect(await c.cmd(`RCPT TO:<${alice.name}@${HOST}>`)).toMatch(/^250 /);
    await c.quit();
  }, 60_000);

  test("sendmail: the message bounces to its sender with 5.1.6", async () => {
    await sys.send([gone], message("rl-sendmail"), { sender: `${alice.name}@${HOST}` });
    await sys.waitForLog(new RegExp(`to=<${gone}@${HOST.replace(/\./g, "\\.")}>, .*relay=none, .*dsn=5\\.1\\.6, status=bounced \\(User has moved to ${gone}@elsewhere\\.example\\)`));
    const path = join(sys.spool, alice.name);
    const bounce = await waitFor("the bounce in the sender's mbox", () =>
      mboxMessages(path).find((m) => m.includes("Subject: Undelivered Mail Returned to Sender\n") && m.includes("Subject: rl-sendmail\n")),
    );
    expect(bounce).toContain("Status: 5.1.6");
    expect(bounce).toContain(`User has moved to ${gone}@elsewhere.example`);
  }, 60_000);
});
