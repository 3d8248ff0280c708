/**
 * mailq for a user who cannot read the queue (no set-gid anywhere): the
 * running queue manager answers for it (Postfix's showq); while the system
 * is down the user is told why. Root only: it needs a second user and a
 * queue owned by mail_owner.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bin, cleanEnv, removeDir, run, tempDir } from "../helpers/run.ts";

const IS_ROOT = process.getuid?.() === 0;
const user = `pshowq${process.pid % 100000}`;
let dir = "";

function sh(cmd: string[]): number {
  return Bun.spawnSync(cmd, { stdout: "ignore", stderr: "ignore" }).exitCode;
}

async function runAs(name: string, args: string[]) {
  const proc = Bun.spawn(["setpriv", `--reuid=${user}`, `--regid=${user}`, "--init-groups", bin(name), ...args], {
    env: cleanEnv(),
    stdout: "pipe",
    stderr: "pipe",
    argv0: bin(name),
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

describe.skipIf(!IS_ROOT)("mailq for users who cannot read the queue", () => {
  beforeAll(async () => {
    if (sh(["id", "postern"]) !== 0) sh(["useradd", "--system", "--user-group", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", "postern"]);
    sh(["useradd", "--user-group", "--no-create-home", "--shell", "/bin/sh", user]);
    dir = tempDir("postern-showq-");
    chmodSync(dir, 0o755);
    writeFileSync(
      join(dir, "postern.toml"),
      `queue_directory = "${dir}/q"\nmaillog_file = "${dir}/maillog"\ndefault_transport = "retry:4.4.1 test: try again later"\nminimal_backoff_time = "1h"\n[services.smtp]\nenable = false\n`,
    );
    chmodSync(join(dir, "postern.toml"), 0o644);
    expect((await run("postern", ["start", "-c", dir])).code).toBe(0);
  });

  afterAll(async () => {
    if (dir) await run("postern", ["stop", "-c", dir]);
    sh(["userdel", user]);
    if (dir) removeDir(dir);
  });

  test("while the system runs, the queue manager lists the queue for them", async () => {
    const sent = await run("sendmail", ["-C", dir, "-i", "someone@example.com"], { stdin: "Subject: x\n\nbody\n" });
    expect(sent.code).toBe(0);
    const deferred = join(dir, "q", "deferred");
    for (let i = 0; i < 200 && !(existsSync(deferred) && readdirSync(deferred).length); i++) await Bun.sleep(50);
    const r = await runAs("mailq", ["-c", dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^-Queue ID- {2}--Size-- ----Arrival Time---- -Sender\/Recipient-------\n[0-9A-F]{6,21} +\d+ \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d {2}root@/);
    expect(r.stdout).toContain("(test: try again later)");
    expect(r.stdout).toContain("someone@example.com");
    expect(r.stdout).toMatch(/-- \d+ Kbytes in 1 Request\.\n$/);
    const j = await runAs("postqueue", ["-c", dir, "-j"]);
    expect(j.code).toBe(0);
    const entry = JSON.parse(j.stdout.trim());
    expect(entry.queue_name).toBe("deferred");
    expect(entry.recipients[0]).toEqual({ address: "someone@example.com", delay_reason: "test: try again later" });
  });

  test("while the system is down, they are told why, with EX_UNAVAILABLE", async () => {
    expect((await run("postern", ["stop", "-c", dir])).code).toBe(0);
    const r = await runAs("mailq", ["-c", dir]);
    expect(r.code).toBe(69);
    expect(r.stderr).toContain("Queue report unavailable - mail system is down");
    expect(r.stdout).toBe("");
  });
});
