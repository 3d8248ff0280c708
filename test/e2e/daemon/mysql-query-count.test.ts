/**
 * What one message costs the database: a hosted domain whose
 * virtual_mailbox_domains, virtual_mailbox_maps and virtual_alias_maps are
 * mysql: tables in a MariaDB the test starts, MariaDB's general log
 * recording every query with the connection that sent it (each table in
 * each process has its own connection). Mail over SMTP to a mailbox and to
 * an alias: no process sends the same query twice while the tables'
 * cache_time lasts (60 s here, so the test does not depend on how fast the
 * machine is), where before smtpd asked its RCPT checks' questions again
 * for cleanup's alias expansion and its relay check's again for the
 * recipient check.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../../helpers/smtpd-system.ts";
import { ensureMailOwner, isRoot, MailSystem, maildirMessages, TestUsers, waitFor } from "../../helpers/mail-system.ts";
import { MARIADB_MISSING, startMariaDb, type MariaDb } from "../../helpers/mariadb.ts";

const users = new TestUsers("pqc");
let sys: MailSystem | undefined;
let db: MariaDb | undefined;
afterAll(async () => {
  await sys?.cleanup();
  await db?.remove();
  users.removeAll();
});

describe.skipIf(!isRoot || MARIADB_MISSING !== undefined)(`queries per message with mysql: tables${MARIADB_MISSING ? ` (skipped: ${MARIADB_MISSING})` : ""}`, () => {
  let port = 0;
  let alice = "";
  function swaks(to: string, subject: string): { code: number; out: string } {
    const r = Bun.spawnSync(["swaks", "--silent", "1", "--server", `127.0.0.1:${port}`, "--helo", "client.example.org", "--from", "remote@example.org", "--to", to, "--header", `Subject: ${subject}`, "--body", "counted\n"], { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
    return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() };
  }

  beforeAll(async () => {
    ensureMailOwner();
    db = await startMariaDb();
    sys = new MailSystem();
    const vmail = users.add("v", join(sys.dir, "home"));
    await db.sql(`CREATE DATABASE mail; USE mail;
      CREATE TABLE domains (domain VARCHAR(255) PRIMARY KEY);
      CREATE TABLE mailboxes (email VARCHAR(255) PRIMARY KEY, maildir VARCHAR(255));
      CREATE TABLE aliases (address VARCHAR(255), goto VARCHAR(255));
      INSERT INTO domains VALUES ('example.net');
      INSERT INTO mailboxes VALUES ('alice@example.net', 'example.net/alice/');
      INSERT INTO aliases VALUES ('info@example.net', 'alice@example.net');
      CREATE USER 'mail'@'localhost' IDENTIFIED BY 'pw'; GRANT SELECT ON mail.* TO 'mail'@'localhost';`);
    const table = (name: string, query: string) => {
      const path = sys!.etcFile(name, `hosts = unix:${db!.socket}\nuser = mail\npassword = pw\ndbname = mail\nquery = ${query}\ncache_time = 60\n`);
      chmodSync(path, 0o600);
      return `mysql:${path}`;
    };
    const base = join(sys.dir, "vmail");
    mkdirSync(join(base, "example.net"), { recursive: true, mode: 0o755 });
    chownSync(join(base, "example.net"), vmail.uid, vmail.gid);
    alice = join(base, "example.net", "alice");
    port = freePort();
    sys.writeConfig(
      {
        virtual_mailbox_domains: table("domains.cf", "SELECT 1 FROM domains WHERE domain = '%s'"),
        virtual_mailbox_base: base,
        virtual_mailbox_maps: table("mailboxes.cf", "SELECT maildir FROM mailboxes WHERE email = '%s'"),
        virtual_alias_maps: table("aliases.cf", "SELECT goto FROM aliases WHERE address = '%s'"),
        virtual_uid_maps: `static:${vmail.uid}`,
        virtual_gid_maps: `static:${vmail.gid}`,
      },
      `[services.smtp]\nlisten = "127.0.0.1:${port}"\n`,
    );
    await sys.start();
    await waitFor("the smtpd listener", () => swaks("alice@example.net", "warm-up").code === 0, 15_000);
    await waitFor("the warm-up message", () => maildirMessages(alice).length >= 1);
  }, 90_000);

  test("no process sends the same query twice within cache_time: smtpd's checks and cleanup's expansion share answers", async () => {
    await db!.sql("SET GLOBAL log_output = 'TABLE'; TRUNCATE mysql.general_log; SET GLOBAL general_log = 1;");
    for (const [i, to] of ["alice@example.net", "info@example.net", "alice@example.net"].entries()) {
      expect(swaks(to, `counted-${i}`)).toMatchObject({ code: 0 });
      await waitFor(`counted-${i} in ${alice}`, () => maildirMessages(alice).some((m) => m.includes(`Subject: counted-${i}\n`)));
    }
    await db!.sql("SET GLOBAL general_log = 0;");
    const queries = (await db!.sql("SELECT thread_id, argument FROM mysql.general_log WHERE command_type = 'Query' AND argument LIKE 'SELECT % FROM %' ORDER BY event_time;"))
      .split("\n")
      .filter(Boolean);
    // the aliases table was asked about info@ (a key the warm-up did not ask) by smtpd, and nothing twice
    expect(queries.some((q) => q.includes("address = 'info@example.net'"))).toBe(true);
    const repeated = queries.filter((q, i) => queries.indexOf(q) !== i);
    expect(repeated).toEqual([]);
  }, 60_000);
});
