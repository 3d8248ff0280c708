/**
 * Controlling the mail system: postern start/stop/abort/status/reload/
 * start-fg/check, the pid file, the master restarting a killed child, the
 * processes' users and environments. Runs as root in CI (the daemons drop to
 * mail_owner); tests that need root are skipped otherwise.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { getpwnam } from "../../../src/util/passwd.ts";
import { bin, cleanEnv, run } from "../../helpers/run.ts";
import { ensureMailOwner, HOST, isRoot, MailSystem, mboxMessages, message, ROLES_ON_DEMAND, ROLES_UP, waitFor } from "../../helpers/mail-system.ts";
import { requestJsonLine } from "../../../src/global/ipc/json-lines.ts";
import { ALLOCATOR_ENVIRONMENT, runtimeEnvironment } from "../../../src/global/system/child-environment.ts";
import type { DaemonRole } from "../../../src/global/system/service-table.ts";

const systems: MailSystem[] = [];
afterAll(async () => {
  await Promise.all(systems.map((s) => s.cleanup()));
});

function newSystem(params: ConstructorParameters<typeof MailSystem>[0] = {}): MailSystem {
  ensureMailOwner();
  const sys = new MailSystem(params);
  systems.push(sys);
  return sys;
}

/** root's mbox in the test spool (as root), or the invoking user's. */
function me(): string {
  return isRoot ? "root" : (process.env.USER ?? "root");
}

function inMbox(sys: MailSystem, subject: string): Promise<string> {
  const path = join(sys.spool, me());
  return waitFor(`"${subject}" in ${path}`, () => mboxMessages(path).find((m) => m.includes(`Subject: ${subject}\n`)));
}

/** Starts a role the master runs on demand with work for it: a listing for showq, a flush for qmgr, a message for pickup and local. */
async function wake(sys: MailSystem, role: string): Promise<void> {
  if (role === "showq") await requestJsonLine(join(sys.queue, "public", "showq"), { command: "showq" });
  else if (role === "qmgr") await requestJsonLine(join(sys.queue, "public", "qmgr"), { command: "flush", kind: "all" });
  else if (role === "local" || role === "pickup") {
    const subject = `wake-${Date.now()}-${Math.random()}`;
    await sys.send([me()], message(subject));
    await inMbox(sys, subject);
  } else throw new Error(`${role} is not started on demand`);
}

function procStatus(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, "utf8").split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) out[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return out;
}

function environ(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const eq = item.indexOf("=");
    if (eq > 0) out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

describe("start, status, stop", () => {
  let sys: MailSystem;
  beforeAll(() => {
    sys = newSystem();
  });

  test("status is 1 before start, 0 while running, 1 after stop; the pid file names the master", async () => {
    const before = await sys.postern(["status"]);
    expect(before.code).toBe(1);
    expect(before.stderr).toContain("the mail system is not running");
    await sys.start();
    const pid = sys.masterPid()!;
    expect(sys.roles().get("master")).toBe(pid);
    const running = await sys.postern(["status"]);
    expect(running.code).toBe(0);
    expect(running.stderr).toContain(`the mail system is running: PID: ${pid}`);
    // the postfix name takes the same words
    expect((await run("postfix", ["-c", sys.etc, "status"])).code).toBe(0);
    const stopped = await sys.stop();
    expect(stopped.code).toBe(0);
    // stop returns once the system has stopped: no pid file, no processes
    expect(existsSync(join(sys.queue, "pid", "master.pid"))).toBe(false);
    expect((await sys.postern(["status"])).code).toBe(1);
    await waitFor("the master to be gone", () => sys.processTree().length === 0);
    expect(sys.log()).toMatch(/postfix\/master\[\d+\]: terminating on signal TERM/);
    // every role that runs at idle (local and showq run only on demand: none was asked for here)
    for (const role of ROLES_UP.filter((r) => r !== "master")) expect(sys.log()).toMatch(new RegExp(`postfix/${role}\\[\\d+\\]: stopped`));
    expect(sys.log()).not.toMatch(/postfix\/(local|showq)\[/);
  });

  test("start refuses while the system runs; stop, reload and flush refuse while it does not", async () => {
    await sys.start();
    const pid = sys.masterPid();
    const again = await sys.postern(["start"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("the mail system is already running");
    expect(sys.masterPid()).toBe(pid);
    expect((await sys.stop()).code).toBe(0);
    for (const word of ["stop", "reload"]) {
      const r = await sys.postern([word]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("the mail system is not running");
    }
    const flush = await sys.postern(["flush"]);
    expect(flush.code).toBe(69);
    expect(flush.stderr).toContain("mail system is down");
  });

  test("the postfix name: postfix -c DIR start, status, stop", async () => {
    const started = await run("postfix", ["-c", sys.etc, "start"]);
    expect(started.code).toBe(0);
    expect(started.stderr).toContain("postfix: starting the mail system");
    await waitFor("the queue manager's socket", () => existsSync(join(sys.queue, "public", "qmgr")));
    sys.track();
    expect((await run("postfix", ["-c", sys.etc, "status"])).code).toBe(0);
    await sys.send([me()], message("viapostfix"));
    await inMbox(sys, "viapostfix");
    const stopped = await run("postfix", ["-c", sys.etc, "stop"]);
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toContain("postfix: stopping the mail system");
    expect((await run("postfix", ["-c", sys.etc, "status"])).code).toBe(1);
  });

  test("abort stops the system at once", async () => {
    await sys.start();
    const r = await sys.postern(["abort"]);
    expect(r.code).toBe(0);
    expect((await sys.postern(["status"])).code).toBe(1);
    await waitFor("the processes to be gone", () => sys.processTree().length === 0);
    expect(sys.log()).toContain("terminating on signal (abort)");
  });

  test("a second master on the same queue refuses to run", async () => {
    await sys.start();
    const r = await run("postern", ["master", "-c", sys.etc]);
    expect(r.code).toBe(75);
    expect(r.stderr).toContain("postern/master: fatal: the mail system is already running");
    expect(sys.log()).toMatch(/postfix\/master\[\d+\]: fatal: the mail system is already running/);
    expect((await sys.postern(["status"])).code).toBe(0);
    await sys.stop();
  });
});

describe("the master's children", () => {
  let sys: MailSystem;
  beforeAll(async () => {
    sys = newSystem();
    await sys.start();
  });

  test.skipIf(!isRoot)("master and local run as root, pickup, qmgr and showq as mail_owner; children get a clean environment", async () => {
    const owner = getpwnam("postern")!;
    const uids = (pid: number) => procStatus(pid).Uid!.split(/\s+/).map(Number);
    for (const role of ROLES_ON_DEMAND) await wake(sys, role);
    // a role starts as root and drops once its log is open: wait until both have
    const roles = await waitFor("all roles, settled", () => {
      const r = sys.roles();
      return ["master", "pickup", "qmgr", "showq", "local"].every((n) => r.has(n)) && ["pickup", "qmgr", "showq"].every((n) => uids(r.get(n)!)[0] !== 0) && r;
    });
    const gids = (pid: number) => procStatus(pid).Gid!.split(/\s+/).map(Number);
    expect(uids(roles.get("master")!)).toEqual([0, 0, 0, 0]);
    expect(uids(roles.get("local")!)).toEqual([0, 0, 0, 0]);
    for (const role of ["pickup", "qmgr", "showq"]) {
      expect(uids(roles.get(role)!)).toEqual([owner.uid, owner.uid, owner.uid, owner.uid]);
      expect(gids(roles.get(role)!)).toEqual([owner.gid, owner.gid, owner.gid, owner.gid]);
    }
    const allowed = new Set(["PATH", "MAIL_CONFIG", "MAIL_DEBUG", "MAIL_LOGTAG", "TZ", "XAUTHORITY", "DISPLAY", "LANG", "POSTLOG_SERVICE", "POSTLOG_HOSTNAME", ...Object.keys(ALLOCATOR_ENVIRONMENT)]);
    for (const [role, pid] of roles) {
      const env = environ(pid);
      // and the runtime's settings for the role: the allocator's and JSC's (jsc-environment.ts), the master included
      const runtime = runtimeEnvironment(role as DaemonRole);
      expect([role, Object.keys(env).filter((k) => !allowed.has(k) && !(k in runtime))]).toEqual([role, []]);
      expect(env).toMatchObject(runtime);
      if (role !== "master") expect(env.MAIL_CONFIG).toBe(sys.etc);
    }
  });

  test("a child killed with SIGKILL is restarted, and mail still flows", async () => {
    for (const role of ["qmgr", "showq", "pickup", "local"]) {
      const onDemand = ROLES_ON_DEMAND.includes(role);
      if (onDemand && !sys.roles().has(role)) await wake(sys, role);
      const old = await waitFor(`the ${role} process`, () => sys.roles().get(role));
      process.kill(old, "SIGKILL");
      // one started on demand is started again by the next request, once its backoff is over
      if (onDemand) {
        await waitFor(`the ${role} process to be gone`, () => sys.roles().get(role) !== old);
        await wake(sys, role);
      }
      const fresh = await waitFor(`a new ${role} process`, () => {
        const pid = sys.roles().get(role);
        return pid !== undefined && pid !== old && pid;
      });
      expect(fresh).not.toBe(old);
      await sys.waitForLog(new RegExp(`postfix/master\\[\\d+\\]: warning: process postern/${role} pid ${old} exit signal SIGKILL; restarting`));
      sys.track();
    }
    await waitFor("the queue manager's socket", () => existsSync(join(sys.queue, "public", "qmgr")));
    await sys.send([me()], message("afterkill"));
    await inMbox(sys, "afterkill");
  }, 30_000);

  test("kill -9 of the master: its children leave, status says not running, start works again", async () => {
    const tree = sys.processTree();
    const master = sys.masterPid()!;
    process.kill(master, "SIGKILL");
    await waitFor("every child to leave", () => tree.every((pid) => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.startsWith("Z")), 15_000);
    expect((await sys.postern(["status"])).code).toBe(1);
    // the stale pid file does not block a start
    expect(existsSync(join(sys.queue, "pid", "master.pid"))).toBe(true);
    await sys.start();
    expect(sys.masterPid()).not.toBe(master);
    await sys.send([me()], message("aftermasterkill"));
    await inMbox(sys, "aftermasterkill");
    await sys.stop();
  });
});

describe("start after a crash", () => {
  test("temporary files that crashed writers left in the queue are removed, with a log line (issue 9, item 19)", async () => {
    const sys = newSystem();
    await sys.start();
    await sys.stop();
    const dead = Bun.spawnSync(["true"]).pid;
    const left = join(sys.queue, "incoming", `t.${dead}.crashed`);
    writeFileSync(left, "postern-queue 1\nT 1\nS \n");
    const tenMinutesAgo = new Date(Date.now() - 10 * 60 * 1000);
    utimesSync(left, tenMinutesAgo, tenMinutesAgo);
    await sys.start();
    expect(existsSync(left)).toBe(false);
    expect(sys.log()).toMatch(new RegExp(`postfix/postsuper\\[\\d+\\]: removed stale temporary file incoming/t\\.${dead}\\.crashed \\(left by a crashed writer\\)\n`));
    await sys.stop();
  });
});

describe("start-fg", () => {
  test("runs in the foreground, logs to stdout when maillog_file is unset, stops on SIGTERM", async () => {
    const sys = newSystem();
    sys.writeConfig({ maillog_file: undefined });
    const proc = Bun.spawn([bin("postern"), "start-fg", "-c", sys.etc], { env: cleanEnv(), stdin: "ignore", stdout: "pipe", stderr: "pipe", argv0: bin("postern") });
    let out = "";
    const reader = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of proc.stdout) out += decoder.decode(chunk, { stream: true });
    })();
    try {
      await waitFor("the master's start line on stdout", () => /postfix\/master\[\d+\]: daemon started/.test(out));
      expect((await sys.postern(["status"])).code).toBe(0);
      await waitFor("the queue manager's socket", () => existsSync(join(sys.queue, "public", "qmgr")));
      await sys.send([me()], message("foreground"));
      await inMbox(sys, "foreground");
      await waitFor("the delivery line on stdout", () => new RegExp(`postfix/local\\[\\d+\\]: [0-9A-F]+: to=<${me()}@${HOST}>.*status=sent`).test(out));
      expect(out).toMatch(/postfix\/pickup\[\d+\]: [0-9A-F]+: uid=\d+ from=</);
      expect(existsSync(sys.maillog)).toBe(false);
      sys.track();
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
      await reader;
      expect(out).toMatch(/postfix\/master\[\d+\]: terminating on signal TERM/);
      expect((await sys.postern(["status"])).code).toBe(1);
    } finally {
      proc.kill("SIGKILL");
    }
  });
});

describe("reload", () => {
  test("a configuration error is refused and the running system keeps its configuration", async () => {
    const sys = newSystem();
    await sys.start();
    const pid = sys.masterPid();
    writeFileSync(join(sys.etc, "postern.toml"), readFileSync(join(sys.etc, "postern.toml"), "utf8") + 'message_size_limit = "lots"\n');
    const r = await sys.postern(["reload"]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain("refusing to reload");
    expect(sys.masterPid()).toBe(pid);
    sys.writeConfig();
    await sys.send([me()], message("afterbadreload"));
    await inMbox(sys, "afterbadreload");
    const ok = await sys.postern(["reload"]);
    expect(ok.code).toBe(0);
    await sys.waitForLog(/postfix\/master\[\d+\]: reload -- version/);
    await sys.stop();
  });
});

describe("check", () => {
  const expected: Record<string, number> = {
    maildrop: 0o3733, incoming: 0o700, active: 0o700, deferred: 0o700, hold: 0o700, corrupt: 0o700,
    defer: 0o700, bounce: 0o700, pid: 0o755, public: 0o755, private: 0o700,
  };

  test("creates the queue directories with their modes and owner, and repairs them", async () => {
    const sys = newSystem();
    const owner = isRoot ? getpwnam("postern")! : { uid: process.getuid!(), gid: process.getgid!() };
    const first = await sys.postern(["check"]);
    expect(first.code).toBe(0);
    for (const [name, mode] of Object.entries(expected)) {
      expect(first.stderr).toContain(`${sys.queue}: created ${name}`);
      const st = statSync(join(sys.queue, name));
      expect([name, st.mode & 0o7777]).toEqual([name, mode]);
      // pid/ is root's (Postfix's postfix-files): root's commands read and write there
      const want = isRoot && name === "pid" ? { uid: 0, gid: 0 } : owner;
      expect([name, st.uid, st.gid]).toEqual([name, want.uid, want.gid]);
    }
    // damage: wrong modes, and (as root) a wrong owner
    chmodSync(join(sys.queue, "maildrop"), 0o777);
    chmodSync(join(sys.queue, "deferred"), 0o755);
    if (isRoot) chownSync(join(sys.queue, "active"), 0, 0);
    const second = await sys.postern(["check"]);
    expect(second.code).toBe(0);
    expect(second.stderr).toContain(`${sys.queue}: fixed mode of maildrop: 777 -> 3733`);
    expect(second.stderr).toContain(`${sys.queue}: fixed mode of deferred: 755 -> 700`);
    if (isRoot) expect(second.stderr).toContain(`${sys.queue}: fixed owner of active`);
    for (const [name, mode] of Object.entries(expected)) {
      const st = statSync(join(sys.queue, name));
      expect([name, st.mode & 0o7777, st.uid]).toEqual([name, mode, isRoot && name === "pid" ? 0 : owner.uid]);
    }
    // nothing left to do
    const third = await sys.postern(["check"]);
    expect(third.code).toBe(0);
    expect(third.stderr).not.toMatch(/created|fixed/);
    // set-permissions makes the same repairs
    chmodSync(join(sys.queue, "maildrop"), 0o1733);
    const repaired = await sys.postern(["set-permissions"]);
    expect(repaired.code).toBe(0);
    expect(repaired.stderr).toContain(`${sys.queue}: fixed mode of maildrop: 1733 -> 3733`);
    expect(statSync(join(sys.queue, "maildrop")).mode & 0o7777).toBe(0o3733);
  });

  test.skipIf(!isRoot)("check with a mail_owner that does not exist says how to create it", async () => {
    const sys = newSystem({ mail_owner: "no-such-postern-user" });
    const r = await sys.postern(["check"]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('mail_owner "no-such-postern-user" is not a user on this system; create it with: useradd --system');
  });
});
