/**
 * Privilege boundaries of the master, the control commands and the internal
 * sockets (issue 9, items 4, 9 and 22), tried as an attacker would: files
 * and symlinks planted by mail_owner in pid/, a pid file mail_owner wrote,
 * raw clients on public/qmgr and public/showq as users the lists refuse, a
 * flood of pipelined listing requests while mail is delivered, and a local
 * service restarted while the queue manager runs.
 *
 * Root only (mail_owner, test users, strace); every process a test starts
 * is stopped by its own PID.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, closeSync, openSync, lstatSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { getpwnam, type PasswdEntry } from "../../../src/util/passwd.ts";
import { tryKernelLock } from "../../../src/util/kernel-lock.ts";
import { encodeQueueFile } from "../../../src/global/queue/format.ts";
import { bin, cleanEnv } from "../../helpers/run.ts";
import { catchesSigterm, ensureMailOwner, isRoot, MailSystem, mboxMessages, message, ROLES_UP, TestUsers, waitFor } from "../../helpers/mail-system.ts";

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
      // one process (setpriv execs python), so killing it by its PID leaves nothing behind
      const hold = "import fcntl,signal,sys\nf=open(sys.argv[1],'w');f.write(sys.argv[2]+'\\n');f.flush();fcntl.flock(f,fcntl.LOCK_EX)\nsignal.pause()";
      const locker = Bun.spawn(["setpriv", `--reuid=${owner.uid}`, `--regid=${owner.gid}`, "--init-groups", "/usr/bin/python3", "-c", hold, pidFile, String(victim.pid)], { env: cleanEnv(), stdout: "ignore", stderr: "pipe" });
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
      // the pid file now names a running postern master, not the victim
      const claimed = sys.masterPid()!;
      expect(claimed).not.toBe(victim.pid);
      expect(readFileSync(`/proc/${claimed}/cmdline`, "utf8").split("\0").slice(0, 2)).toEqual(["postern", "master"]);
      expect((await sys.stop()).code).toBe(0);
      expect(alive(victim)).toBe(true);
      locker.kill("SIGKILL");
      victim.kill("SIGKILL");
    }, 60_000);
  }

  test("the services' sockets are made with their mode, by root, and never chmod-ed by path (strace)", async () => {
    const sys = newSystem();
    expect((await sys.postern(["check"])).code).toBe(0);
    const trace = join(sys.dir, "chmod.trace");
    // start-fg keeps the whole tree under strace: the master, the services and their workers
    const proc = Bun.spawn(["strace", "-f", "-qq", "-e", "trace=chmod,fchmodat", "-o", trace, bin("postern"), "start-fg", "-c", sys.etc], {
      env: cleanEnv(),
      stdin: "ignore",
      stdout: "ignore",
      stderr: "ignore",
    });
    started.push(proc);
    const sockets: unknown[][] = [];
    try {
      await waitFor("every role to be up", () => {
        const roles = sys.roles();
        return ROLES_UP.every((r) => roles.has(r) && catchesSigterm(roles.get(r)!));
      }, 60_000);
      sys.track();
      for (const path of ["private/local", "public/qmgr", "public/showq"]) {
        try {
          const st = lstatSync(join(sys.queue, path));
          sockets.push([path, st.isSocket(), st.mode & 0o777, st.uid]);
        } catch (err) {
          sockets.push([path, (err as Error).message]);
        }
      }
      // mail still reaches the local service through its socket
      await sys.send(["root"], message("throughsocket"));
      await waitFor("the message in root's mbox", () => mboxMessages(join(sys.spool, "root")).some((m) => m.includes("Subject: throughsocket\n")));
    } finally {
      const master = sys.masterPid();
      if (master !== undefined) process.kill(master, "SIGTERM");
      await proc.exited;
    }
    const chmods = readFileSync(trace, "utf8").split("\n").filter((l) => /chmod/.test(l));
    expect(chmods.filter((l) => /private\/local|public\/qmgr|public\/showq/.test(l))).toEqual([]);
    for (const path of ["private/local", "public/qmgr", "public/showq"]) expect(sockets).toContainEqual([path, true, 0o666, 0]);
  }, 90_000);
});

describe.skipIf(!isRoot)("item 9: public/qmgr and public/showq check the peer's credentials", () => {
  test("a user the lists refuse gets postqueue's messages from a raw client; an allowed user gets the listing and the flush", async () => {
    const sys = newSystem({ default_transport: "retry:4.4.1 test: try again later", minimal_backoff_time: "1h", maximal_backoff_time: "2h" });
    const allowed = users.add("ok", join(sys.dir, "homes"));
    const outsider = users.add("no", join(sys.dir, "homes"));
    sys.writeConfig({ authorized_mailq_users: allowed.name, authorized_flush_users: allowed.name });
    await sys.start();
    await sys.send(["secret-recipient@far.example"], message("listed"), { sender: "secret-sender@example.test" });
    await waitFor("the message in deferred/", () => sys.queueIds("deferred").length === 1);
    const qmgr = join(sys.queue, "public", "qmgr");
    const showq = join(sys.queue, "public", "showq");

    const refusedFlush = JSON.parse(rawRequest(qmgr, { command: "flush", kind: "all" }, outsider));
    expect(refusedFlush).toEqual({ error: `User ${outsider.name}(${outsider.uid}) is not allowed to flush the mail queue` });
    for (const kind of [{ kind: "site", site: "far.example" }, { kind: "id", id: sys.queueIds("deferred")[0] }]) {
      expect(JSON.parse(rawRequest(qmgr, { command: "flush", ...kind }, outsider)).error).toContain("is not allowed to flush the mail queue");
    }
    // the queue manager no longer lists the queue at all
    const viaQmgr = rawRequest(qmgr, { command: "showq" }, outsider);
    expect(viaQmgr).not.toContain("secret");
    expect(JSON.parse(viaQmgr)).toEqual({ error: "unknown request" });
    // the listing comes from the showq service, which checks the same list
    const refusedList = JSON.parse(rawRequest(showq, { command: "showq" }, outsider));
    expect(refusedList).toEqual({ error: `User ${outsider.name}(${outsider.uid}) is not allowed to view the mail queue` });
    // the real client says the same, before it asks
    const mailq = runAs([bin("mailq"), "-C", sys.etc], outsider);
    expect(mailq.code).toBe(77);
    expect(mailq.stderr).toContain(`User ${outsider.name}(${outsider.uid}) is not allowed to view the mail queue`);

    const listing = JSON.parse(rawRequest(showq, { command: "showq" }, allowed));
    expect(listing.entries).toHaveLength(1);
    expect(listing.entries[0].sender).toBe("secret-sender@example.test");
    expect(JSON.stringify(listing.entries[0])).toContain("secret-recipient@far.example");
    expect(JSON.parse(rawRequest(qmgr, { command: "flush", kind: "all" }, allowed))).toEqual({ moved: 1 });
    const viaMailq = runAs([bin("mailq"), "-C", sys.etc], allowed);
    expect(viaMailq.code).toBe(0);
    expect(viaMailq.stdout).toContain("secret-recipient@far.example");
    await sys.stop();
  }, 60_000);

  test("a flood of pipelined listing requests does not hold up delivery of a message sent meanwhile", async () => {
    const sys = newSystem({ minimal_backoff_time: "1h", maximal_backoff_time: "2h" });
    expect((await sys.postern(["check"])).code).toBe(0);
    // a queue worth listing: 300 held messages
    const owner = mailOwner();
    const bytes = encodeQueueFile({ arrivalTime: 1_700_000_000_000, sender: "held@example.test", recipients: [{ address: "someone@far.example" }], attributes: {}, content: Buffer.from("Subject: held\n\n" + "x".repeat(2000) + "\n") });
    for (let i = 0; i < 300; i++) {
      const path = join(sys.queue, "hold", (0xa0000000 + i).toString(16).toUpperCase());
      writeFileSync(path, bytes, { mode: 0o600 });
      chownSync(path, owner.uid, owner.gid);
    }
    await sys.start();
    let flooding = true;
    const open = new Set<Socket>();
    // each connection pipelines 20,000 requests, and a new one follows when it is closed
    const flood = async (path: string) => {
      const lines = `${JSON.stringify({ command: "showq" })}\n`.repeat(20_000);
      for (let round = 0; flooding && round < 10_000; round++) {
        await new Promise<void>((resolve) => {
          const s = createConnection(path);
          open.add(s);
          s.on("connect", () => s.write(lines));
          s.on("data", () => {});
          s.on("error", () => {});
          s.on("close", () => {
            open.delete(s);
            resolve();
          });
        });
        await new Promise((r) => setImmediate(r));
      }
    };
    const floods = [flood(join(sys.queue, "public", "qmgr")), flood(join(sys.queue, "public", "showq"))];
    try {
      await sys.send(["root"], message("duringflood"));
      await waitFor("the message in root's mbox", () => mboxMessages(join(sys.spool, "root")).some((m) => m.includes("Subject: duringflood\n")));
      expect(sys.log()).not.toMatch(/to=<root@[^>]*>.*status=deferred/);
    } finally {
      flooding = false;
      for (const s of open) s.destroy();
      await Promise.all(floods);
    }
    // the system still stops in an orderly way: nothing is left busy with the flood
    expect((await sys.stop()).code).toBe(0);
  }, 60_000);
});

describe.skipIf(!isRoot)("item 22: a service restarted while the queue manager runs", () => {
  test("a delivery to the local service while it is down waits for it instead of being deferred", async () => {
    // a deferral would wait an hour: only a delivery that waits for the service passes
    const sys = newSystem({ minimal_backoff_time: "1h", maximal_backoff_time: "2h" });
    await sys.start();
    const master = sys.masterPid()!;
    // local runs on demand: a first delivery starts it
    await sys.send(["root"], message("startslocal"));
    await waitFor("the first message in root's mbox", () => mboxMessages(join(sys.spool, "root")).some((m) => m.includes("Subject: startslocal\n")));
    // and its outcome in the queue manager's hands: local writes the mailbox before it replies,
    // and a kill in between would (rightly) defer that first message
    await sys.waitForLog(/to=<root@[^>]*>, orig_to=<root>, relay=local, .*status=sent/);
    const local = sys.roles().get("local")!;
    // hold the master so it cannot restart local yet, then take local away: the queue manager is up first
    process.kill(master, "SIGSTOP");
    try {
      process.kill(local, "SIGKILL");
      await waitFor("the local service to be gone", () => {
        try {
          return readFileSync(`/proc/${local}/stat`, "utf8").split(") ")[1]!.startsWith("Z");
        } catch {
          return true;
        }
      });
      const from = sys.log().length;
      await sys.send(["root"], message("whilelocaldown"));
      // the queue manager has the message in hand and asks private/local
      await sys.waitForLog(/postfix\/qmgr\[\d+\]: [0-9A-F]+: from=<[^>]*>, size=\d+, nrcpt=1 \(queue active\)/, 30_000, from);
    } finally {
      process.kill(master, "SIGCONT");
    }
    await waitFor("the message in root's mbox", () => mboxMessages(join(sys.spool, "root")).some((m) => m.includes("Subject: whilelocaldown\n")));
    expect(sys.log()).not.toContain("ECONNREFUSED");
    expect(sys.log()).not.toMatch(/to=<root@[^>]*>.*status=deferred/);
    await waitFor("a new local service", () => sys.roles().get("local") !== undefined && sys.roles().get("local") !== local);
    expect((await sys.stop()).code).toBe(0);
  }, 60_000);
});

