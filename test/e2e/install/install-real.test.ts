/**
 * `postern install` for real, as root, kept self-contained: --prefix points
 * at a temporary directory that receives the executable, the command links,
 * the configuration, the queue and the systemd unit (this machine's
 * /usr/sbin/sendmail belongs to Debian's postfix and is never touched), and
 * mail_owner is a user made for this run, so install creates it and
 * uninstall --purge removes it. The installed system starts with `postern
 * start` on a private port of 127.0.0.1 with a fake DNS server, takes a
 * message through the installed `sendmail` link and delivers it to a
 * Maildir; then it is stopped, uninstalled, and nothing is left. No
 * systemctl: the unit lands under the prefix, where systemd does not look.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { startFakeDns } from "../../helpers/fake-dns.ts";
import { cleanEnv, removeDir, run, tempDir } from "../../helpers/run.ts";
import { getpwnam } from "../../../src/util/passwd.ts";
import { isRoot, maildirMessages, TestUsers, waitFor } from "../../helpers/mail-system.ts";
import { freePort } from "../../helpers/ports.ts";

const users = new TestUsers("pir");
const dirs: string[] = [];
const owner = `pio${process.pid.toString(36)}`;
let masterPidFile: string | undefined;

afterAll(() => {
  // a failed test may leave the installed system running: stop it by its own PID
  if (masterPidFile && existsSync(masterPidFile)) {
    const pid = Number(readFileSync(masterPidFile, "utf8").trim());
    if (Number.isInteger(pid) && pid > 1) {
      try {
        process.kill(pid, "SIGQUIT");
      } catch {}
    }
  }
  users.removeAll();
  if (getpwnam(owner)) Bun.spawnSync(["userdel", owner], { stdout: "ignore", stderr: "ignore" });
  Bun.spawnSync(["groupdel", owner], { stdout: "ignore", stderr: "ignore" });
  for (const d of dirs) removeDir(d);
});

/** Runs an installed command by its link, as a user would type it. */
async function installed(path: string, args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}) {
  const proc = Bun.spawn([path, ...args], {
    env: cleanEnv(opts.env),
    stdin: opts.stdin === undefined ? "ignore" : new Blob([opts.stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** The SMTP greeting of 127.0.0.1:port, once smtpd listens there. */
async function greeting(port: number): Promise<string> {
  let text = "";
  const socket = await waitFor("smtpd to listen", async () => {
    try {
      return await Bun.connect({ hostname: "127.0.0.1", port, socket: { data(_s, d) { text += d.toString(); } } });
    } catch {
      return undefined;
    }
  }, 15_000);
  try {
    return await waitFor("the SMTP greeting", () => (text.includes("\n") ? text : undefined), 10_000);
  } finally {
    socket.end();
  }
}

describe.skipIf(!isRoot)("postern install for real, as root, under a temporary prefix", () => {
  test("installs, runs, delivers through the installed sendmail link, stops, and uninstalls without a trace", async () => {
    const prefix = tempDir("postern-prefix-");
    const homes = tempDir("postern-homes-");
    const logs = tempDir("postern-log-");
    dirs.push(prefix, homes, logs);
    // mail_owner and the recipient must reach the queue, the homes and the log below
    for (const d of [prefix, homes, logs]) chmodSync(d, 0o755);
    const recipient = users.add("rc", homes);
    const dns = await startFakeDns({}, { autoStop: false });
    const port = freePort();
    expect(getpwnam(owner)).toBeUndefined();

    const conf = join(prefix, "etc/postern");
    const maillog = join(logs, "maillog");
    const r = await run(
      "postern",
      [
        "install", "--prefix", prefix,
        `mail_owner=${owner}`, "myhostname=mail.example.test", "mydomain=example.test",
        "mydestination=mail.example.test, localhost", "inet_interfaces=127.0.0.1", "home_mailbox=Maildir/",
        `maillog_file=${maillog}`, `dns_servers=${dns.server}`,
      ],
      { timeoutMs: 120_000 },
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);

    // install made mail_owner with Debian's conventions, and the tree under the prefix
    const pw = getpwnam(owner)!;
    expect(pw).toBeDefined();
    expect(pw.home).toBe(join(prefix, "var/spool/postern"));
    expect(pw.shell).toBe("/usr/sbin/nologin");
    expect(pw.uid).toBeLessThan(1000);
    expect(readFileSync("/etc/group", "utf8")).toMatch(new RegExp(`^${owner}:x:${pw.gid}:`, "m"));
    expect(statSync(join(prefix, "var/spool/postern/maildrop")).uid).toBe(pw.uid);
    expect(statSync(join(prefix, "var/lib/postern")).uid).toBe(pw.uid);
    expect(readFileSync(join(prefix, "lib/systemd/system/postern.service"), "utf8")).toContain(`ExecStart=${prefix}/sbin/postern start-fg -c ${conf}\n`);
    expect(readFileSync(join(prefix, "etc/logrotate.d/postern"), "utf8")).toContain(`"${maillog}" {`);
    expect(existsSync(join(prefix, "etc/aliases.sqlite"))).toBe(true);

    // a second run changes nothing
    const again = await run("postern", ["install", "--prefix", prefix], { timeoutMs: 120_000 });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("nothing to change: everything is in place");

    // the installed commands: postconf edits the file install wrote, check accepts it
    const env = { MAIL_CONFIG: conf };
    const edit = await installed(join(prefix, "sbin/postconf"), ["-e", `services.smtp.listen = 127.0.0.1:${port}`], { env });
    expect(edit.code).toBe(0);
    const check = await installed(join(prefix, "sbin/postern"), ["check", "-c", conf]);
    expect(check.stderr).toBe("");
    expect(check.code).toBe(0);

    masterPidFile = join(prefix, "var/spool/postern/pid/master.pid");
    const start = await installed(join(prefix, "sbin/postern"), ["start", "-c", conf]);
    expect(start.code).toBe(0);
    await waitFor("the queue manager's socket", () => existsSync(join(prefix, "var/spool/postern/public/qmgr")));
    expect(await greeting(port)).toMatch(/^220 mail\.example\.test ESMTP/);

    const sent = await installed(join(prefix, "sbin/sendmail"), ["-i", `${recipient.name}@mail.example.test`], {
      env,
      stdin: "Subject: through the installed sendmail\n\nHello.\n",
    });
    expect(sent.stderr).toBe("");
    expect(sent.code).toBe(0);
    const maildir = join(recipient.home, "Maildir");
    const delivered = await waitFor("the message in the Maildir", () => maildirMessages(maildir).find((m) => m.includes("Subject: through the installed sendmail\n")));
    expect(delivered).toContain("Hello.\n");
    expect((await installed(join(prefix, "bin/mailq"), [], { env })).stdout).toContain("Mail queue is empty");

    // uninstall refuses to pull the executable from under a running system
    const busy = await run("postern", ["uninstall", "--prefix", prefix]);
    expect(busy.code).toBe(75);
    expect(busy.stderr).toContain("the mail system is running");
    expect(existsSync(join(prefix, "sbin/postern"))).toBe(true);

    const stop = await installed(join(prefix, "sbin/postern"), ["stop", "-c", conf]);
    expect(stop.code).toBe(0);
    await waitFor("the master's pid file to go", () => !existsSync(masterPidFile!));

    const u = await run("postern", ["uninstall", "--prefix", prefix, "--purge"], { timeoutMs: 120_000 });
    expect(u.stderr).toBe("");
    expect(u.code).toBe(0);
    expect(readdirSync(prefix)).toEqual([]);
    expect(getpwnam(owner)).toBeUndefined();
    expect(readFileSync("/etc/group", "utf8")).not.toMatch(new RegExp(`^${owner}:`, "m"));
    await dns.stop();
  }, 180_000);
});
