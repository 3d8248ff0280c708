/**
 * mydestination entries that are tables and files, through the whole
 * running system as root: a hash: table built by postmap and a /file/name
 * list make their domains local for smtpd's RCPT checks and for the queue
 * manager alike (mail over SMTP and from sendmail lands in the user's
 * mailbox); while the table cannot be read by mail_owner, RCPT gets
 * 451 4.3.0 and a message from sendmail is deferred, never bounced or sent
 * away, and is delivered once the table can be read. relay_domains as a
 * table relays its domain and subdomains, and ETRN takes them (through
 * fast_flush_domains = $relay_domains). A domain in both
 * mydestination and virtual_mailbox_domains gets Postfix's warning in the
 * log when mail comes for it, and from `postfix check`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { freePort, RawSmtp } from "../../helpers/smtpd-system.ts";
import { run } from "../../helpers/run.ts";
import { ensureMailOwner, HOST, isRoot, MailSystem, mboxMessages, message, TestUsers, waitFor } from "../../helpers/mail-system.ts";

const users = new TestUsers("pmd");
let sys: MailSystem | undefined;
afterAll(async () => {
  await sys?.cleanup();
  users.removeAll();
});

describe.skipIf(!isRoot)("mydestination = $myhostname, hash:TABLE, /file/name", () => {
  let user: PasswdEntry;
  let port: number;
  let table: string;

  /** One SMTP session from 127.0.0.1 (outside mynetworks) that stops after RCPT, or sends a message. */
  function swaks(to: string, subject?: string): { code: number; out: string } {
    const quit = subject === undefined ? ["--quit-after", "RCPT"] : ["--header", `Subject: ${subject}`, "--body", "over SMTP\n"];
    const r = Bun.spawnSync(["swaks", "--silent", "1", "--server", `127.0.0.1:${port}`, "--helo", "client.example.org", "--from", "remote@example.org", "--to", to, ...quit], { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
    return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() };
  }
  const inMbox = (subject: string) => waitFor(`"${subject}" in ${user.name}'s mailbox`, () => mboxMessages(join(sys!.spool, user.name)).find((m) => m.includes(`Subject: ${subject}\n`)));

  beforeAll(async () => {
    ensureMailOwner();
    sys = new MailSystem();
    user = users.add("u", join(sys.dir, "home"));
    table = sys.etcFile("mydest", "hosted.example OK\n");
    const pm = await run("postmap", ["-c", sys.etc, table]);
    if (pm.code !== 0) throw new Error(`postmap: ${pm.stderr}`);
    const list = sys.etcFile("mydest.list", "# more of our domains\nfilehosted.example\nboth.example\n");
    const relay = sys.etcFile("relay", "relayed.example OK\n");
    await run("postmap", ["-c", sys.etc, relay]);
    port = freePort();
    sys.writeConfig(
      {
        mydestination: `$myhostname, localhost, hash:${table}, ${list}`,
        // 127.0.0.1 is an untrusted client: only our own domains are accepted from it
        mynetworks: "192.0.2.0/24",
        virtual_mailbox_domains: "both.example",
        virtual_mailbox_maps: "",
        // relay_domains through a table; fast_flush_domains (ETRN) defaults to it
        relay_domains: `hash:${relay}`,
      },
      `[services.smtp]\nlisten = "127.0.0.1:${port}"\n`,
    );
    // mail_owner cannot read the index until the test says so
    chmodSync(`${table}.sqlite`, 0o600);
    await sys.start();
    await waitFor("the smtpd listener", () => swaks(`${user.name}@${HOST}`).code === 0);
  }, 60_000);

  test("a table mail_owner cannot read: 451 4.3.0 at RCPT, and a message from sendmail is deferred, not bounced", async () => {
    const r = swaks(`${user.name}@hosted.example`);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain(`451 4.3.0 <${user.name}@hosted.example>: Recipient address rejected: Temporary lookup failure`);
    await sys!.send([`${user.name}@hosted.example`], message("mdeferred"), { sender: `${user.name}@${HOST}` });
    await sys!.waitForLog(new RegExp(`to=<${user.name}@hosted\\.example>, relay=none, .*status=deferred`));
    expect(sys!.log()).not.toMatch(new RegExp(`to=<${user.name}@hosted\\.example>.*status=(bounced|sent)`));
    // in deferred/ between its retries (the test backoff is 1 s, so it may be in active/ again for a moment)
    await waitFor("the message in deferred/", () => sys!.queueIds("deferred").length === 1);
  });

  test("once the table can be read, the deferred message is delivered and RCPT is accepted", async () => {
    chmodSync(`${table}.sqlite`, 0o644);
    const flushed = await run("postqueue", ["-c", sys!.etc, "-f"]);
    expect(flushed.code).toBe(0);
    expect(await inMbox("mdeferred")).toContain(`Delivered-To: ${user.name}@hosted.example\n`);
    expect(swaks(`${user.name}@hosted.example`)).toMatchObject({ code: 0 });
  });

  test("SMTP: mail for a domain in the table and for one in the file is delivered locally", async () => {
    expect(swaks(`${user.name}@hosted.example`, "mtable")).toMatchObject({ code: 0 });
    expect(swaks(`${user.name}@FileHosted.Example`, "mfile")).toMatchObject({ code: 0 });
    expect(await inMbox("mtable")).toContain(`Delivered-To: ${user.name}@hosted.example\n`);
    expect(await inMbox("mfile")).toContain(`Delivered-To: ${user.name}@filehosted.example\n`);
    await sys!.waitForLog(new RegExp(`to=<${user.name}@hosted\\.example>, relay=local, .*status=sent`));
  });

  test("an unknown user of a table domain gets 550 5.1.1; a domain in neither is not relayed (defer_unauth_destination)", () => {
    expect(swaks("nosuchuser@hosted.example").out).toContain("550 5.1.1 <nosuchuser@hosted.example>: Recipient address rejected: User unknown in local recipient table");
    expect(swaks(`${user.name}@elsewhere.example`).out).toContain(`454 4.7.1 <${user.name}@elsewhere.example>: Relay access denied`);
  });

  test("relay_domains as a table: its domain and subdomains are relayed (RCPT accepted) and ETRN-able (fast_flush_domains = $relay_domains)", async () => {
    expect(swaks("someone@relayed.example")).toMatchObject({ code: 0 });
    expect(swaks("someone@deep.relayed.example")).toMatchObject({ code: 0 });
    const c = await RawSmtp.connect(port);
    try {
      expect(await c.reply()).toStartWith("220 ");
      expect(await c.cmd("EHLO client.example.org")).toStartWith("250-");
      expect(await c.cmd("ETRN relayed.example")).toBe("250 Queuing started\r\n");
      expect(await c.cmd("ETRN sub.relayed.example")).toBe("250 Queuing started\r\n");
      expect(await c.cmd("ETRN elsewhere.example")).toStartWith("459 ");
    } finally {
      await c.quit();
    }
  });

  test("a domain in mydestination (from the file) and in virtual_mailbox_domains: Postfix's warning in smtpd's log and from postfix check", async () => {
    const from = sys!.log().length;
    swaks(`${user.name}@both.example`);
    await sys!.waitForLog(/postfix\/smtpd\[\d+\]: warning: do not list domain both\.example in BOTH mydestination and virtual_mailbox_domains/, 30_000, from);
    const check = await run("postfix", ["-c", sys!.etc, "check"]);
    expect(check.code).toBe(0);
    expect(check.stderr).toContain("warning: do not list domain both.example in BOTH mydestination and virtual_mailbox_domains");
    expect(check.stderr).not.toContain("hosted.example");
  });
});

describe("postfix check accepts tables and files in mydestination and relay_domains", () => {
  test("hash:, sqlite: and /file/name entries pass; a table type postern lacks is still refused", async () => {
    const sys = new MailSystem();
    try {
      const cf = sys.etcFile("domains.cf", `dbpath = ${join(sys.etc, "domains.db")}\nquery = SELECT 'OK' FROM domains WHERE domain='%s'\n`);
      const list = sys.etcFile("relay.list", "relay.example\n");
      writeFileSync(join(sys.etc, "x"), "");
      sys.writeConfig({ mydestination: `$myhostname, hash:/etc/postern/mydest, sqlite:${cf}, ${list}`, relay_domains: `${list}, texthash:${join(sys.etc, "x")}` });
      const ok = await run("postfix", ["-c", sys.etc, "check"]);
      expect(ok.stderr).not.toContain("mydestination =");
      expect(ok.stderr).not.toContain("relay_domains =");
      sys.writeConfig({ mydestination: "$myhostname, memcache:/etc/postern/mydest.cf" });
      const refused = await run("postfix", ["-c", sys.etc, "check"]);
      expect(refused.code).toBe(78);
      expect(refused.stderr).toContain('table type "memcache:" is not implemented by postern');
    } finally {
      await sys.cleanup();
    }
  });
});
