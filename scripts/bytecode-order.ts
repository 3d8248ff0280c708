/**
 * Records which functions sendmail and the daemons run, for the build's
 * profile-guided bytecode layout (`bun build --bytecode-order`): the build
 * puts the bytecode of the functions a recorded run used together at the
 * front of the executable, sendmail's first, so a process faults fewer of
 * the executable's pages in (bench/README.md, issue 16 session 9: sendmail
 * about 50-70 page faults and 3-4 ms less, the idle system 0.6 MB less).
 * The profiles are committed (scripts/bytecode-order/*.order); a profile
 * from an older build still applies to the functions that did not change,
 * so they only need recording again when a path changed a lot
 * (test/scripts/bytecode-order.test.ts says when, for sendmail).
 *
 * Usage, after `npm run build`: `bun scripts/bytecode-order.ts` (sendmail;
 * as root also the master, queue manager, smtpd and local of a private
 * system that takes one message for root over SMTP and one from sendmail;
 * needs swaks). Everything
 * runs on a private queue in a temporary directory, with the embedded
 * default configuration.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { embeddedConfig } from "./embedded-config.ts";

const root = resolve(import.meta.dir, "..");
const dist = process.env.POSTERN_DIST ? resolve(process.env.POSTERN_DIST) : join(root, "dist");
export const ORDER_DIR = join(root, "scripts", "bytecode-order");
export const ORDER_FILE = join(ORDER_DIR, "sendmail.order");
/** The daemons whose profiles follow sendmail's, most important first (the two that run at idle lead). */
export const DAEMON_ROLES = ["master", "qmgr", "smtpd", "local"] as const;

/** The profiles the build passes, in its order: sendmail first, then the daemons' that exist. */
export function orderFiles(dir = ORDER_DIR): string[] {
  return ["sendmail", ...DAEMON_ROLES].map((r) => join(dir, `${r}.order`)).filter((f) => existsSync(f));
}

/** A small ordinary message, as cron or mailx would hand it over. */
export function sampleMessage(): string {
  const lines = ["From: cron <root@localhost>", "To: root@localhost", "Subject: daily report", "Message-ID: <order@localhost>", ""];
  for (let i = 0; i < 40; i++) lines.push(`line ${i} of the report: ${"x".repeat(50)}`);
  return lines.join("\n") + "\n";
}

function privateSystem(listen?: string): { dir: string; env: Record<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), "postern-order-"));
  chmodSync(dir, 0o755);
  const etc = join(dir, "etc");
  mkdirSync(etc);
  writeFileSync(join(etc, "postern.toml"), embeddedConfig(dir, listen));
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", MAIL_CONFIG: etc };
  const check = Bun.spawnSync([join(dist, "postern"), "check"], { env, stderr: "pipe" });
  if (check.exitCode !== 0) throw new Error(`postern check failed: ${check.stderr.toString()}`);
  return { dir, env };
}

/** Runs dist/sendmail once with BUN_BYTECODE_ORDER_OUT and returns the profile's text. */
export function recordSendmailOrder(distDir = dist): string {
  const { dir, env } = privateSystem();
  try {
    const out = join(dir, "sendmail.order");
    const run = Bun.spawnSync([join(distDir, "sendmail"), "-i", "root@localhost"], {
      env: { ...env, BUN_BYTECODE_ORDER_OUT: out },
      stdin: Buffer.from(sampleMessage()),
      stderr: "pipe",
    });
    if (run.exitCode !== 0) throw new Error(`sendmail exited ${run.exitCode}: ${run.stderr.toString()}`);
    return readFileSync(out, "utf8");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; await Bun.sleep(50)) if (ok()) return;
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Starts a private system with BUN_BYTECODE_ORDER_OUT (the master hands each daemon PATH.ROLE:
 * src/global/system/child-environment.ts), sends one message to root over SMTP and one with sendmail,
 * waits for their delivery, stops the system and returns each daemon role's profile. Root only.
 */
export async function recordDaemonOrders(): Promise<Map<string, string>> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const { dir, env } = privateSystem(`127.0.0.1:${port}`);
  const profiles = join(dir, "profiles");
  mkdirSync(profiles);
  // the daemons write theirs as mail_owner
  chmodSync(profiles, 0o1777);
  const base = join(profiles, "p");
  const postern = (args: string[]) => Bun.spawnSync([join(dist, "postern"), ...args], { env: { ...env, BUN_BYTECODE_ORDER_OUT: base }, stderr: "pipe" });
  try {
    const start = postern(["start"]);
    if (start.exitCode !== 0) throw new Error(`postern start failed: ${start.stderr.toString()}`);
    await until("smtpd to take the message", () => {
      const swaks = ["swaks", "-s", "127.0.0.1", "-p", String(port), "-f", "cron@localhost", "-t", "root@localhost", "--body", sampleMessage(), "--silent", "2"];
      return Bun.spawnSync(swaks).exitCode === 0;
    });
    // and one through sendmail, for the queue manager's pickup of maildrop/
    const sendmail = Bun.spawnSync([join(dist, "sendmail"), "-i", "root@localhost"], { env, stdin: Buffer.from(sampleMessage()), stderr: "pipe" });
    if (sendmail.exitCode !== 0) throw new Error(`sendmail exited ${sendmail.exitCode}: ${sendmail.stderr.toString()}`);
    const maildir = join(dir, "mail", "root", "new");
    await until("both deliveries", () => existsSync(maildir) && readdirSync(maildir).length >= 2);
    postern(["stop"]);
    const roles = new Map<string, string>();
    await until("every daemon's profile", () => [`${base}.master`, ...DAEMON_ROLES.slice(1).map((r) => `${base}.master.${r}`)].every((f) => existsSync(f)));
    roles.set("master", readFileSync(`${base}.master`, "utf8"));
    for (const r of DAEMON_ROLES.slice(1)) roles.set(r, readFileSync(`${base}.master.${r}`, "utf8"));
    return roles;
  } finally {
    postern(["stop"]);
    rmSync(dir, { recursive: true, force: true });
  }
}

function save(target: string, text: string): void {
  writeFileSync(`${target}.tmp`, text);
  renameSync(`${target}.tmp`, target);
  console.log(`bytecode-order: ${target} (${text.split("\n").filter((l) => / /.test(l)).length} functions)`);
}

if (import.meta.main) {
  mkdirSync(ORDER_DIR, { recursive: true });
  save(ORDER_FILE, recordSendmailOrder());
  if (process.getuid?.() === 0) {
    for (const [role, text] of await recordDaemonOrders()) save(join(ORDER_DIR, `${role}.order`), text);
  } else {
    console.log("bytecode-order: not root: the daemons' profiles are left as they are");
  }
}
