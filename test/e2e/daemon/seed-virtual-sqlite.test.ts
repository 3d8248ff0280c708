/**
 * The seed document's virtual-domain set-up (a 2012 "Postfix
 * Configuration" post: Postfix with MySQL, Courier IMAP reading the same
 * users), followed step by step as root, with its mysql: tables moved to
 * sqlite: and nothing else changed: the same main.cf settings, the same
 * .cf keys (table, select_field, where_field, additional_conditions; dbpath
 * instead of the MySQL connection), the same schema loaded by the test into
 * an SQLite database.
 *
 * The set-up is the old style: hosted domains are in mydestination through
 * `$transport_maps` (a table), transport_maps sends them to `virtual:`,
 * local_recipient_maps includes `$virtual_mailbox_maps`, aliases come from
 * `virtual_maps` (the old name of virtual_alias_maps). Mail sent over SMTP
 * and by sendmail reaches Maildirs under virtual_mailbox_base owned by the
 * vmail uid/gid the tables give; aliases (one-to-one, one-to-many), a
 * catch-all and a local alias work; a user with postfix = 'n', or unknown,
 * gets Postfix's 550 5.1.1; a relocated user gets 550 5.1.6.
 *
 * Its SASL settings are kept too (smtpd_sasl_auth_enable,
 * broken_sasl_auth_clients, noanonymous, smtpd_sasl_local_domain =
 * $myhostname, permit_sasl_authenticated before reject_unauth_destination)
 * with postern's built-in SASL backend in place of Cyrus's: a user made
 * with `postern saslpasswd` may relay, a stranger may not.
 *
 * Left out: Courier's own use of the database (its passwords are in clear
 * text, which postern's SASL tables do not take), and the access tables
 * (mysql-client.cf, mysql-sender.cf, mysql-recipient.cf), which its main.cf
 * never names.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { freePort } from "../../helpers/smtpd-system.ts";
import { run } from "../../helpers/run.ts";
import { ensureMailOwner, isRoot, MailSystem, maildirMessages, message, TestUsers, waitFor } from "../../helpers/mail-system.ts";

const users = new TestUsers("psd");
let sys: MailSystem | undefined;
afterAll(async () => {
  await sys?.cleanup();
  users.removeAll();
});

/** The seed's tables, as its .cf files describe them (and Courier's authmysqlrc names the user columns). */
const SCHEMA = `
CREATE TABLE postfix_alias (alias TEXT NOT NULL, destination TEXT NOT NULL);
CREATE TABLE postfix_access (source TEXT NOT NULL, access TEXT NOT NULL, type TEXT NOT NULL);
CREATE TABLE postfix_relocated (email TEXT NOT NULL, destination TEXT NOT NULL);
CREATE TABLE postfix_transport (domain TEXT NOT NULL, destination TEXT NOT NULL);
CREATE TABLE postfix_virtual (email TEXT NOT NULL, destination TEXT NOT NULL);
CREATE TABLE postfix_users (email TEXT NOT NULL, clear TEXT, uid INTEGER, gid INTEGER, homedir TEXT, maildir TEXT, quota TEXT, postfix TEXT NOT NULL DEFAULT 'y');
`;

/** The seed's mysql-*.cf files, with dbpath in place of user/password/dbname/hosts. */
const CF_FILES: Record<string, string> = {
  "sqlite-aliases.cf": "table = postfix_alias\nselect_field = destination\nwhere_field = alias\n",
  "sqlite-relocated.cf": "table = postfix_relocated\nselect_field = destination\nwhere_field = email\n",
  "sqlite-transport.cf": "table = postfix_transport\nselect_field = destination\nwhere_field = domain\n",
  "sqlite-virtual.cf": "table = postfix_virtual\nselect_field = destination\nwhere_field = email\n",
  "sqlite-virtual-gid.cf": "table = postfix_users\nselect_field = gid\nwhere_field = email\nadditional_conditions = and postfix = 'y'\n",
  "sqlite-virtual-uid.cf": "table = postfix_users\nselect_field = uid\nwhere_field = email\nadditional_conditions = and postfix = 'y'\n",
  "sqlite-virtual-maps.cf": "table = postfix_users\nselect_field = maildir\nwhere_field = email\nadditional_conditions = and postfix = 'y'\n",
};

describe.skipIf(!isRoot)("the seed's virtual domains with sqlite: tables", () => {
  let vmail: PasswdEntry;
  let local: PasswdEntry;
  let base: string;
  let port: number;
  const maildir = (...parts: string[]) => join(base, ...parts);
  const delivered = (dir: string, subject: string) => waitFor(`"${subject}" in ${dir}`, () => maildirMessages(dir).find((m) => m.includes(`Subject: ${subject}\n`)));

  function swaks(to: string, subject?: string): { code: number; out: string } {
    const tail = subject === undefined ? ["--quit-after", "RCPT"] : ["--header", `Subject: ${subject}`, "--body", "over SMTP\n"];
    const r = Bun.spawnSync(["swaks", "--server", `127.0.0.1:${port}`, "--helo", "client.example.org", "--from", "friend@example.org", "--to", to, ...tail], { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
    return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() };
  }

  beforeAll(async () => {
    ensureMailOwner();
    sys = new MailSystem();
    const homes = join(sys.dir, "home");
    vmail = users.add("vmail", homes);
    local = users.add("u", homes);
    // "all of the mail will be stored in /home/vmail ... owned by the user 'vmail'"
    base = join(sys.dir, "vmail");
    mkdirSync(base, { mode: 0o755 });
    for (const d of ["linux.ork", "hosted.ork"]) {
      mkdirSync(join(base, d), { mode: 0o700 });
      chownSync(join(base, d), vmail.uid, vmail.gid);
    }
    chownSync(base, vmail.uid, vmail.gid);

    const dbPath = join(sys.etc, "postfix.db");
    const db = new Database(dbPath, { create: true });
    db.exec(SCHEMA);
    const user = db.prepare("INSERT INTO postfix_users (email, clear, uid, gid, homedir, maildir, quota, postfix) VALUES (?, 'secret', ?, ?, ?, ?, '0', ?)");
    user.run("alice@sub.linux.ork", vmail.uid, vmail.gid, base, "linux.ork/alice/", "y");
    user.run("bob@sub.linux.ork", vmail.uid, vmail.gid, base, "linux.ork/bob/", "y");
    user.run("carol@hosted.ork", vmail.uid, vmail.gid, base, "hosted.ork/carol/", "y");
    user.run("dora@hosted.ork", vmail.uid, vmail.gid, base, "hosted.ork/dora/", "y");
    user.run("disabled@sub.linux.ork", vmail.uid, vmail.gid, base, "linux.ork/disabled/", "n");
    const transport = db.prepare("INSERT INTO postfix_transport VALUES (?, ?)");
    transport.run("sub.linux.ork", "virtual:");
    transport.run("hosted.ork", "virtual:");
    const virtual = db.prepare("INSERT INTO postfix_virtual VALUES (?, ?)");
    virtual.run("info@sub.linux.ork", "alice@sub.linux.ork");
    virtual.run("team@sub.linux.ork", "alice@sub.linux.ork, bob@sub.linux.ork");
    virtual.run("dora@hosted.ork", "dora@hosted.ork");
    // every other address of hosted.ork: the catch-all
    virtual.run("@hosted.ork", "carol@hosted.ork");
    db.prepare("INSERT INTO postfix_alias VALUES (?, ?)").run("webmaster", local.name);
    db.prepare("INSERT INTO postfix_relocated VALUES (?, ?)").run("gone@sub.linux.ork", "gone@elsewhere.example");
    db.close();
    chmodSync(dbPath, 0o644);
    const cf = (name: string) => sys!.etcFile(name, `dbpath = ${dbPath}\n${CF_FILES[name]}`);
    for (const name of Object.keys(CF_FILES)) cf(name);
    const t = (name: string) => `sqlite:${join(sys!.etc, name)}`;

    port = freePort();
    sys.writeConfig(
      {
        home_mailbox: "Maildir/",
        recipient_delimiter: "+",
        mydestination: "$myhostname, $transport_maps",
        alias_maps: t("sqlite-aliases.cf"),
        alias_database: "",
        relocated_maps: t("sqlite-relocated.cf"),
        transport_maps: t("sqlite-transport.cf"),
        virtual_maps: t("sqlite-virtual.cf"),
        local_recipient_maps: "$alias_maps $virtual_mailbox_maps unix:passwd.byname",
        virtual_mailbox_base: base,
        virtual_mailbox_maps: t("sqlite-virtual-maps.cf"),
        virtual_uid_maps: t("sqlite-virtual-uid.cf"),
        virtual_gid_maps: t("sqlite-virtual-gid.cf"),
        myhostname: "linux.ork",
        mydomain: "sub.linux.ork",
        myorigin: "$mydomain",
        unknown_local_recipient_reject_code: 550,
        // 127.0.0.1 is a stranger here: only SASL makes it a trusted client
        mynetworks: "192.0.2.0/24",
        broken_sasl_auth_clients: "yes",
        smtpd_sasl_auth_enable: "yes",
        smtpd_sasl_security_options: "noanonymous",
        smtpd_recipient_restrictions: "permit_sasl_authenticated, reject_unauth_destination",
        smtpd_sasl_local_domain: "$myhostname",
      },
      `[services.smtp]\nlisten = "127.0.0.1:${port}"\n`,
    );
    const sasl = await run("postern", ["saslpasswd", "-c", sys.etc, "roamer@linux.ork"], { stdin: "roaming-secret\n" });
    if (sasl.code !== 0) throw new Error(`saslpasswd: ${sasl.stderr}`);
    const check = await run("postfix", ["-c", sys.etc, "check"]);
    if (check.code !== 0) throw new Error(`postfix check: ${check.stderr}`);
    await sys.start();
    await waitFor("the smtpd listener", () => swaks("alice@sub.linux.ork").code === 0);
  }, 60_000);

  test("postfix check accepts the set-up as it is", async () => {
    const check = await run("postfix", ["-c", sys!.etc, "check"]);
    expect(check.code).toBe(0);
    expect(check.stderr).not.toContain("error:");
  });

  test("SMTP: a mailbox user gets the message in a Maildir under virtual_mailbox_base, owned by the vmail uid/gid", async () => {
    expect(swaks("alice@sub.linux.ork", "sd-smtp")).toMatchObject({ code: 0 });
    const m = await delivered(maildir("linux.ork", "alice"), "sd-smtp");
    expect(m).toStartWith("Return-Path: <friend@example.org>\nX-Original-To: alice@sub.linux.ork\nDelivered-To: alice@sub.linux.ork\n");
    for (const path of [maildir("linux.ork", "alice"), maildir("linux.ork", "alice", "new"), ...readdirSync(maildir("linux.ork", "alice", "new")).map((n) => maildir("linux.ork", "alice", "new", n))]) {
      const st = statSync(path);
      expect([path, st.uid, st.gid]).toEqual([path, vmail.uid, vmail.gid]);
    }
    await sys!.waitForLog(/postfix\/virtual\[\d+\]: [0-9A-F]+: to=<alice@sub\.linux\.ork>, relay=virtual, .*status=sent \(delivered to maildir\)/);
  });

  test("sendmail: a local user writes to a mailbox user of the second domain", async () => {
    await sys!.send(["carol@hosted.ork"], message("sd-sendmail"), { user: local });
    const m = await delivered(maildir("hosted.ork", "carol"), "sd-sendmail");
    // myorigin = $mydomain: the local sender's address is in the seed's domain
    expect(m).toStartWith(`Return-Path: <${local.name}@sub.linux.ork>\n`);
    expect(statSync(maildir("hosted.ork", "carol")).uid).toBe(vmail.uid);
  });

  test("virtual_maps aliases: one-to-one, one-to-many, an address that maps to itself, and the catch-all", async () => {
    expect(swaks("info@sub.linux.ork", "sd-info")).toMatchObject({ code: 0 });
    expect(swaks("team@sub.linux.ork", "sd-team")).toMatchObject({ code: 0 });
    expect(swaks("dora@hosted.ork", "sd-self")).toMatchObject({ code: 0 });
    expect(swaks("anyone@hosted.ork", "sd-catchall")).toMatchObject({ code: 0 });
    expect(await delivered(maildir("linux.ork", "alice"), "sd-info")).toContain("X-Original-To: info@sub.linux.ork\nDelivered-To: alice@sub.linux.ork\n");
    await delivered(maildir("linux.ork", "alice"), "sd-team");
    await delivered(maildir("linux.ork", "bob"), "sd-team");
    await delivered(maildir("hosted.ork", "dora"), "sd-self");
    expect(await delivered(maildir("hosted.ork", "carol"), "sd-catchall")).toContain("X-Original-To: anyone@hosted.ork\nDelivered-To: carol@hosted.ork\n");
  });

  test("an alias from the sqlite alias_maps delivers to a local user's Maildir/ (home_mailbox)", async () => {
    await sys!.send([`webmaster@linux.ork`], message("sd-alias"));
    const m = await delivered(join(local.home, "Maildir"), "sd-alias");
    // frozen_delivered_to (Postfix's default): Delivered-To: is the address local(8) started with
    expect(m).toContain("X-Original-To: webmaster@linux.ork\nDelivered-To: webmaster@linux.ork\n");
    expect(statSync(join(local.home, "Maildir")).uid).toBe(local.uid);
  });

  test("sendmail to an unknown user of a hosted domain: bounced with virtual(8)'s words, the report in the sender's Maildir/", async () => {
    // myorigin = $mydomain is one of the virtual domains: the sender names its $myhostname address for the report to reach it
    await sys!.send(["nosuchuser@sub.linux.ork"], message("sd-unknown"), { user: local, sender: `${local.name}@linux.ork` });
    const report = await delivered(join(local.home, "Maildir"), "sd-unknown");
    expect(report).toContain("Subject: Undelivered Mail Returned to Sender\n");
    expect(report).toContain('<nosuchuser@sub.linux.ork>: unknown user: "nosuchuser@sub.linux.ork"');
    await sys!.waitForLog(/to=<nosuchuser@sub\.linux\.ork>, relay=virtual, .*dsn=5\.1\.1, status=bounced \(unknown user: "nosuchuser@sub\.linux\.ork"\)/);
  });

  test("SASL as the seed has it: an authenticated user (login name + smtpd_sasl_local_domain) may relay, a stranger may not", () => {
    const relay = (auth: string[]) =>
      Bun.spawnSync(["swaks", "--server", `127.0.0.1:${port}`, "--helo", "client.example.org", "--from", "roamer@linux.ork", "--to", "someone@elsewhere.example", "--quit-after", "RCPT", ...auth], { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
    const ok = relay(["--auth", "PLAIN", "--auth-user", "roamer", "--auth-password", "roaming-secret"]);
    const out = ok.stdout.toString();
    expect(out).toContain("250-AUTH=PLAIN LOGIN");
    expect(out).toContain("235 2.7.0 Authentication successful");
    expect(out).toMatch(/<- {2}250 2\.1\.5 Ok/);
    const wrong = relay(["--auth", "PLAIN", "--auth-user", "roamer", "--auth-password", "wrong"]);
    expect(wrong.stdout.toString()).toContain("535 5.7.8 Error: authentication failed");
  });

  test("unknown users, and a user whose postfix column is 'n', get Postfix's 550 5.1.1 at RCPT; a relocated user 550 5.1.6", () => {
    expect(swaks("nosuchuser@sub.linux.ork").out).toContain("550 5.1.1 <nosuchuser@sub.linux.ork>: Recipient address rejected: User unknown in local recipient table");
    expect(swaks("disabled@sub.linux.ork").out).toContain("550 5.1.1 <disabled@sub.linux.ork>: Recipient address rejected: User unknown in local recipient table");
    expect(swaks("gone@sub.linux.ork").out).toContain("550 5.1.6 <gone@sub.linux.ork>: Recipient address rejected: User has moved to gone@elsewhere.example");
    // smtpd_relay_restrictions (Postfix's default, defer_unauth_destination) answers first
    expect(swaks("someone@elsewhere.example").out).toContain("454 4.7.1 <someone@elsewhere.example>: Relay access denied");
  });
});
