/**
 * Services started on demand (issue 16, session 4; the queue manager since
 * session 10): at idle the master runs no showq, local, pickup or qmgr
 * process (the service table's `onDemand`); a connection to public/showq,
 * private/local or public/qmgr waits in the master's socket (a file in
 * maildrop/ or incoming/ waits there) until the master has started the
 * service, which serves it and exits by
 * itself after max_idle (1 s here) without a connection, with no warning
 * from the master; the next request starts it again; a crashed on-demand
 * service is logged and started again for the next request. The queue
 * manager stays while deferred mail waits for a retry, and the master
 * watches incoming/ and deferred/ only while it is down. Runs as root
 * (the services drop as the table says) or as any user (everything runs as
 * that user).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { join } from "node:path";
import { getpwnam } from "../../../src/util/passwd.ts";
import { requestJsonLine } from "../../../src/global/ipc/json-lines.ts";
import { catchesSigterm, ensureMailOwner, isRoot, MailSystem, mboxMessages, message, ROLES_ON_DEMAND, ROLES_UP, TestUsers, waitFor } from "../../helpers/mail-system.ts";
import { bin, cleanEnv, run } from "../../helpers/run.ts";
import { freePort, RawSmtp, SmtpdSystem } from "../../helpers/smtpd-system.ts";

const users = new TestUsers("pod");
let sys: MailSystem;

beforeAll(async () => {
  ensureMailOwner();
  sys = new MailSystem({ max_idle: "1s" });
  await sys.start();
}, 60_000);

afterAll(async () => {
  await sys?.cleanup();
  users.removeAll();
}, 60_000);

/** root's mbox in the test spool (as root), or the invoking user's. */
function me(): string {
  return isRoot ? "root" : (process.env.USER ?? "root");
}

function inMbox(subject: string): Promise<string> {
  const path = join(sys.spool, me());
  return waitFor(`"${subject}" in ${path}`, () => mboxMessages(path).find((m) => m.includes(`Subject: ${subject}\n`)));
}

describe("an SMTP service started on demand", () => {
  let smtp: SmtpdSystem;
  beforeAll(async () => {
    smtp = new SmtpdSystem({ max_idle: "1s" });
    await smtp.start();
  }, 60_000);
  afterAll(async () => {
    await smtp?.cleanup();
  }, 60_000);

  const smtpdGone = () => waitFor("no smtpd process", () => smtp.roles().get("smtpd") === undefined);

  test("the master holds the port; smtpd starts for the first client, serves it, leaves after max_idle, and starts again for the next", async () => {
    await smtpdGone();
    // the port is the master's while no smtpd runs: a client's connection waits for smtpd in the backlog
    const master = smtp.masterPid()!;
    const client = await RawSmtp.connect(smtp.port);
    expect((await client.reply()).startsWith("220 ")).toBe(true);
    const pid = await waitFor("the smtpd process", () => smtp.roles().get("smtpd"));
    if (isRoot) {
      const owner = getpwnam("postern")!.uid;
      expect(uids(pid)).toEqual([owner, owner, owner, owner]);
    }
    // an open session keeps it past max_idle
    expect(await client.cmd("EHLO client.example")).toMatch(/^250-/);
    expect(smtp.roles().get("smtpd")).toBe(pid);
    expect(await client.cmd("QUIT")).toMatch(/^221 /);
    client.destroy();
    await smtpdGone();
    expect(smtp.masterPid()).toBe(master);
    const again = await RawSmtp.connect(smtp.port);
    expect((await again.reply()).startsWith("220 ")).toBe(true);
    expect(await waitFor("a new smtpd process", () => smtp.roles().get("smtpd"))).not.toBe(pid);
    again.destroy();
    expect(smtp.log()).not.toMatch(/warning: process postern\/smtpd/);
  }, 60_000);

  test("a port in use stops the start, naming the service and the address", async () => {
    const port = freePort();
    const blocker = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
    const busy = new SmtpdSystem({}, { smtp: { listen: `127.0.0.1:${port}` } });
    try {
      const r = await busy.postern(["start"]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`service smtp: cannot listen on 127.0.0.1:${port}: bind: Address already in use`);
      expect(busy.masterPid()).toBeUndefined();
    } finally {
      blocker.stop(true);
      await busy.cleanup();
    }
  }, 60_000);
});

function uids(pid: number): number[] {
  return /^Uid:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]!.trim().split(/\s+/).map(Number);
}

/** A connection to a service's socket that stays open (and keeps the service busy) until it is destroyed. */
async function holdConnection(path: string): Promise<Socket> {
  const s = createConnection(path);
  await new Promise<void>((resolve, reject) => {
    s.once("connect", () => resolve());
    s.once("error", reject);
  });
  s.on("error", () => undefined);
  return s;
}

/** The role's process once it runs with its handlers installed. */
function running(role: string, not?: number): Promise<number> {
  return waitFor(`a running ${role} process`, () => {
    const pid = sys.roles().get(role);
    return pid !== undefined && pid !== not && catchesSigterm(pid) && pid;
  });
}

/** Whether the process has an inotify watch on the directory (/proc/PID/fdinfo of its inotify descriptors). */
function watches(pid: number, dir: string): boolean {
  const ino = `ino:${statSync(dir).ino.toString(16)} `;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    if (target !== "anon_inode:inotify") continue;
    const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8");
    if (info.split("\n").some((l) => l.startsWith("inotify ") && l.includes(ino))) return true;
  }
  return false;
}

function gone(role: string): Promise<true> {
  return waitFor(`no ${role} process`, () => sys.roles().get(role) === undefined);
}

describe("services started on demand", () => {
  test("at idle the system runs no showq, local, pickup or qmgr process", async () => {
    expect(ROLES_ON_DEMAND.sort()).toEqual(["local", "pickup", "qmgr", "showq"]);
    const roles = sys.roles();
    expect(ROLES_UP.every((r) => roles.has(r))).toBe(true);
    for (const role of ROLES_ON_DEMAND) expect([role, roles.has(role)]).toEqual([role, false]);
    expect(sys.log()).not.toMatch(/warning: process postern\/(showq|local|pickup|qmgr)/);
  });

  test("a flush request starts the queue manager, which answers it and leaves after max_idle", async () => {
    const path = join(sys.queue, "public", "qmgr");
    const master = sys.masterPid()!;
    await gone("qmgr");
    await waitFor("the master to watch incoming/ and deferred/", () => watches(master, join(sys.queue, "incoming")) && watches(master, join(sys.queue, "deferred")));
    expect(await requestJsonLine(path, { command: "flush", kind: "all" })).toEqual({ moved: 0 });
    const pid = await running("qmgr");
    if (isRoot) {
      const owner = getpwnam("postern")!.uid;
      await waitFor("qmgr to drop to mail_owner", () => uids(pid)[0] !== 0);
      expect(uids(pid)).toEqual([owner, owner, owner, owner]);
    }
    // while it runs, the master does not watch its queues
    expect([watches(master, join(sys.queue, "incoming")), watches(master, join(sys.queue, "deferred"))]).toEqual([false, false]);
    await gone("qmgr");
    await waitFor("the master to watch incoming/ again", () => watches(master, join(sys.queue, "incoming")));
    expect(sys.log()).not.toMatch(/warning: process postern\/qmgr/);
  }, 60_000);

  test("a showq request starts showq, which serves it and exits after max_idle; the next one starts it again", async () => {
    const path = join(sys.queue, "public", "showq");
    // a connection kept open: showq runs as long as it is open
    const held = await holdConnection(path);
    const pid = await running("showq");
    if (isRoot) {
      const owner = getpwnam("postern")!.uid;
      await waitFor("showq to drop to mail_owner", () => uids(pid)[0] !== 0);
      expect(uids(pid)).toEqual([owner, owner, owner, owner]);
    }
    const answer = await requestJsonLine(path, { command: "showq" });
    expect(answer).toEqual({ entries: [], truncated: false });
    held.destroy();
    await gone("showq");
    // mailq (as a user who cannot read the queue, so it asks showq) starts it again
    if (isRoot) {
      const user = users.add("q", join(sys.dir, "home"));
      const r = Bun.spawnSync(["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", bin("mailq"), "-C", sys.etc], { env: cleanEnv(), stdout: "pipe", stderr: "pipe" });
      expect([r.exitCode, r.stderr.toString(), r.stdout.toString()]).toEqual([0, "", "Mail queue is empty\n"]);
    } else {
      expect(await requestJsonLine(path, { command: "showq" })).toEqual({ entries: [], truncated: false });
    }
    await gone("showq");
    // an idle exit is normal: the master says nothing about it
    expect(sys.log()).not.toMatch(/warning: process postern\/showq/);
  }, 60_000);

  test("a submission after pickup and the local service idled out still arrives", async () => {
    // sendmail's file in maildrop/ starts pickup, the queue manager's request starts local
    await sys.send([me()], message("ondemand-first"));
    await inMbox("ondemand-first");
    await gone("pickup");
    // the queue manager keeps its connection a few seconds; then local idles out, and the queue manager
    await gone("local");
    await gone("qmgr");
    await sys.send([me()], message("ondemand-second"));
    await inMbox("ondemand-second");
    await gone("pickup");
    expect(sys.log()).not.toMatch(/warning: process postern\/(local|pickup|qmgr)/);
    expect(sys.log()).not.toMatch(/status=deferred/);
  }, 60_000);

  test("the master watches maildrop/ only while pickup is down", async () => {
    const maildrop = join(sys.queue, "maildrop");
    const master = sys.masterPid()!;
    await gone("pickup");
    await waitFor("the master to watch maildrop/", () => watches(master, maildrop));
    await sys.send([me()], message("ondemand-watch"));
    // read while the same pickup process runs before and after the look (it idles out after 1 s)
    const whileUp = await waitFor("a look while pickup runs", () => {
      const pid = sys.roles().get("pickup");
      if (pid === undefined) return undefined;
      const watching = watches(master, maildrop);
      return sys.roles().get("pickup") === pid && { watching };
    });
    expect(whileUp).toEqual({ watching: false });
    await inMbox("ondemand-watch");
    await gone("pickup");
    await waitFor("the master to watch maildrop/ again", () => watches(master, maildrop));
    // and the watch starts pickup for the next submission
    await sys.send([me()], message("ondemand-watch-again"));
    await inMbox("ondemand-watch-again");
    expect(sys.log()).not.toMatch(/warning: process postern\/pickup/);
  }, 60_000);

  test("a crashed on-demand service is logged and started again for the next request", async () => {
    const path = join(sys.queue, "public", "showq");
    const held = await holdConnection(path);
    const pid = await running("showq");
    process.kill(pid, "SIGKILL");
    await sys.waitForLog(new RegExp(`postfix/master\\[\\d+\\]: warning: process postern/showq pid ${pid} exit signal SIGKILL; restarting in 1s`));
    held.destroy();
    // served once the backoff is over
    expect(await requestJsonLine(path, { command: "showq" })).toEqual({ entries: [], truncated: false });
    sys.track();
  }, 60_000);

  test("stopping the system stops a running on-demand service too", async () => {
    const held = await holdConnection(join(sys.queue, "public", "showq"));
    const pid = await running("showq");
    const tree = sys.processTree();
    expect((await sys.stop()).code).toBe(0);
    held.destroy();
    expect(tree).toContain(pid);
    await waitFor("every process of the system to be gone", () => tree.every((p) => {
      try {
        return readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]!.startsWith("Z");
      } catch {
        return true;
      }
    }));
  }, 60_000);
});

describe("the queue manager with deferred mail", () => {
  let deferring: MailSystem;
  beforeAll(async () => {
    // remote mail is deferred (retry:), retried every second
    deferring = new MailSystem({ max_idle: "1s", default_transport: "retry:4.4.1 the test defers remote mail", queue_run_delay: "1s", minimal_backoff_time: "1s", maximal_backoff_time: "1s" });
    await deferring.start();
  }, 60_000);
  afterAll(async () => {
    await deferring?.cleanup();
  }, 60_000);

  test("stays past max_idle while deferred mail waits, and leaves once the queue is empty", async () => {
    const deferrals = () => deferring.log().match(/to=<bob@example\.net>.*status=deferred/g)?.length ?? 0;
    await deferring.send(["bob@example.net"], message("ondemand-deferred"));
    await waitFor("a first deferral", () => deferrals() >= 1);
    const pid = deferring.roles().get("qmgr");
    expect(pid).toBeDefined();
    // a retry a second apart: three more span more than max_idle
    await waitFor("three more deferrals", () => deferrals() >= 4, 30_000);
    expect(deferring.roles().get("qmgr")).toBe(pid!);
    expect(deferring.log()).not.toMatch(/warning: process postern\/qmgr/);
    // with the queue emptied, it leaves
    expect((await run("postsuper", ["-c", deferring.etc, "-d", "ALL"])).code).toBe(0);
    await waitFor("no qmgr process", () => deferring.roles().get("qmgr") === undefined);
  }, 60_000);
});
