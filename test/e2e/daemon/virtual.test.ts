/**
 * virtual(8) through the whole running system as root: a hosted domain
 * (virtual_mailbox_domains = example.net) whose mailboxes are not UNIX
 * accounts, a texthash virtual_mailbox_maps with a Maildir user (alice) and
 * an mbox user (bob) and an sqlite one with a Maildir user (sql), virtual_uid_maps/virtual_gid_maps giving a vmail
 * account made for the run. Mail from sendmail and over SMTP lands in those
 * files owned by vmail, with Return-Path: and Delivered-To:; an unknown
 * user bounces with Postfix's words (and is refused at RCPT over SMTP); a
 * symlink or a hard link planted at an mbox path is refused; a uid below
 * virtual_minimum_uid defers.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { chownSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { freePort } from "../../helpers/smtpd-system.ts";
import { ensureMailOwner, HOST, isRoot, MailSystem, maildirMessages, mboxMessages, message, TestUsers, waitFor } from "../../helpers/mail-system.ts";

const users = new TestUsers("pvm");
let sys: MailSystem | undefined;
afterAll(async () => {
  await sys?.cleanup();
  users.removeAll();
});

describe.skipIf(!isRoot)("virtual mailboxes for a hosted domain", () => {
  let vmail: PasswdEntry;
  let sender: PasswdEntry;
  let base: string;
  let port: number;
  const alice = () => join(base, "example.net", "alice");
  const bob = () => join(base, "example.net", "bob");

  const inMaildir = (dir: string, subject: string) => waitFor(`"${subject}" in ${dir}`, () => maildirMessages(dir).find((m) => m.includes(`Subject: ${subject}\n`)));
  const inMbox = (path: string, subject: string) => waitFor(`"${subject}" in ${path}`, () => mboxMessages(path).find((m) => m.includes(`Subject: ${subject}\n`)));

  function swaks(to: string, subject: string): { code: number; out: string } {
    const r = Bun.spawnSync(["swaks", "--silent", "1", "--server", `127.0.0.1:${port}`, "--helo", "client.example.org", "--from", "remote@example.org", "--to", to, "--header", `Subject: ${subject}`, "--body", "over SMTP\n"], { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
    return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() };
  }

  beforeAll(async () => {
    ensureMailOwner();
    sys = new MailSystem();
    const homes = join(sys.dir, "home");
    vmail = users.add("v", homes);
    sender = users.add("s", homes);
    base = join(sys.dir, "vmail");
    mkdirSync(base, { mode: 0o755 });
    // the domain's directory is vmail's: virtual(8) creates the Maildir folders below it, never the base
    mkdirSync(join(base, "example.net"), { mode: 0o700 });
    chownSync(join(base, "example.net"), vmail.uid, vmail.gid);
    const mailboxes = sys.etcFile(
      "vmailbox",
      ["alice@example.net  example.net/alice/", "bob@example.net    example.net/bob", "eve@example.net    example.net/eve", "dave@example.net   example.net/dave/", "frank@example.net  example.net/frank", ""].join("\n"),
    );
    // a second table, an SQLite database as the seed's set-up keeps its users in
    const dbPath = join(sys.etc, "vmail.db");
    const db = new Database(dbPath, { create: true });
    db.run("CREATE TABLE mailbox (username TEXT PRIMARY KEY, maildir TEXT)");
    db.run("INSERT INTO mailbox VALUES ('sql@example.net', 'example.net/sql/')");
    db.close();
    const sqlCf = sys.etcFile("vmailbox-sqlite.cf", `dbpath = ${dbPath}\nquery = SELECT maildir FROM mailbox WHERE username='%s'\n`);
    // dave's uid is below virtual_minimum_uid (100); everyone else in the domain is vmail
    const uids = sys.etcFile("vuid", `dave@example.net 50\n@example.net ${vmail.uid}\n`);
    port = freePort();
    sys.writeConfig(
      {
        virtual_mailbox_domains: "example.net",
        virtual_mailbox_base: base,
        virtual_mailbox_maps: `texthash:${mailboxes}, sqlite:${sqlCf}`,
        virtual_uid_maps: `texthash:${uids}`,
        virtual_gid_maps: `static:${vmail.gid}`,
      },
      `[services.smtp]\nlisten = "127.0.0.1:${port}"\n`,
    );
    await sys.start();
    await waitFor("the smtpd listener", () => swaks("alice@example.net", "warm-up").code === 0);
  }, 60_000);

  test("sendmail: a Maildir and an mbox user get the message, written as the vmail uid/gid, with Return-Path: and Delivered-To:", async () => {
    await sys!.send(["alice@example.net", "bob@example.net"], message("vsendmail"), { sender: `${sender.name}@${HOST}` });
    const m = await inMaildir(alice(), "vsendmail");
    expect(m).toStartWith(`Return-Path: <${sender.name}@${HOST}>\nX-Original-To: alice@example.net\nDelivered-To: alice@example.net\n`);
    const b = await inMbox(bob(), "vsendmail");
    expect(b).toContain(`\nReturn-Path: <${sender.name}@${HOST}>\nX-Original-To: bob@example.net\nDelivered-To: bob@example.net\n`);
    for (const path of [alice(), join(alice(), "new"), join(alice(), "tmp"), join(alice(), "cur"), bob(), ...readdirSync(join(alice(), "new")).map((n) => join(alice(), "new", n))]) {
      const st = statSync(path);
      expect([path, st.uid, st.gid]).toEqual([path, vmail.uid, vmail.gid]);
    }
    await sys!.waitForLog(/to=<alice@example\.net>, relay=virtual, .*status=sent \(delivered to maildir\)/);
    await sys!.waitForLog(/to=<bob@example\.net>, relay=virtual, .*status=sent \(delivered to mailbox\)/);
  });

  test("a user found in an sqlite: virtual_mailbox_maps gets the message too", async () => {
    await sys!.send(["sql@example.net"], message("vsqlite"), { sender: `${sender.name}@${HOST}` });
    const dir = join(base, "example.net", "sql");
    expect(await inMaildir(dir, "vsqlite")).toContain("Delivered-To: sql@example.net\n");
    expect(statSync(dir).uid).toBe(vmail.uid);
  });

  test("SMTP: mail for the hosted domain is delivered, not sent to the domain's MX", async () => {
    expect(swaks("alice@example.net", "vsmtp")).toMatchObject({ code: 0 });
    expect(swaks("bob@example.net", "vsmtp")).toMatchObject({ code: 0 });
    expect(await inMaildir(alice(), "vsmtp")).toContain("Delivered-To: alice@example.net\n");
    expect(await inMbox(bob(), "vsmtp")).toContain("Return-Path: <remote@example.org>\n");
  });

  test("an unknown user: refused at RCPT over SMTP, bounced with virtual(8)'s words when sent locally", async () => {
    const r = swaks("carol@example.net", "vunknown-smtp");
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("550 5.1.1 <carol@example.net>: Recipient address rejected: User unknown in virtual mailbox table");
    await sys!.send(["carol@example.net"], message("vunknown"), { sender: `${sender.name}@${HOST}` });
    const report = await inMbox(join(sys!.spool, sender.name), "vunknown");
    expect(report).toContain("Subject: Undelivered Mail Returned to Sender\n");
    expect(report).toContain('<carol@example.net>: unknown user: "carol@example.net"');
    await sys!.waitForLog(/to=<carol@example\.net>, relay=virtual, .*dsn=5\.1\.1, status=bounced \(unknown user: "carol@example\.net"\)/);
  });

  test("a symbolic link planted at an mbox path is refused: nothing is written through it, the mail waits", async () => {
    const target = join(sys!.dir, "victim");
    writeFileSync(target, "");
    chownSync(target, vmail.uid, vmail.gid);
    symlinkSync(target, join(base, "example.net", "eve"));
    await sys!.send(["eve@example.net"], message("vsymlink"), { sender: `${sender.name}@${HOST}` });
    await sys!.waitForLog(/to=<eve@example\.net>, relay=virtual, .*status=deferred \(delivery failed to mailbox .*\/example\.net\/eve: .*symbolic link/);
    expect(readFileSync(target, "utf8")).toBe("");
    expect(lstatSync(join(base, "example.net", "eve")).isSymbolicLink()).toBe(true);
  });

  test("a hard link planted at an mbox path is refused: the other name's file is not appended to", async () => {
    const target = join(sys!.dir, "victim-hard");
    writeFileSync(target, "");
    chownSync(target, vmail.uid, vmail.gid);
    linkSync(target, join(base, "example.net", "frank"));
    await sys!.send(["frank@example.net"], message("vhardlink"), { sender: `${sender.name}@${HOST}` });
    await sys!.waitForLog(/to=<frank@example\.net>, relay=virtual, .*status=deferred \(delivery failed to mailbox .*\/example\.net\/frank: file has 2 hard links\)/);
    expect(readFileSync(target, "utf8")).toBe("");
  });

  test("a uid below virtual_minimum_uid defers with Postfix's words, and nothing is created", async () => {
    await sys!.send(["dave@example.net"], message("vminuid"), { sender: `${sender.name}@${HOST}` });
    await sys!.waitForLog(/to=<dave@example\.net>, relay=virtual, .*dsn=4\.3\.5, status=deferred \(mail system configuration error\)/);
    await sys!.waitForLog(/warning: recipient dave@example\.net: bad uid 50 in virtual_uid_maps/);
    expect(existsSync(join(base, "example.net", "dave"))).toBe(false);
  });
});
