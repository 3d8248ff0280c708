/**
 * `npm start`'s embedded configuration (scripts/start.ts): started with
 * POSTERN_DIST at the build under test and POSTERN_VAR at a temporary
 * directory (never the repository's ./var), it prints how to send a test
 * message; doing exactly that puts the message where it says.
 *
 * Unprivileged (as root the tests run it as a user made for the test), any
 * plain local part is a mailbox in var/mail/NAME/; a name that is no plain
 * file name ("../x", ".bashrc", "a/b", control characters) is an unknown
 * user, and nothing is written outside var/mail. Run as root, only users in
 * /etc/passwd have mailboxes, and what it prints says root@localhost.
 */
import { afterAll, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { embeddedConfig } from "../../../scripts/embedded-config.ts";
import { cleanEnv, DIST, ROOT } from "../../helpers/run.ts";
import { freePort, RawSmtp } from "../../helpers/smtpd-system.ts";
import { ensureMailOwner, isRoot, TestUsers, waitFor } from "../../helpers/mail-system.ts";

const users = new TestUsers("pdn");
const hadRepoVar = existsSync(join(ROOT, "var"));

interface NpmStart {
  varDir: string;
  etc: string;
  proc: ReturnType<typeof Bun.spawn>;
  env: Record<string, string>;
  user: PasswdEntry | undefined;
  output: () => string;
}
const started: NpmStart[] = [];

/** Every process started with `-c VAR/etc`, and their children. */
function systemProcesses(etc: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
      if (argv[0] === "postern" && argv.some((a, i) => a === "-c" && argv[i + 1] === etc)) out.push(Number(name));
    } catch {}
  }
  return out;
}

afterAll(async () => {
  for (const s of started) {
    s.proc.kill("SIGTERM");
    await Promise.race([s.proc.exited, Bun.sleep(15_000)]);
    // whatever did not stop with it
    for (const pid of systemProcesses(s.etc)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    rmSync(s.varDir, { recursive: true, force: true });
  }
  users.removeAll();
}, 30_000);

/** The argv that runs `argv` as `user` (or as ourselves). */
function as(user: PasswdEntry | undefined, argv: string[]): string[] {
  return user ? ["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", ...argv] : argv;
}

/** Runs scripts/start.ts as `user` (or as ourselves) on a new POSTERN_VAR; `config` is written first when given. */
function npmStart(user: PasswdEntry | undefined, config?: (varDir: string) => string): NpmStart {
  const varDir = mkdtempSync(join(tmpdir(), "postern-npm-start-"));
  const etc = join(varDir, "etc");
  // as a checkout's ./var would be: mail_owner must reach the queue below it
  chmodSync(varDir, 0o755);
  if (config) {
    mkdirSync(etc);
    writeFileSync(join(etc, "postern.toml"), config(varDir));
  }
  if (user) {
    chownSync(varDir, user.uid, user.gid);
    if (config) {
      chownSync(etc, user.uid, user.gid);
      chownSync(join(etc, "postern.toml"), user.uid, user.gid);
    }
  }
  const env = cleanEnv({ POSTERN_DIST: DIST, POSTERN_VAR: varDir, ...(user ? { HOME: user.home, USER: user.name, LOGNAME: user.name } : {}) });
  const proc = Bun.spawn(as(user, [process.execPath, join(ROOT, "scripts/start.ts")]), { cwd: ROOT, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let out = "";
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) out += decoder.decode(chunk, { stream: true });
  })();
  const s = { varDir, etc, proc, env, user, output: () => out };
  started.push(s);
  return s;
}

/** What start.ts prints, checked, and the system running. */
async function instructions(s: NpmStart, rcpt: string): Promise<{ sendmail: string; newDir: string }> {
  const sendLine = await waitFor("the send instructions", () => new RegExp(`^ {2}echo "Subject: hello" \\| (\\S+) -C (\\S+) -i ${rcpt}@localhost$`, "m").exec(s.output()) ?? undefined);
  const readLine = await waitFor("where to read it", () => /read it in (\S+)\/$/m.exec(s.output()) ?? undefined);
  expect(sendLine[1]).toBe(join(DIST, "sendmail"));
  expect(sendLine[2]).toBe(s.etc);
  expect(readLine[1]).toBe(join(s.varDir, "mail", rcpt, "new"));
  expect(existsSync(join(s.etc, "postern.toml"))).toBe(true);
  if (!hadRepoVar) expect(existsSync(join(ROOT, "var"))).toBe(false);
  await waitFor("the system to run", () => /postfix\/master\[\d+\]: daemon started/.test(s.output()));
  await waitFor("the queue manager's socket", () => existsSync(join(s.varDir, "spool", "public", "qmgr")));
  await waitFor("the local service's socket", () => existsSync(join(s.varDir, "spool", "private", "local")));
  return { sendmail: sendLine[1]!, newDir: readLine[1]! };
}

/** Sends as printed and returns the delivered message's text. */
async function sendAsPrinted(s: NpmStart, rcpt: string): Promise<string> {
  const { sendmail, newDir } = await instructions(s, rcpt);
  const send = Bun.spawn(as(s.user, [sendmail, "-C", s.etc, "-i", `${rcpt}@localhost`]), { env: s.env, stdin: new Blob(["Subject: hello\n"]), stdout: "pipe", stderr: "pipe" });
  expect(await send.exited).toBe(0);
  const file = await waitFor(`the message in var/mail/${rcpt}/new/`, () => (existsSync(newDir) ? readdirSync(newDir)[0] : undefined));
  return readFileSync(join(newDir, file), "utf8");
}

/** Every file and directory below `dir`, relative to it. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      out.push(relative(dir, p));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

test("npm start: the printed sendmail command delivers to var/mail/you/new/", async () => {
  const user = isRoot ? users.add("s", join(tmpdir(), `postern-npm-home-${process.pid}`)) : undefined;
  const s = npmStart(user);
  const text = await sendAsPrinted(s, "you");
  expect(text).toContain("Subject: hello\n");
  expect(text).toContain("Delivered-To: you@localhost\n");
  // the log is on stdout: the delivery line of the foreground system
  await waitFor("the delivery line", () => /postfix\/local\[\d+\]: [0-9A-F]+: to=<you@localhost>, .*status=sent \(delivered to maildir\)/.test(s.output()));
  // everything ran as the user who started it
  for (const pid of systemProcesses(s.etc)) {
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    expect(Number(uid)).toBe(user?.uid ?? process.getuid!());
  }
  s.proc.kill("SIGINT");
  expect(await s.proc.exited).toBe(0);
  expect(systemProcesses(s.etc)).toEqual([]);
}, 30_000);

// issue 9 item 5: RCPT TO:<"../home/.bashrc"@localhost> appended the message to the user's .bashrc
test("npm start over SMTP: a local part that is no plain file name bounces as an unknown user; nothing is written outside var/mail", async () => {
  const user = isRoot ? users.add("n", join(tmpdir(), `postern-npm-home-${process.pid}`)) : undefined;
  const port = freePort();
  const s = npmStart(user, (varDir) => embeddedConfig(varDir, `127.0.0.1:${port}`));
  // the files an attacker would aim at, next to var/mail
  mkdirSync(join(s.varDir, "home"));
  writeFileSync(join(s.varDir, "home", ".bashrc"), "# rc\n");
  await instructions(s, "you");
  const before = tree(s.varDir).filter((p) => !p.startsWith("spool") && !p.startsWith("lib"));

  const bad = ['"../home/.bashrc"', '"../x"', '".bashrc"', '"a/b"', '".."', '"x\\\\/..\\\\/..\\\\/y"', '"a\\\u0001b"', '"a\\\tb"', `${"x".repeat(65)}`];
  const smtp = await waitFor("smtpd to listen", () => RawSmtp.connect(port).catch(() => undefined));
  expect(await smtp.reply()).toStartWith("220 ");
  expect(await smtp.cmd("EHLO client.example")).toStartWith("250");
  const accepted: string[] = [];
  for (const local of bad) {
    expect(await smtp.cmd("MAIL FROM:<sender@example.org>")).toStartWith("250 ");
    const r = await smtp.cmd(`RCPT TO:<${local}@localhost>`);
    if (r.startsWith("250 ")) {
      expect(await smtp.cmd("DATA")).toStartWith("354 ");
      expect(await smtp.cmd(`Subject: ${accepted.length}\r\n\r\npwned\r\n.`)).toStartWith("250 ");
      accepted.push(local);
    } else {
      // refused at the door is as good: nothing was queued
      expect(r).toMatch(/^5\d\d /);
      expect(await smtp.cmd("RSET")).toStartWith("250 ");
    }
  }
  await smtp.quit();
  // the quoted names with "/" and a leading "." reach local delivery: it must see them
  expect(accepted).toEqual(expect.arrayContaining(['"../home/.bashrc"', '"../x"', '".bashrc"', '"a/b"']));
  await waitFor(`${accepted.length} bounces`, () => (s.output().match(/postfix\/local\[\d+\]: [0-9A-F]+: to=<[^>]*>, .*dsn=5\.1\.1, status=bounced \(unknown user: /g)?.length ?? 0) >= accepted.length);
  expect(s.output()).not.toMatch(/status=sent \(delivered to maildir\)/);
  expect(readFileSync(join(s.varDir, "home", ".bashrc"), "utf8")).toBe("# rc\n");
  // the bounces go to sender@example.org, which is not ours: nothing new anywhere outside the queue
  expect(tree(s.varDir).filter((p) => !p.startsWith("spool") && !p.startsWith("lib"))).toEqual(before);
  expect(readdirSync(join(s.varDir, "mail"))).toEqual([]);
}, 30_000);

test.skipIf(!isRoot)("npm start as root: the printed command (root@localhost) delivers to var/mail/root/new/", async () => {
  ensureMailOwner();
  const s = npmStart(undefined);
  const text = await sendAsPrinted(s, "root").catch((err) => {
    throw new Error(`${err.message}\n${s.output()}`);
  });
  expect(text).toContain("Subject: hello\n");
  expect(text).toContain("Delivered-To: root@localhost\n");
  expect(s.output()).not.toContain("you@localhost");
  s.proc.kill("SIGINT");
  expect(await s.proc.exited).toBe(0);
  expect(systemProcesses(s.etc)).toEqual([]);
}, 30_000);
