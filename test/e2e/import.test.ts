/**
 * `postern import` on real configurations: Debian's stock main.cf and
 * master.cf (as Debian's postinst writes them) and the configurations the
 * set-up documents in shared/seeds/ write (test/fixtures/import/*: BLFS's
 * install, Postfix's INSTALL sections 7, 8 and 10, Linux in a Nutshell, and
 * a MySQL virtual-domain set-up). Each test shows what the import gives:
 * what is carried, what is only noted, and what is refused and why; a
 * written postern.toml then passes `postfix check`.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { removeDir, ROOT, run, tempDir } from "../helpers/run.ts";
import { ensureMailOwner } from "../helpers/mail-system.ts";
import { getpwnam } from "../../src/util/passwd.ts";

ensureMailOwner();
const FIXTURES = join(ROOT, "test/fixtures/import");
const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

function scratch(): string {
  const d = tempDir("postern-import-");
  dirs.push(d);
  return d;
}

async function importDir(postfixDir: string, ...flags: string[]) {
  const conf = scratch();
  const r = await run("postern", ["import", "-c", conf, ...flags, postfixDir]);
  const path = join(conf, "postern.toml");
  const errors = r.stderr.split("\n").filter((l) => / (error|warning): /.test(l));
  return { ...r, conf, path, errors, toml: existsSync(path) ? readFileSync(path, "utf8") : undefined };
}

/** `postfix check` on an imported file, with the queue in a scratch directory. */
async function checkImported(conf: string) {
  const path = join(conf, "postern.toml");
  writeFileSync(path, `queue_directory = "${join(scratch(), "spool")}"\n${readFileSync(path, "utf8")}`);
  return await run("postfix", ["-c", conf, "check"]);
}

describe("Debian's stock configuration", () => {
  test("as Debian writes it: everything carries but myorigin = /etc/mailname when that file is missing", async () => {
    const r = await importDir(join(FIXTURES, "debian"));
    expect(r.code).toBe(78);
    expect(r.toml).toBeUndefined();
    expect(r.errors).toEqual([
      `postern import: error: ${FIXTURES}/debian/main.cf, line 41: myorigin = "/etc/mailname": postern does not read this value from a file; write the domain itself (the content of /etc/mailname)`,
    ]);
  });

  test("with /etc/mailname present: carried whole, the file's domain in myorigin; check passes", async () => {
    const pf = scratch();
    cpSync(join(FIXTURES, "debian"), pf, { recursive: true });
    writeFileSync(join(pf, "mailname"), "mail.example.test\n");
    writeFileSync(join(pf, "main.cf"), readFileSync(join(pf, "main.cf"), "utf8").replace(/^myorigin = .*$/m, `myorigin = ${pf}/mailname`));
    const r = await importDir(pf);
    expect(r.errors).toEqual([]);
    expect(r.code).toBe(0);
    const doc = parseToml(r.toml!) as Record<string, unknown>;
    expect(doc.myorigin).toBe("mail.example.test");
    expect(doc.smtpd_banner).toBe("$myhostname ESMTP $mail_name (Debian/GNU)");
    expect(doc.biff).toBe("no");
    expect(doc.smtpd_relay_restrictions).toBe("permit_mynetworks permit_sasl_authenticated defer_unauth_destination");
    const services = doc.services as Record<string, Record<string, string>>;
    expect(services.smtp).toEqual({ listen: "25", role: "smtpd" });
    // the pipe(8) services become role = "pipe" tables; maxproc becomes NAME_process_limit
    expect(Object.keys(services).sort()).toEqual(["bsmtp", "ifmail", "maildrop", "mailman", "scalemail-backend", "smtp", "uucp"]);
    // a pipe service whose user this machine lacks is written with enable = no, with a note (check refuses an enabled one)
    const off = (user: string): Record<string, string> => (getpwnam(user) ? {} : { enable: "no" });
    expect(services.maildrop).toEqual({ role: "pipe", ...off("vmail"), flags: "DRXhu", user: "vmail", argv: "/usr/bin/maildrop -d ${recipient}" });
    expect(services.uucp).toEqual({ role: "pipe", ...off("uucp"), flags: "Fqhu", user: "uucp", argv: "uux -r -n -z -a$sender - $nexthop!rmail ($recipient)" });
    if (!getpwnam("vmail")) expect(r.stderr).toMatch(/maildrop\/unix: unknown username: vmail: written with enable = no/);
    expect(doc["scalemail-backend_process_limit"]).toBe("2");
    // comments carried where they stand
    expect(r.toml).toContain("# See /usr/share/postfix/main.cf.dist for a commented, more complete version");
    expect(r.toml!.indexOf("# TLS parameters")).toBeLessThan(r.toml!.indexOf("smtpd_tls_cert_file"));
    // notes, not refusals: installation paths, the TLS session cache, the built-in plumbing
    expect(r.stderr).toContain("readme_directory: carried as a note");
    expect(r.stderr).toContain("smtp_tls_session_cache_database: carried as a note");
    expect(r.stderr).toMatch(/built in: Postfix's internal services, done by postern itself: pickup \(line 53/);
    expect(r.stderr).toContain("relay/unix -o syslog_name: the log tag of a built-in service is postern's own");
    // the one command that builds postern's index of each table
    expect(r.stderr).toContain(`build the table indexes with: postern postalias -c ${r.conf} hash:/etc/aliases`);
    const check = await checkImported(r.conf);
    expect(check.stderr).not.toContain("error:");
    expect(check.code).toBe(0);
  });
});

describe("the seed documents' configurations", () => {
  test("BLFS (postfix-install with its directories, Postfix 2.0's master.cf with fifo services): carried, paths noted", async () => {
    const r = await importDir(join(FIXTURES, "blfs"));
    expect(r.errors).toEqual([]);
    expect(r.code).toBe(0);
    for (const n of ["daemon_directory", "manpage_directory", "sample_directory", "sendmail_path", "setgid_group", "html_directory"]) expect(r.stderr).toContain(`${n}: carried as a note`);
    expect(r.stderr).toMatch(/qmgr \(line 11: postern's qmgr role\)/);
    const doc = parseToml(r.toml!) as Record<string, unknown>;
    expect(doc.myhostname).toBe("mail.example.test");
    expect(doc.daemon_directory).toBe("/usr/sbin");
    expect((await checkImported(r.conf)).code).toBe(0);
  });

  test("INSTALL section 8 and 10 (a virtual interface, relay control): inet_interfaces = $myhostname refused (a host name), the rest carried", async () => {
    const refused = await importDir(join(FIXTURES, "install-virtual-host"));
    expect(refused.code).toBe(78);
    expect(refused.errors).toEqual([
      `postern import: error: ${join(FIXTURES, "install-virtual-host")}/main.cf, line 4: inet_interfaces = "$myhostname": host names are not supported here ("virtual.host.tld"); write the addresses they stand for, or all / loopback-only`,
    ]);
    expect(refused.toml).toBeUndefined();
    const r = await importDir(join(FIXTURES, "install-virtual-host"), "--force");
    const doc = parseToml(r.toml!) as Record<string, unknown>;
    expect(doc.inet_interfaces).toBeUndefined();
    expect(doc).toMatchObject({ myhostname: "virtual.host.tld", mydestination: "$myhostname", mynetworks: "168.100.189.0/28, 127.0.0.0/8", relay_domains: "$mydomain", relayhost: "[mail.$mydomain]", disable_dns_lookups: "yes" });
    const conf = await run("postconf", ["-c", r.conf, "-n"]);
    expect(conf.stdout).toContain("relayhost = [mail.$mydomain]\n");
  });

  test("INSTALL section 7 (send mail only, smtp inet commented out): postern's smtp service is turned off", async () => {
    const r = await importDir(join(FIXTURES, "install-send-only"));
    expect(r.errors).toEqual([]);
    const doc = parseToml(r.toml!) as { services: Record<string, unknown> };
    expect((doc.services as Record<string, unknown>).smtp).toEqual({ enable: "no" });
    const m = await run("postconf", ["-c", r.conf, "-M"]);
    expect(m.stdout).toContain("services.smtp.enable = no");
  });

  test("Linux in a Nutshell: a list continued on the next line becomes an array", async () => {
    const r = await importDir(join(FIXTURES, "nutshell"));
    expect(r.errors).toEqual([]);
    expect(r.toml).toContain('# Here are all the systems I accept mail from.\nmynetworks = [\n  "192.168.0.0/24",\n  "192.0.2.5",\n]');
    expect((await checkImported(r.conf)).code).toBe(0);
  });

  test("pipe(8) services: carried as role = \"pipe\" tables that transport_maps may name; an argument or -o postern's pipe lacks is refused", async () => {
    const pf = scratch();
    writeFileSync(join(pf, "main.cf"), "myhostname = mail.example.test\ntransport_maps = inline:{lists.example.test = mylist:}\nmylist_destination_recipient_limit = 1\n");
    writeFileSync(join(pf, "master.cf"), "smtp inet n - n - - smtpd\nmylist unix - n n - 3 pipe\n  flags=FRX user=nobody size=1000 argv=/usr/bin/list -f ${sender} -- ${recipient}\n");
    const r = await importDir(pf);
    expect(r.errors).toEqual([]);
    const doc = parseToml(r.toml!) as Record<string, unknown>;
    expect((doc.services as Record<string, unknown>).mylist).toEqual({ role: "pipe", flags: "FRX", user: "nobody", size: "1000", argv: "/usr/bin/list -f ${sender} -- ${recipient}" });
    expect(doc.mylist_process_limit).toBe("3");
    expect((await checkImported(r.conf)).code).toBe(0);

    const bad = scratch();
    writeFileSync(join(bad, "main.cf"), "myhostname = mail.example.test\n");
    writeFileSync(join(bad, "master.cf"), "jail unix - n n - - pipe\n  flags=F chroot=/srv user=nobody argv=/bin/x\nopts unix - n n - - pipe\n  -o recipient_delimiter=+\n  user=nobody argv=/bin/x\n");
    const b = await importDir(bad);
    expect(b.code).toBe(78);
    expect(b.errors).toEqual([
      `postern import: error: ${bad}/master.cf, line 1: pipe argument "chroot=/srv" is not one postern's pipe services have (argv, user, flags, size, null_sender, directory, eol)`,
      `postern import: error: ${bad}/master.cf, line 4: -o recipient_delimiter=+ on a pipe service: postern's pipe services take no parameter overrides; set it in main.cf if it should apply everywhere`,
    ]);
  });

  test("MySQL virtual domains: every setting is carried (the mysql: tables and the table in mydestination too), and check passes", async () => {
    const r = await importDir(join(FIXTURES, "mysql-virtual"));
    expect(r.errors).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("queue_directory: not carried: Postfix's queue");
    const doc = parseToml(r.toml!) as Record<string, unknown>;
    expect(doc.mydestination).toBe("$myhostname, $transport_maps");
    expect(doc.alias_maps).toBe("mysql:/etc/postfix/mysql-aliases.cf");
    expect(doc.virtual_mailbox_maps).toBe("mysql:/etc/postfix/mysql-virtual-maps.cf");
    expect(doc.virtual_uid_maps).toBe("mysql:/etc/postfix/mysql-virtual-uid.cf");
    expect(doc.smtpd_recipient_restrictions).toEqual(["permit_sasl_authenticated", "reject_unauth_destination"]);
    const check = await checkImported(r.conf);
    expect(check.stderr).not.toContain("error:");
  });
});

describe("import options", () => {
  test("--dry-run prints the file and the report, writes nothing", async () => {
    const r = await importDir(join(FIXTURES, "nutshell"), "--dry-run");
    expect(r.code).toBe(0);
    expect(r.toml).toBeUndefined();
    expect(r.stdout).toContain('myorigin = "$mydomain"');
    expect(r.stderr).toContain("dry run: 6 parameters and 7 service(s) would go to");
  });

  test("--rebuild builds postern's index of each table next to its source", async () => {
    const pf = scratch();
    writeFileSync(join(pf, "main.cf"), `alias_maps = hash:${pf}/aliases\nalias_database = hash:${pf}/aliases\ntransport_maps = hash:$config_directory/transport\n`);
    writeFileSync(join(pf, "aliases"), "postmaster: root\n");
    writeFileSync(join(pf, "transport"), "example.com smtp:[192.0.2.1]\n");
    const r = await importDir(pf, "--rebuild");
    expect(r.errors).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`transport_maps: $config_directory replaced with ${pf}`);
    expect(existsSync(join(pf, "aliases.sqlite"))).toBe(true);
    expect(existsSync(join(pf, "transport.sqlite"))).toBe(true);
    const q = await run("postmap", ["-c", r.conf, "-q", "example.com", `hash:${pf}/transport`]);
    expect(q.stdout).toBe("smtp:[192.0.2.1]\n");
  });

  test("an existing postern.toml is kept as postern.toml.bak; a missing main.cf is EX_NOINPUT", async () => {
    const r1 = await importDir(join(FIXTURES, "nutshell"));
    writeFileSync(r1.path, "# mine\n");
    const again = await run("postern", ["import", "-c", r1.conf, join(FIXTURES, "nutshell")]);
    expect(again.code).toBe(0);
    expect(readFileSync(`${r1.path}.bak`, "utf8")).toBe("# mine\n");
    const missing = await run("postern", ["import", "-c", r1.conf, scratch()]);
    expect(missing.code).toBe(66);
  });
});
