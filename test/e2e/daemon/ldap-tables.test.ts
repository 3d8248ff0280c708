/**
 * ldap: tables through the whole running system as root, against a slapd
 * the test starts: a hosted domain whose mailboxes (virtual_mailbox_maps)
 * and group aliases (virtual_alias_maps, members followed through
 * special_result_attribute) live in the directory, with the table files of
 * docs/tables.md, mode 0600 (they hold bind_pw). Mail from sendmail and over SMTP lands in the Maildirs;
 * an unknown user is refused at RCPT; with the directory down, RCPT gets
 * 451 4.3.0 and queued mail is deferred, then delivered by postqueue -f once
 * the directory is back.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { run } from "../../helpers/run.ts";
import { type Slapd, haveSlapd, startSlapd } from "../../helpers/slapd.ts";
import { freePort } from "../../helpers/smtpd-system.ts";
import { ensureMailOwner, HOST, isRoot, MailSystem, maildirMessages, message, TestUsers, waitFor } from "../../helpers/mail-system.ts";
import { DIRECTORY, GROUPS, PEOPLE, READER_DN, READER_PW } from "../../unit/global/tables/ldap/directory.ts";

const users = new TestUsers("pld");
let sys: MailSystem | undefined;
let slapd: Slapd | undefined;
afterAll(async () => {
  await sys?.cleanup();
  await slapd?.destroy();
  users.removeAll();
});

describe.skipIf(!isRoot || !haveSlapd())("virtual mailboxes and aliases from LDAP", () => {
  let base: string;
  let port: number;
  let sender: PasswdEntry;
  const maildir = (user: string) => join(base, "example.com", user);
  const inMaildir = (user: string, subject: string) => waitFor(`"${subject}" for ${user}`, () => maildirMessages(maildir(user)).find((m) => m.includes(`Subject: ${subject}\n`)));

  function swaks(to: string, subject: string): { code: number; out: string } {
    const r = Bun.spawnSync(["swaks", "--silent", "1", "--server", `127.0.0.1:${port}`, "--helo", "client.example.org", "--from", "remote@example.org", "--to", to, "--header", `Subject: ${subject}`, "--body", "over SMTP\n"], { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
    return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() };
  }

  beforeAll(async () => {
    ensureMailOwner();
    slapd = await startSlapd(DIRECTORY);
    // no retry on its own within the test: only the flush request delivers deferred mail
    sys = new MailSystem({ minimal_backoff_time: "1h", maximal_backoff_time: "2h", queue_run_delay: "1h" });
    const homes = join(sys.dir, "home");
    const vmail = users.add("v", homes);
    sender = users.add("s", homes);
    base = join(sys.dir, "vmail");
    mkdirSync(join(base, "example.com"), { recursive: true, mode: 0o755 });
    chownSync(join(base, "example.com"), vmail.uid, vmail.gid);
    const bind = `server_host = ${slapd.url}\nversion = 3\nbind_dn = ${READER_DN}\nbind_pw = ${READER_PW}\n`;
    const mailboxes = sys.etcFile(
      "ldap-mailboxes.cf",
      `${bind}search_base = ${PEOPLE}\nquery_filter = (&(objectClass=inetLocalMailRecipient)(mailLocalAddress=%s))\nresult_attribute = uid\nresult_format = example.com/%s/\n`,
    );
    const aliases = sys.etcFile("ldap-aliases.cf", `${bind}search_base = ${GROUPS}\nquery_filter = (mailLocalAddress=%s)\nspecial_result_attribute = member\nresult_attribute = mail\n`);
    // they hold bind_pw: root's alone; the daemons read them before they leave root
    chmodSync(mailboxes, 0o600);
    chmodSync(aliases, 0o600);
    port = freePort();
    const services = `[services.smtp]\nlisten = "127.0.0.1:${port}"\n`;
    sys.writeConfig(
      {
        virtual_mailbox_domains: "example.com",
        virtual_mailbox_base: base,
        virtual_mailbox_maps: `proxy:ldap:${mailboxes}`,
        virtual_alias_maps: `ldap:${aliases}`,
        virtual_uid_maps: `static:${vmail.uid}`,
        virtual_gid_maps: `static:${vmail.gid}`,
        smtpd_sender_restrictions: "check_sender_access inline:{ held@example.org=HOLD }",
      },
      services,
    );
    const q = await run("postmap", ["-c", sys.etc, "-q", "info@example.com", `ldap:${mailboxes}`]);
    expect(q.stdout).toBe("example.com/alice/\n");
    expect((await sys.postern(["check"])).stderr).not.toContain("ldap-");
    // postern check tries each ldap: table: a wrong password is named there, not first in the mail log
    const wrong = sys.etcFile("ldap-wrong.cf", `server_host = ${slapd.url}\nversion = 3\nbind_dn = ${READER_DN}\nbind_pw = not-the-password\n`);
    chmodSync(wrong, 0o600);
    sys.writeConfig({ relay_recipient_maps: `ldap:${wrong}` }, services);
    const check = await sys.postern(["check"]);
    expect(check.code).toBe(0);
    expect(check.stderr).toContain(`: relay_recipient_maps: ldap:${wrong}: test lookup failed: Unable to bind to server ${slapd.url}`);
    expect(check.stderr).toContain("49 (Invalid credentials)");
    sys.writeConfig({ relay_recipient_maps: undefined }, services);
    await sys.start();
    await waitFor("the smtpd listener", () => swaks("alice@example.com", "warm-up").code === 0);
  }, 60_000);

  test("sendmail: a mailbox found by another of its addresses, and a group whose members are DNs in the group's entry", async () => {
    await sys!.send(["info@example.com", "staff@example.com"], message("ldapsend"), { sender: `${sender.name}@${HOST}` });
    // once as info@, once as a member of staff@, in whichever order the two deliveries finish
    const copies = await waitFor("two copies for alice", () => {
      const found = maildirMessages(maildir("alice")).filter((m) => m.includes("Subject: ldapsend\n"));
      return found.length === 2 ? found : undefined;
    });
    expect(copies.filter((m) => m.includes("Delivered-To: info@example.com\n"))).toHaveLength(1);
    expect(copies.filter((m) => m.includes("X-Original-To: staff@example.com\n"))).toHaveLength(1);
    expect(await inMaildir("bob", "ldapsend")).toContain("X-Original-To: staff@example.com\n");
  });

  test("SMTP: a directory user is accepted and delivered; an unknown one refused at RCPT", async () => {
    expect(swaks("bob@example.com", "ldapsmtp")).toMatchObject({ code: 0 });
    expect(await inMaildir("bob", "ldapsmtp")).toContain("Return-Path: <remote@example.org>\n");
    const r = swaks("nobody@example.com", "ldapunknown");
    expect(r.out).toContain("550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in virtual mailbox table");
  });

  test("the directory down: RCPT gets 451 4.3.0, sendmail's mail waits in maildrop, queued mail is deferred; back up, all is delivered", async () => {
    // a message in the queue before the directory goes away: held on arrival, released while it is down
    const hold = Bun.spawnSync(["swaks", "--silent", "1", "--server", `127.0.0.1:${port}`, "--from", "held@example.org", "--to", "carol@example.com", "--header", "Subject: ldapheld", "--body", "x\n"], { timeout: 30_000 });
    expect(hold.exitCode).toBe(0);
    await waitFor("the held message", () => sys!.queueIds("hold").length === 1);
    const from = sys!.log().length;
    await slapd!.stop();
    try {
      const r = swaks("carol@example.com", "ldapdown-smtp");
      expect(r.code).not.toBe(0);
      expect(r.out).toContain("451 4.3.0 <carol@example.com>: Recipient address rejected: Temporary lookup failure");
      await sys!.send(["carol@example.com"], message("ldapdown"), { sender: `${sender.name}@${HOST}` });
      await sys!.waitForLog(/virtual_alias_maps map lookup problem for carol@example\.com .* -- message not accepted, try again later/, 30_000, from);
      expect((await run("postsuper", ["-c", sys!.etc, "-H", "ALL"])).code).toBe(0);
      expect((await run("postqueue", ["-c", sys!.etc, "-f"])).code).toBe(0);
      await sys!.waitForLog(/to=<carol@example\.com>.*status=deferred/, 30_000, from);
      expect(maildirMessages(maildir("carol"))).toEqual([]);
    } finally {
      await slapd!.start();
    }
    expect((await run("postqueue", ["-c", sys!.etc, "-f"])).code).toBe(0);
    expect(await inMaildir("carol", "ldapheld")).toContain("Return-Path: <held@example.org>\n");
    // a new submission wakes pickup, which takes the waiting file too
    await sys!.send(["carol@example.com"], message("ldapback"), { sender: `${sender.name}@${HOST}` });
    expect(await inMaildir("carol", "ldapback")).toContain("Delivered-To: carol@example.com\n");
    expect(await inMaildir("carol", "ldapdown")).toContain("Delivered-To: carol@example.com\n");
    await sys!.waitForEmptyQueue();
  }, 60_000);
});
