/**
 * mysql: tables through the whole running system as root, against a
 * MariaDB the test starts: the seed document's mysql-*.cf files
 * (../shared/seeds/003: the legacy table/select_field/where_field keys,
 * `hosts = localhost`, which is the default UNIX socket, here passed to the
 * daemons with import_environment's MYSQL_UNIX_PORT=) and a schema for
 * them. The files are root's, mode 0600: the daemons read them before they
 * drop privileges.
 *
 * - the seed files answer `postmap -q` and `postmap -q -` unchanged; the
 *   seed's gid file, whose password has one X too few, fails with the
 *   server's words, in postmap and in `postfix check`;
 * - smtpd validates recipients against virtual_mailbox_maps and
 *   virtual_alias_maps in MariaDB, check_recipient_access reads its access
 *   table there, and mail is delivered into a vmail-owned Maildir; local(8)
 *   finds an alias in the seed's alias table;
 * - the server stopped mid-run: RCPT gets 451 4.3.0, a queued message is
 *   deferred with the server's error and nothing is lost; once the server is
 *   back, `postqueue -f` delivers it. (The copies the system uses add
 *   `retry_interval = 1`, Postfix 3.9's setting, so that a dead server is
 *   retried after 1 s instead of 60, and `cache_time = 0`, so that no
 *   process answers from what it asked a moment before the stop.)
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { freePort } from "../../helpers/smtpd-system.ts";
import { ensureMailOwner, HOST, isRoot, MailSystem, maildirMessages, mboxMessages, message, TestUsers, waitFor } from "../../helpers/mail-system.ts";
import { MARIADB_MISSING, startMariaDb, type MariaDb } from "../../helpers/mariadb.ts";
import { run } from "../../helpers/run.ts";

/** The seed's eleven files, as the document writes them (password XXXXXXXX; the gid file's has seven X). */
const SEED: Record<string, string> = {
  "mysql-aliases.cf": "user = postfix\npassword = XXXXXXXX\ndbname = postfix\ntable = postfix_alias\nselect_field = destination\nwhere_field = alias\nhosts = localhost\n",
  "mysql-client.cf": "user = postfix\npassword = XXXXXXXX\ndbname = postfix\ntable = postfix_access\nselect_field = access\nwhere_field = source\nadditional_conditions = and type = 'client'\nhosts = localhost\n",
  "mysql-recipient.cf": "user = postfix\npassword = XXXXXXXX\ndbname = postfix\ntable = postfix_access\nselect_field = access\nwhere_field = source\nadditional_conditions = and type = 'recipient'\nhosts = localhost\n",
  "mysql-relocated.cf": "user = postfix\npassword = XXXXXXXX\ndbname = postfix\ntable = postfix_relocated\nselect_field = destination\nwhere_field = email\nhosts = localhost\n",
  "mysql-sender.cf": "user = postfix\npassword = XXXXXXXX\ndbname = postfix\ntable = postfix_access\nselect_field = access\nwhere_field = source\nadditional_conditions = and type = 'sender'\nhosts = localhost\n",
  "mysql-transport.cf": "user = postfix\npassword = XXXXXXXX\ndbname = postfix\ntable = postfix_transport\nselect_field = destination\nwhere_field = domain\nhosts = localhost\n",
  "mysql-virtual.cf": "user = postfix\npassword = XXXXXXXX\ndbname = postfix\ntable = postfix_virtual\nselect_field = destination\nwhere_field = email\nhosts = localhost\n",
  "mysql-virtual-gid.cf": "user = postfix\npassword = XXXXXXX\ndbname = postfix\ntable = postfix_users\nselect_field = gid\nwhere_field = email\nadditional_conditions = and postfix = 'y'\nhosts = localhost\n",
  "mysql-virtual-uid.cf": "user = postfix\npassword = XXXXXXXX\ndbname = postfix\ntable = postfix_users\nselect_field = uid\nwhere_field = email\nadditional_conditions = and postfix = 'y'\nhosts = localhost\n",
  "mysql-virtual-maps.cf": "user = postfix\npassword = XXXXXXXX\ndbname = postfix\ntable = postfix_users\nselect_field = maildir\nwhere_field = email\nadditional_conditions = and postfix = 'y'\nhosts = localhost\n",
};

const users = new TestUsers("pmy");
let sys: MailSystem | undefined;
let db: MariaDb | undefined;
afterAll(async () => {
  await sys?.cleanup();
  await db?.remove();
  users.removeAll();
});

describe.skipIf(!isRoot || MARIADB_MISSING !== undefined)(`hosted domain in MariaDB (mysql: tables)${MARIADB_MISSING ? ` (skipped: ${MARIADB_MISSING})` : ""}`, () => {
  let vmail: PasswdEntry;
  let base: string;
  let port: number;
  let seedDir: string;
  const maildir = (user: string) => join(base, "example.net", user);
  const inMaildir = (dir: string, subject: string) => waitFor(`"${subject}" in ${dir}`, () => maildirMessages(dir).find((m) => m.includes(`Subject: ${subject}\n`)));
  const env = () => ({ MYSQL_UNIX_PORT: db!.socket });

  function swaks(to: string, subject: string): { code: number; out: string } {
    const r = Bun.spawnSync(["swaks", "--silent", "1", "--server", `127.0.0.1:${port}`, "--helo", "client.example.org", "--from", "remote@example.org", "--to", to, "--header", `Subject: ${subject}`, "--body", "over SMTP\n"], { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
    return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() };
  }

  beforeAll(async () => {
    ensureMailOwner();
    db = await startMariaDb();
    sys = new MailSystem();
    vmail = users.add("v", join(sys.dir, "home"));
    await db.sql(`CREATE DATABASE postfix; USE postfix;
      CREATE TABLE postfix_users (email VARCHAR(255) PRIMARY KEY, clear VARCHAR(64), uid INT, gid INT, homedir VARCHAR(255), maildir VARCHAR(255), quota VARCHAR(32), postfix CHAR(1) DEFAULT 'y');
      CREATE TABLE postfix_virtual (email VARCHAR(255), destination VARCHAR(255));
      CREATE TABLE postfix_alias (alias VARCHAR(255), destination VARCHAR(255));
      CREATE TABLE postfix_access (source VARCHAR(255), access VARCHAR(255), type VARCHAR(16));
      CREATE TABLE postfix_relocated (email VARCHAR(255), destination VARCHAR(255));
      CREATE TABLE postfix_transport (domain VARCHAR(255), destination VARCHAR(255));
      INSERT INTO postfix_users (email, uid, gid, maildir, postfix) VALUES
        ('alice@example.net', ${vmail.uid}, ${vmail.gid}, 'example.net/alice/', 'y'),
        ('bob@example.net', ${vmail.uid}, ${vmail.gid}, 'example.net/bob/', 'y'),
        ('gone@example.net', ${vmail.uid}, ${vmail.gid}, 'example.net/gone/', 'n');
      INSERT INTO postfix_virtual VALUES ('info@example.net', 'alice@example.net'), ('team@example.net', 'alice@example.net'), ('team@example.net', 'bob@example.net');
      INSERT INTO postfix_alias VALUES ('postmaster', 'root'), ('sales', '${vmail.name}');
      INSERT INTO postfix_access VALUES ('blocked@example.net', 'REJECT no mail for this one', 'recipient'), ('192.0.2.1', 'OK', 'client'), ('spam@example.org', 'REJECT', 'sender');
      INSERT INTO postfix_relocated VALUES ('old@example.net', 'alice@example.org');
      INSERT INTO postfix_transport VALUES ('example.com', 'smtp:[mx.example.com]');
      CREATE USER 'postfix'@'localhost' IDENTIFIED BY 'XXXXXXXX';
      GRANT SELECT ON postfix.* TO 'postfix'@'localhost';`);
    // the seed's files, verbatim and root-only
    seedDir = join(sys.dir, "seed");
    mkdirSync(seedDir, { mode: 0o755 });
    for (const [name, text] of Object.entries(SEED)) writeFileSync(join(seedDir, name), text, { mode: 0o600 });
    // the system's copies: the same plus a short retry_interval (see the header)
    const cf = (name: string) => sys!.etcFile(name, `${SEED[name]}retry_interval = 1\ncache_time = 0\n`);
    for (const name of Object.keys(SEED)) chmodSync(cf(name), 0o600);
    base = join(sys.dir, "vmail");
    mkdirSync(join(base, "example.net"), { recursive: true, mode: 0o755 });
    chownSync(join(base, "example.net"), vmail.uid, vmail.gid);
    port = freePort();
    sys.writeConfig(
      {
        import_environment: `MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C MYSQL_UNIX_PORT=${db.socket}`,
        virtual_mailbox_domains: "example.net",
        virtual_mailbox_base: base,
        virtual_mailbox_maps: `mysql:${join(sys.etc, "mysql-virtual-maps.cf")}`,
        virtual_alias_maps: `mysql:${join(sys.etc, "mysql-virtual.cf")}`,
        virtual_uid_maps: `mysql:${join(sys.etc, "mysql-virtual-uid.cf")}`,
        virtual_gid_maps: `static:${vmail.gid}`,
        transport_maps: `mysql:${join(sys.etc, "mysql-transport.cf")}`,
        alias_maps: `mysql:${join(sys.etc, "mysql-aliases.cf")}`,
        smtpd_recipient_restrictions: `check_recipient_access mysql:${join(sys.etc, "mysql-recipient.cf")}`,
      },
      `[services.smtp]\nlisten = "127.0.0.1:${port}"\n`,
    );
    await sys.start();
    try {
      await waitFor("the smtpd listener", () => swaks("alice@example.net", "warm-up").code === 0, 15_000);
    } catch (err) {
      console.log(sys.log().slice(-4000), swaks("alice@example.net", "warm-up").out);
      throw err;
    }
  }, 90_000);

  test("the seed's files answer postmap -q and postmap -q - unchanged; its gid file's wrong password is reported", async () => {
    const q = (name: string, key: string) => run("postmap", ["-q", key, `mysql:${join(seedDir, name)}`], { env: env() });
    const expected: [string, string, string][] = [
      ["mysql-aliases.cf", "postmaster", "root"],
      ["mysql-client.cf", "192.0.2.1", "OK"],
      ["mysql-recipient.cf", "blocked@example.net", "REJECT no mail for this one"],
      ["mysql-relocated.cf", "old@example.net", "alice@example.org"],
      ["mysql-sender.cf", "spam@example.org", "REJECT"],
      ["mysql-transport.cf", "example.com", "smtp:[mx.example.com]"],
      ["mysql-virtual.cf", "team@example.net", "alice@example.net,bob@example.net"],
      ["mysql-virtual-uid.cf", "alice@example.net", String(vmail.uid)],
      ["mysql-virtual-maps.cf", "alice@example.net", "example.net/alice/"],
    ];
    for (const [name, key, value] of expected) expect([name, await q(name, key)]).toEqual([name, { code: 0, stdout: `${value}\n`, stderr: "" }]);
    // not found, and postfix = 'n' hides a user
    expect((await q("mysql-virtual-maps.cf", "gone@example.net")).code).toBe(1);
    const many = await run("postmap", ["-q", "-", `mysql:${join(seedDir, "mysql-virtual-maps.cf")}`], { env: env(), stdin: "alice@example.net\nnobody@example.net\nbob@example.net\n" });
    expect(many).toMatchObject({ code: 0, stdout: "alice@example.net\texample.net/alice/\nbob@example.net\texample.net/bob/\n" });
    const gid = await q("mysql-virtual-gid.cf", "alice@example.net");
    expect(gid.code).toBe(1);
    expect(gid.stderr).toContain("Access denied for user 'postfix'@'localhost'");
  });

  test("postfix check: the wrong password and a password file others can read are warned about", async () => {
    const gidCf = sys!.etcFile("gid-check.cf", SEED["mysql-virtual-gid.cf"]!);
    chmodSync(gidCf, 0o644);
    sys!.writeConfig({ relocated_maps: `mysql:${gidCf}` }, `[services.smtp]\nlisten = "127.0.0.1:${port}"\n`);
    try {
      const r = await sys!.postern(["check"], { env: env() });
      expect(r.stderr).toContain(`relocated_maps: mysql:${gidCf}: connect to mysql server localhost: Access denied for user 'postfix'@'localhost'`);
      expect(r.stderr).toContain(`mysql table ${gidCf} holds a password and other users can read it`);
      expect(r.stderr).not.toContain("mysql-virtual-maps.cf");
    } finally {
      sys!.writeConfig({ relocated_maps: undefined }, `[services.smtp]\nlisten = "127.0.0.1:${port}"\n`);
    }
  });

  test("SMTP: users and aliases in MariaDB are delivered; unknown users and the access table's REJECT are refused", async () => {
    expect(swaks("alice@example.net", "my-direct")).toMatchObject({ code: 0 });
    expect(swaks("info@example.net", "my-alias")).toMatchObject({ code: 0 });
    expect(await inMaildir(maildir("alice"), "my-direct")).toContain("Delivered-To: alice@example.net\n");
    expect(await inMaildir(maildir("alice"), "my-alias")).toContain("X-Original-To: info@example.net\n");
    expect(statSync(maildir("alice")).uid).toBe(vmail.uid);
    const unknown = swaks("carol@example.net", "my-unknown");
    expect(unknown.out).toContain("550 5.1.1 <carol@example.net>: Recipient address rejected: User unknown in virtual mailbox table");
    const gone = swaks("gone@example.net", "my-gone");
    expect(gone.out).toContain("550 5.1.1 <gone@example.net>");
    const blocked = swaks("blocked@example.net", "my-blocked");
    expect(blocked.out).toContain("<blocked@example.net>: Recipient address rejected: no mail for this one");
  });

  test("local(8): alias_maps in MariaDB, looked up by the local service, delivers to the alias's user", async () => {
    await sys!.send([`sales@${HOST}`], message("my-local-alias"), { sender: `someone@${HOST}` });
    const mbox = join(sys!.spool, vmail.name);
    const m = await waitFor(`my-local-alias in ${mbox}`, () => mboxMessages(mbox).find((x) => x.includes("Subject: my-local-alias\n")));
    expect(m).toContain(`X-Original-To: sales@${HOST}\n`);
    await sys!.waitForLog(/orig_to=<sales@mail\.example\.test>, relay=local, .*status=sent/);
  });

  test("the server stopped mid-run: 451 at RCPT, queued mail deferred with the reason and delivered after postqueue -f once it is back", async () => {
    // a message already in the queue: bob's Maildir cannot be made yet (the domain directory is root's)
    chownSync(join(base, "example.net"), 0, 0);
    await sys!.send(["bob@example.net"], message("my-fault"), { sender: `someone@${HOST}` });
    const id = await sys!.queueIdOf("my-fault");
    await sys!.waitForLog(new RegExp(`${id}: to=<bob@example\\.net>, relay=virtual, .*status=deferred`));
    await db!.stop();
    chownSync(join(base, "example.net"), vmail.uid, vmail.gid);
    const from = sys!.log().length;

    const r = swaks("alice@example.net", "my-while-down");
    expect(r.out).toContain("451 4.3.0 <alice@example.net>: Recipient address rejected: Temporary lookup failure");

    expect((await run("postqueue", ["-c", sys!.etc, "-f"])).code).toBe(0);
    // the queue manager's words (Postfix's), after a log line with the server's
    await sys!.waitForLog(new RegExp(`${id}: cannot resolve recipients: mysql:\\S+: connect to mysql server localhost: Failed to connect`), 30_000, from);
    await sys!.waitForLog(new RegExp(`${id}: to=<bob@example\\.net>, .*dsn=4\\.3\\.5, status=deferred \\(address resolution failed\\)`), 30_000, from);
    // still queued: in deferred/, or in active/ again when the 1 s test backoff has passed meanwhile
    expect([...sys!.queueIds("deferred"), ...sys!.queueIds("active")]).toContain(id);

    await db!.start();
    await waitFor("bob's message after postqueue -f", async () => {
      expect((await run("postqueue", ["-c", sys!.etc, "-f"])).code).toBe(0);
      return (await waitFor("delivery", () => maildirMessages(maildir("bob")).find((m) => m.includes("Subject: my-fault\n")), 3_000).catch(() => undefined)) ?? false;
    }, 30_000);
    await sys!.waitForLog(new RegExp(`${id}: to=<bob@example\\.net>, relay=virtual, .*status=sent`));
  }, 90_000);
});
