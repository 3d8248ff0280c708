/**
 * pipe(8) through the whole running system as root: a `[services.mylist]`
 * pipe service runs a list-manager-like Python script as a user made for
 * the test, reached through transport_maps. The script appends its argv,
 * its uid and its standard input to a file only that user can write; it
 * exits 75 (EX_TEMPFAIL) for tempfail@ and 67 (EX_NOUSER) with a message
 * for nouser@. The file shows the expanded argv, the F/R/O/D lines and
 * the `.` and `>` quoting; 75 defers, 67 bounces with the output in the
 * bounce. A second service writes CR LF records (eol=, B); a third runs
 * Dovecot's dovecot-lda (when installed) for a virtual user, its Maildir
 * chosen with -o mail_location from ${domain} and ${user}.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { ensureMailOwner, HOST, isRoot, MailSystem, maildirMessages, mboxMessages, TestUsers, waitFor } from "../../helpers/mail-system.ts";

const users = new TestUsers("ppi");
let sys: MailSystem | undefined;
afterAll(async () => {
  await sys?.cleanup();
  users.removeAll();
});

const LDA = "/usr/lib/dovecot/dovecot-lda";
const HAVE_LDA = existsSync(LDA);

const SCRIPT = `import json, os, sys
out = sys.argv[1]
data = sys.stdin.buffer.read()
with open(out, "ab") as f:
    f.write(("ARGV " + json.dumps(sys.argv[2:], separators=(",", ":")) + " UID %d\\n" % os.getuid()).encode())
    f.write(data)
    f.write(b"--END--\\n")
rcpts = " ".join(sys.argv[3:])
if "tempfail@" in rcpts:
    sys.exit(75)
if "nouser@" in rcpts:
    print("no such list member here")
    sys.exit(67)
`;

describe.skipIf(!isRoot)("pipe(8) services", () => {
  let list: PasswdEntry;
  let sender: PasswdEntry;
  let out: string;
  let crlfOut: string;
  let vbase: string;
  let slowScript: string;
  const entries = () => {
    try {
      return readFileSync(out, "utf8").split("--END--\n").filter(Boolean);
    } catch {
      return [];
    }
  };

  beforeAll(async () => {
    ensureMailOwner();
    sys = new MailSystem();
    const homes = join(sys.dir, "home");
    list = users.add("l", homes);
    sender = users.add("s", homes);
    const dir = join(sys.dir, "lists");
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, list.uid, list.gid);
    out = join(dir, "archive");
    const script = join(sys.dir, "list.py");
    writeFileSync(script, SCRIPT, { mode: 0o755 });
    const transport = sys.etcFile("transport", "lists.example.net mylist:\ncrlf.example.net crlf:\ndovecot.example.net dovecot:\nslow.example.net slow:\n");
    // a command that outlives its service's time limit (slow_time_limit), not command_time_limit's 1000s
    slowScript = join(sys.dir, "slow.sh");
    writeFileSync(slowScript, "#!/bin/sh\necho started\nexec /bin/sleep 300\n", { mode: 0o755 });
    // Dovecot's LDA for virtual users without its auth service: the mailbox comes from -o mail_location
    vbase = join(sys.dir, "vmail");
    mkdirSync(vbase, { mode: 0o700 });
    chownSync(vbase, list.uid, list.gid);
    const dovecotConf = join(sys.dir, "dovecot.conf");
    writeFileSync(dovecotConf, `base_dir = ${join(sys.dir, "dovecot-run")}\nssl = no\nmail_location = maildir:${vbase}/%n\n`, { mode: 0o644 });
    const dovecot = HAVE_LDA
      ? `[services.dovecot]\nrole = "pipe"\nflags = "DRhu"\nuser = "${list.name}"\nargv = "${LDA} -c ${dovecotConf} -f \${sender} -a \${recipient} -o mail_location=maildir:${vbase}/\${domain}/\${user}"\n`
      : "";
    crlfOut = join(dir, "crlf");
    sys.writeConfig(
      { transport_maps: `texthash:${transport}`, mylist_destination_recipient_limit: 1, dovecot_destination_recipient_limit: 1, recipient_delimiter: "+", slow_time_limit: "2s" },
      `[services.mylist]\nrole = "pipe"\nflags = "FRDO.>"\nuser = "${list.name}"\nargv = "/usr/bin/python3 ${script} ${out} \${sender} \${recipient} \${user} \${extension} \${domain} \${mailbox} \${nexthop} \${original_recipient}"\n` +
        `[services.crlf]\nrole = "pipe"\nflags = "RB"\neol = '\\r\\n'\nuser = "${list.uid}:${list.gid}"\nargv = "/usr/bin/python3 ${script} ${crlfOut} \${recipient}"\n` +
        dovecot +
        `[services.slow]\nrole = "pipe"\nuser = "${list.name}"\nargv = "${slowScript}"\n`,
    );
    const check = await sys.postern(["check"]);
    expect(check.stderr).not.toContain("mylist");
    await sys.start();
  }, 60_000);

  test("the command gets the expanded argv and the message with F, R, O, D and quoting, and runs as user=", async () => {
    const body = "first line\n.dotted line\nFrom the quoted line\n";
    await sys!.send(["list+tag@lists.example.net"], `Subject: piped\n\n${body}`, { sender: `${sender.name}@${HOST}` });
    const entry = await waitFor("the archived message", () => entries().find((e) => e.includes("Subject: piped\n")));
    const [head, ...rest] = entry.split("\n");
    expect(head).toBe(`ARGV ${JSON.stringify([`${sender.name}@${HOST}`, "list+tag@lists.example.net", "list", "tag", "lists.example.net", "list+tag", "lists.example.net", "list+tag@lists.example.net"])} UID ${list.uid}`);
    const text = rest.join("\n");
    expect(text).toMatch(new RegExp(`^From ${sender.name}@${HOST.replaceAll(".", "\\.")}  \\w{3} \\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d \\d{4}\\n`));
    expect(text).toContain(`\nReturn-Path: <${sender.name}@${HOST}>\nX-Original-To: list+tag@lists.example.net\nDelivered-To: list+tag@lists.example.net\n`);
    expect(text).toContain("\n\nfirst line\n..dotted line\n>From the quoted line\n");
    expect(statSync(out).uid).toBe(list.uid);
    await sys!.waitForLog(/to=<list\+tag@lists\.example\.net>, relay=mylist, .*status=sent \(delivered via mylist service\)/);
  });

  test("slow_time_limit: a command that runs longer is killed and the mail bounced with pipe(8)'s text and its output", async () => {
    await sys!.send(["x@slow.example.net"], "Subject: slow\n\nbody\n", { sender: `${sender.name}@${HOST}` });
    await sys!.waitForLog(
      new RegExp(`to=<x@slow\\.example\\.net>, relay=slow, .*dsn=5\\.3\\.0, status=bounced \\(Command time limit exceeded: "${slowScript.replaceAll(".", "\\.")}"\\. Command output: started \\)`),
    );
    // the whole process group is gone: no sleep of the service's user is left
    await waitFor("the command's processes to be gone", () => {
      const ps = Bun.spawnSync(["pgrep", "-u", String(list.uid), "-f", "sleep 300"]);
      return ps.exitCode === 1;
    });
  }, 60_000);

  test("eol = '\\r\\n' ends every record with CR LF and B adds a blank line; user = uid:gid", async () => {
    await sys!.send(["x@crlf.example.net"], "Subject: crlf\n\nline\n", { sender: `${sender.name}@${HOST}` });
    const text = await waitFor("the CR LF copy", () => {
      try {
        const t = readFileSync(crlfOut, "latin1");
        return t.includes("--END--") ? t : undefined;
      } catch {
        return undefined;
      }
    });
    expect(text).toContain(`UID ${list.uid}\nReturn-Path: <${sender.name}@${HOST}>\r\n`);
    expect(text).toContain("\r\nSubject: crlf\r\n");
    // the message's blank line, its body, then B's blank line, every record ending in CR LF
    expect(text).toEndWith("\r\n\r\nline\r\n\r\n--END--\n");
    expect(text.split("\n").slice(1, -2).every((l) => l.endsWith("\r"))).toBe(true);
  });

  test.skipIf(!HAVE_LDA)("Dovecot's dovecot-lda through a pipe service delivers to a virtual user's Maildir, as user=, with D and R", async () => {
    await sys!.send(["Alice+news@Dovecot.Example.NET"], "Subject: via lda\n\nhello dovecot\n", { sender: `${sender.name}@${HOST}` });
    const dir = join(vbase, "dovecot.example.net", "alice");
    const m = await waitFor("the message in the Maildir", () => maildirMessages(dir).find((t) => t.includes("Subject: via lda\n")));
    expect(m).toContain(`Return-Path: <${sender.name}@${HOST}>\n`);
    // D writes the recipient as the queue has it; h and u only fold what the command line gets
    expect(m).toMatch(/\nDelivered-To: Alice\+news@dovecot\.example\.net\n/i);
    expect(m).toContain("\nhello dovecot\n");
    const files = readdirSync(join(dir, "new"));
    expect(files.length).toBe(1);
    expect(statSync(join(dir, "new", files[0]!)).uid).toBe(list.uid);
    await sys!.waitForLog(/to=<Alice\+news@Dovecot\.Example\.NET>, relay=dovecot, .*status=sent \(delivered via dovecot service\)/i);
  });

  test("exit 75 (EX_TEMPFAIL) defers the message", async () => {
    await sys!.send(["tempfail@lists.example.net"], "Subject: later\n\nbody\n", { sender: `${sender.name}@${HOST}` });
    await sys!.waitForLog(/to=<tempfail@lists\.example\.net>, relay=mylist, .*dsn=4\.3\.0, status=deferred \(temporary failure\)/);
    expect(entries().some((e) => e.includes("Subject: later\n"))).toBe(true);
  });

  test("exit 67 (EX_NOUSER) bounces, with the command's output in the bounce", async () => {
    await sys!.send(["nouser@lists.example.net"], "Subject: nobody\n\nbody\n", { sender: `${sender.name}@${HOST}` });
    await sys!.waitForLog(/to=<nouser@lists\.example\.net>, relay=mylist, .*dsn=5\.1\.1, status=bounced \(user unknown\. Command output: no such list member here/);
    const report = await waitFor("the bounce", () => mboxMessages(join(sys!.spool, sender.name)).find((m) => m.includes("Subject: Undelivered Mail Returned to Sender\n") && m.includes("nouser@")));
    expect(report).toContain("<nouser@lists.example.net>: user unknown. Command output: no such list member\n    here\n");
  });
});
