/**
 * A configuration does what it says, or is refused (issue 11, part 2): the
 * settings a new user tried, which passed `postfix check` and then did
 * nothing (or something weaker), are each refused by check, start-fg and
 * the master with one line naming the file, the line, the parameter and the
 * fix; values that ask for nothing postern lacks still pass.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { configDir, removeDir, run, tempDir } from "../helpers/run.ts";
import { ensureMailOwner, isRoot } from "../helpers/mail-system.ts";

ensureMailOwner();

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

function conf(body: string): string {
  const queue = tempDir("postern-queue-");
  dirs.push(queue);
  // the owner line goes last: the expected line numbers count from the queue_directory line
  const dir = configDir(`queue_directory = "${join(queue, "spool")}"\n${body}${isRoot ? "" : `\nmail_owner = "${process.env.USER}"\n`}`);
  dirs.push(dir);
  return dir;
}

const ISSUE_EXAMPLES = `smtp_always_send_ehlo = "no"
smtp_reply_filter = "pcre:/etc/postern/reply_filter"
error_notice_recipient = "admin@example.com"
smtp_tls_security_level = "dane-only"
message_reject_characters = "%"
mydestination = "$myhostname, memcache:/etc/postern/x.cf"
`;

describe("settings postern does not act on are refused", () => {
  test("postfix check: exit 78, one line per setting with file, line, parameter and fix", async () => {
    const dir = conf(ISSUE_EXAMPLES);
    const r = await run("postfix", ["-c", dir, "check"]);
    expect(r.code).toBe(78);
    const file = join(dir, "postern.toml");
    const errors = r.stderr.split("\n").filter((l) => l.includes(": error: "));
    expect(errors.length).toBe(6);
    expect(r.stderr).toContain(`${file}, line 2: smtp_always_send_ehlo = "no": postern does not implement smtp_always_send_ehlo`);
    expect(r.stderr).toContain(`${file}, line 3: smtp_reply_filter = "pcre:/etc/postern/reply_filter": postern does not implement Postfix's smtp_reply_filter`);
    expect(r.stderr).toContain(`${file}, line 4: error_notice_recipient = "admin@example.com": postern does not implement error_notice_recipient`);
    expect(r.stderr).toContain(`${file}, line 5: smtp_tls_security_level = "dane-only": TLS level "dane-only" needs DNSSEC-validated DNS answers: set smtp_dns_support_level = dnssec`);
    expect(r.stderr).toContain(`${file}, line 6: message_reject_characters = "%": postern does not implement message_reject_characters`);
    // tables in mydestination are looked up (issue 12), but only of types postern has (mysql: is one now, issue 13)
    expect(r.stderr).toContain(`${file}, line 7: mydestination = "$myhostname, memcache:/etc/postern/x.cf": table type "memcache:" is not implemented by postern`);
    for (const l of errors) expect(l).toMatch(/remove|use |list the domains|set /);
  });

  test("start-fg and the master refuse to start with the same list", async () => {
    const dir = conf(ISSUE_EXAMPLES);
    const fg = await run("postern", ["start-fg", "-c", dir]);
    expect(fg.code).toBe(78);
    expect(fg.stderr).toContain('error_notice_recipient = "admin@example.com"');
    const master = await run("postern", ["master", "-c", dir, "-f"]);
    expect(master.code).toBe(78);
    expect(master.stdout + master.stderr).toContain('smtp_tls_security_level = "dane-only"');
  });

  test("Postfix parameters postern lacks: refused when they ask for something, fine when they ask for nothing", async () => {
    const bad = await run("postfix", ["-c", conf('smtpd_command_filter = "pcre:/etc/postfix/command_filter"\ncontent_filter = "amavis:[127.0.0.1]:10024"\nvirtual_alias_maps = "memcache:/etc/postfix/v.cf"\n[services.sub]\nlisten = "2525"\nsmtpd_tls_security_level = "dane"\n'), "check"]);
    expect(bad.code).toBe(78);
    expect(bad.stderr).toContain("smtpd_command_filter = \"pcre:/etc/postfix/command_filter\": postern does not implement Postfix's smtpd_command_filter");
    expect(bad.stderr).toContain('content_filter = "amavis:[127.0.0.1]:10024": transport "amavis" is not one postern has');
    expect(bad.stderr).toContain('virtual_alias_maps = "memcache:/etc/postfix/v.cf": table type "memcache:" is not implemented by postern');
    expect(bad.stderr).toContain('services.sub.smtpd_tls_security_level = "dane": unknown server TLS security level');
    const fine = await run("postfix", ["-c", conf('biff = "no"\ncontent_filter = ""\nalways_bcc = ""\nappend_dot_mydomain = "no"\nsmtp_tls_security_level = "may"\nreadme_directory = "no"\nhtml_directory = "/usr/share/doc/postfix/html"\n'), "check"]);
    expect(fine.stderr).not.toContain("error:");
    expect(fine.code).toBe(0);
  });

  test("check warns about table files it cannot find or that others can write, and TLS files that are missing", async () => {
    const files = tempDir("postern-tables-");
    dirs.push(files);
    writeFileSync(join(files, "transport"), "example.com smtp:[192.0.2.1]\n");
    writeFileSync(join(files, "re"), "/^x/ REJECT\n");
    chmodSync(join(files, "re"), 0o666);
    const dir = conf(`transport_maps = "hash:${files}/transport"\nheader_size_limit = "102400"\nsmtpd_recipient_restrictions = "check_recipient_access regexp:${files}/re"\nsmtpd_tls_security_level = "may"\nsmtpd_tls_cert_file = "${files}/missing.pem"\n`);
    const r = await run("postfix", ["-c", dir, "check"]);
    expect(r.stderr).toContain(`transport_maps: index of hash:${files}/transport (build it with postmap or postalias) ${files}/transport.sqlite: No such file or directory`);
    expect(r.stderr).toContain(`smtpd_recipient_restrictions: group or other writable: ${files}/re`);
    expect(r.stderr).toContain(`smtpd_tls_cert_file: file ${files}/missing.pem: No such file or directory`);
    expect(r.stderr).not.toContain("error:");
  });
});


describe("a pipe service whose user= is nobody on this machine", () => {
  const PIPE = '[services.mylist]\nrole = "pipe"\nuser = "no-such-pipe-user"\nargv = "/usr/bin/list ${recipient}"\n';

  test("postfix check and start: exit 78 naming the service and the user, before any mail defers", async () => {
    const dir = conf(PIPE);
    const file = join(dir, "postern.toml");
    const check = await run("postfix", ["-c", dir, "check"]);
    expect(check.code).toBe(78);
    expect(check.stderr).toContain(`${file}, line 2: services.mylist.user = "no-such-pipe-user": unknown username: no-such-pipe-user; name an existing user other than root`);
    const start = await run("postfix", ["-c", dir, "start"]);
    expect(start.code).toBe(78);
    expect(start.stderr).toContain("unknown username: no-such-pipe-user");
  });
});
