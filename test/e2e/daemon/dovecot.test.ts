/**
 * Hosted domains delivered by a real Dovecot (issue 12, parts 4 and 5), as
 * root: the test starts Dovecot with a private base_dir, a configuration
 * and a passwd-file of virtual users written here (test/helpers/dovecot.ts).
 * `virtual_transport = lmtp:unix:/tmp/.../lmtp` takes mail for a virtual
 * mailbox domain to Dovecot's LMTP server, and a pipe service runs
 * `dovecot-lda -d ${user}@${nexthop}` as the vmail user for a second
 * domain routed to it by transport_maps; both land in the virtual user's
 * Maildir, owned by vmail, with Dovecot's Return-Path: and Delivered-To:.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { statSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { DOVECOT_LDA, dovecotMissing, startDovecot, type Dovecot } from "../../helpers/dovecot.ts";
import { ensureMailOwner, HOST, isRoot, MailSystem, maildirMessages, TestUsers, waitFor } from "../../helpers/mail-system.ts";

const users = new TestUsers("pdv");
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const MISSING = isRoot ? dovecotMissing() : undefined;

describe.skipIf(!isRoot || MISSING !== undefined)(`Dovecot behind postern${MISSING ? ` (skipped: ${MISSING})` : ""}`, () => {
  let sys: MailSystem;
  let dovecot: Dovecot;
  let vmail: PasswdEntry;
  let sender: PasswdEntry;

  beforeAll(async () => {
    ensureMailOwner();
    sys = new MailSystem();
    const homes = join(sys.dir, "home");
    vmail = users.add("v", homes);
    sender = users.add("s", homes);
    dovecot = await startDovecot(vmail, ["alice@hosted.test", "bob@lda.test"]);
    sys.writeConfig(
      {
        virtual_mailbox_domains: "hosted.test, lda.test",
        virtual_mailbox_maps: `texthash:${sys.etcFile("vmailbox", "alice@hosted.test x\nbob@lda.test x\n")}`,
        virtual_transport: `lmtp:unix:${dovecot.lmtpSocket}`,
        transport_maps: `texthash:${sys.etcFile("transport", "lda.test dovecot:\n")}`,
        dovecot_destination_recipient_limit: 1,
      },
      `[services.dovecot]\nrole = "pipe"\nflags = "DRhu"\nuser = "${vmail.name}"\nargv = "${DOVECOT_LDA} -c ${dovecot.config} -f \${sender} -d \${user}@\${nexthop}"\n`,
    );
    const check = await sys.postern(["check"]);
    expect(check.code).toBe(0);
    await sys.start();
  }, 60_000);

  afterAll(async () => {
    await sys?.cleanup();
    await dovecot?.stop();
    users.removeAll();
  });

  const inMaildir = (user: string, domain: string, subject: string) =>
    waitFor(`"${subject}" in ${user}@${domain}'s Maildir`, () => maildirMessages(dovecot.maildir(user, domain)).find((m) => m.includes(`Subject: ${subject}\n`)));

  const ownedByVmail = (user: string, domain: string) => {
    const dir = join(dovecot.maildir(user, domain), "new");
    for (const name of readdirSync(dir)) expect(statSync(join(dir, name)).uid).toBe(vmail.uid);
  };

  test("virtual_transport = lmtp:unix:...: a hosted-domain message lands in the virtual user's Maildir through Dovecot's LMTP", async () => {
    await sys.send(["alice@hosted.test"], "Subject: via lmtp\n\nhello lmtp\n", { sender: `${sender.name}@${HOST}` });
    const m = await inMaildir("alice", "hosted.test", "via lmtp");
    expect(m).toContain(`Return-Path: <${sender.name}@${HOST}>\n`);
    expect(m).toContain("Delivered-To: alice@hosted.test\n");
    expect(m).toContain("\nhello lmtp\n");
    ownedByVmail("alice", "hosted.test");
    // Postfix's form for a unix-domain LMTP server: relay=$myhostname[path]
    await sys.waitForLog(new RegExp(`postfix/lmtp\\[\\d+\\]: [0-9A-F]+: to=<alice@hosted\\.test>, relay=${esc(`${HOST}[${dovecot.lmtpSocket}]`)}, .*dsn=2\\.0\\.0, status=sent \\(250 2\\.0\\.0 <alice@hosted\\.test> [^ ]+ Saved\\)`));
  }, 60_000);

  test("LMTP: Dovecot's 550 for a user its userdb lacks bounces that recipient; the other one in the same transaction is delivered", async () => {
    await sys.send(["alice@hosted.test", "nosuch@hosted.test"], "Subject: lmtp two\n\nhello\n", { sender: `${sender.name}@${HOST}` });
    await inMaildir("alice", "hosted.test", "lmtp two");
    await sys.waitForLog(/to=<nosuch@hosted\.test>, relay=[^,]*lmtp[^,]*, .*dsn=5\.1\.1, status=bounced \(host [^)]* said: 550 5\.1\.1 <nosuch@hosted\.test> User doesn't exist/);
  }, 60_000);

  test("dovecot-lda -d ${user}@${nexthop} through a pipe service, as the vmail user, with the userdb of the running Dovecot", async () => {
    await sys.send(["Bob@LDA.test"], "Subject: via lda\n\nhello lda\n", { sender: `${sender.name}@${HOST}` });
    const m = await inMaildir("bob", "lda.test", "via lda");
    expect(m).toContain(`Return-Path: <${sender.name}@${HOST}>\n`);
    expect(m).toMatch(/\nDelivered-To: bob@lda\.test\n/i);
    expect(m).toContain("\nhello lda\n");
    ownedByVmail("bob", "lda.test");
    await sys.waitForLog(/to=<Bob@LDA\.test>, relay=dovecot, .*status=sent \(delivered via dovecot service\)/i);
  }, 60_000);
});
