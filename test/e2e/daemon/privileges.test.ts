/**
 * Privilege boundaries of the master and the control commands (issue 9,
 * item 4), tried as an attacker who owns mail_owner would: files and
 * symlinks planted in pid/, a pid file mail_owner wrote and locks.
 *
 * Root only (mail_owner, setpriv, flock); every process a test starts is
 * stopped by its own PID.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, closeSync, openSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { getpwnam, type PasswdEntry } from "../../../src/util/passwd.ts";
import { tryKernelLock } from "../../../src/util/kernel-lock.ts";
import { cleanEnv } from "../../helpers/run.ts";
import { ensureMailOwner, isRoot, MailSystem, TestUsers, waitFor } from "./system.ts";

const systems: MailSystem[] = [];
const users = new TestUsers("ppv");
const started: Subprocess[] = [];
afterAll(async () => {
  for (const p of started) p.kill("SIGKILL");
  await Promise.all(systems.map((s) => s.cleanup()));
  users.removeAll();
}, 60_000);

function newSystem(params: ConstructorParameters<typeof MailSystem>[0] = {}): MailSystem {
  ensureMailOwner();
  const sys = new MailSystem(params);
  systems.push(sys);
  return sys;
}

function mailOwner(): PasswdEntry {
  return getpwnam("postern")!;
}

/** Runs argv as `user` (mail_owner by default) and waits for it. */
function runAs(argv: string[], user: PasswdEntry = mailOwner()): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync(["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", ...argv], { env: cleanEnv(), stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** A long-running process the test owns; killed by its PID at the end. */
function spawnOwned(argv: string[]): Subprocess {
  const p = Bun.spawn(argv, { env: cleanEnv(), stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  started.push(p);
  return p;
}

/** A file the test owns in a root-only directory: what an attacker would aim a symlink at. */
function victimFile(sys: MailSystem, name: string): string {
  const dir = join(sys.dir, "root-only");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, name);
  writeFileSync(path, `precious ${name}\n`, { mode: 0o644 });
  utimesSync(path, 1_000_000, 1_000_000);
  return path;
}

function untouched(path: string, name: string): void {
  expect(readFileSync(path, "utf8")).toBe(`precious ${name}\n`);
  const st = statSync(path);
  expect([st.uid, st.mode & 0o7777, st.mtimeMs]).toEqual([0, 0o644, 1_000_000_000]);
}

function alive(p: Subprocess): boolean {
  return p.exitCode === null && p.signalCode === null && !p.killed;
}

/** The old layout (pid/ owned by mail_owner), as every install before this fix has it. */
async function oldPidLayout(sys: MailSystem): Promise<void> {
  expect((await sys.postern(["check"])).code).toBe(0);
  const owner = mailOwner();
  chownSync(join(sys.queue, "pid"), owner.uid, owner.gid);
}

/** One raw request line as `user` (a three-line client, as the issue says); the response line. */
function rawRequest(path: string, request: object, user: PasswdEntry): string {
  const script = "import socket,sys\ns=socket.socket(socket.AF_UNIX);s.settimeout(20);s.connect(sys.argv[1]);s.sendall(sys.argv[2].encode()+b'\\n')\nprint(s.makefile('rb').readline().decode(),end='')";
  const r = runAs(["/usr/bin/python3", "-c", script, path, JSON.stringify(request)], user);
  if (r.code !== 0) throw new Error(`raw client as ${user.name}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

describe.skipIf(!isRoot)("item 4: root never follows what mail_owner planted in pid/", () => {
  test("symlinks at pid/master.err and pid/master.pid: start removes them, the files they point at are untouched", async () => {
    const sys = newSystem();
    await oldPidLayout(sys);
    const errVictim = victimFile(sys, "err");
    const pidVictim = victimFile(sys, "pid");
    chmodSync(sys.dir, 0o755);
    for (const [name, target] of [["master.err", errVictim], ["master.pid", pidVictim]] as const) {
      const r = runAs(["ln", "-s", target, join(sys.queue, "pid", name)]);
      expect(r.code).toBe(0);
    }
    const start = await sys.postern(["start"]);
    sys.track();
    untouched(errVictim, "err");
    untouched(pidVictim, "pid");
    expect(start.code).toBe(0);
    expect(start.stderr).toContain(`${sys.queue}: fixed owner of pid`);
    // pid/ is root's again and holds root's own regular files
    expect(statSync(join(sys.queue, "pid")).uid).toBe(0);
    for (const name of ["master.err", "master.pid"]) {
      const st = lstatSync(join(sys.queue, "pid", name));
      expect([name, st.isFile(), st.uid]).toEqual([name, true, 0]);
    }
    expect(sys.masterPid()).toBe(sys.roles().get("master"));
    expect((await sys.stop()).code).toBe(0);
    untouched(pidVictim, "pid");
  }, 60_000);

  for (const layout of ["old pid/ owned by mail_owner", "pid/ root's, the file mail_owner's"] as const) {
    test(`a pid file mail_owner wrote and locks (${layout}): stop and reload refuse to signal its pid`, async () => {
      const sys = newSystem();
      const owner = mailOwner();
      const pidFile = join(sys.queue, "pid", "master.pid");
      if (layout === "old pid/ owned by mail_owner") {
        await oldPidLayout(sys);
      } else {
        expect((await sys.postern(["check"])).code).toBe(0);
        writeFileSync(pidFile, "");
        chownSync(pidFile, owner.uid, owner.gid);
      }
      // the process mail_owner wants root to signal
      const victim = spawnOwned(["sleep", "600"]);
      // mail_owner writes the victim's pid and holds the lock a running master would hold
      const locker = Bun.spawn(["setpriv", `--reuid=${owner.uid}`, `--regid=${owner.gid}`, "--init-groups", "sh", "-c", `echo ${victim.pid} > ${pidFile} && exec flock ${pidFile} sleep 600`], { env: cleanEnv(), stdout: "ignore", stderr: "pipe" });
      started.push(locker);
      await waitFor("mail_owner's pid file, locked", () => {
        try {
          if (readFileSync(pidFile, "utf8").trim() !== String(victim.pid)) return false;
          const fd = openSync(pidFile, "r");
          try {
            const attempt = tryKernelLock(fd, "flock");
            return !attempt.ok && attempt.busy;
          } finally {
            closeSync(fd);
          }
        } catch {
          return false;
        }
      });
      expect(statSync(pidFile).uid).toBe(owner.uid);
      for (const word of ["stop", "reload", "abort"]) {
        const r = await sys.postern([word]);
        expect([word, r.code]).toEqual([word, 1]);
        expect(r.stderr).toContain(`ignoring ${pidFile}:`);
        expect(r.stderr).toContain("the mail system is not running");
      }
      const status = await sys.postern(["status"]);
      expect(status.code).toBe(1);
      expect(alive(victim)).toBe(true);
      // and start takes the file back
      expect((await sys.postern(["start"])).code).toBe(0);
      sys.track();
      expect(statSync(pidFile).uid).toBe(0);
      expect(sys.masterPid()).toBe(sys.roles().get("master"));
      expect((await sys.stop()).code).toBe(0);
      expect(alive(victim)).toBe(true);
      locker.kill("SIGKILL");
      victim.kill("SIGKILL");
    }, 60_000);
  }
});
