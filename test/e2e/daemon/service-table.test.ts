/**
 * The running system matches the service table
 * (src/global/system/service-table.ts): each role the master starts runs,
 * as many processes as the table says, as the user the table says (real,
 * effective, saved and file-system uid), with the unix socket the table
 * names as its descriptor 3; each socket has the table's mode and was made
 * by the master; a local worker runs as the recipient; each process starts
 * with its role's JSC options (jsc-environment.ts). The roles started on
 * demand (showq, local, pickup, qmgr, smtpd) are checked once a request
 * started them; smtpd's descriptor 3 is the TCP socket the master bound. Root only: as any
 * other user every role runs as that user and nothing is checked.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { getpwnam } from "../../../src/util/passwd.ts";
import { CHANNELS, daemonEntry, masterSingletons, SERVICE_TABLE, servedSocket, startedOnDemand, type DaemonRole } from "../../../src/global/system/service-table.ts";
import { requestJsonLine } from "../../../src/global/ipc/json-lines.ts";
import { jscEnvironment } from "../../../src/global/system/jsc-environment.ts";
import { freePort, RawSmtp } from "../../helpers/smtpd-system.ts";
import { ensureMailOwner, isRoot, MailSystem, mboxMessages, message, TestUsers, waitFor } from "../../helpers/mail-system.ts";

const users = new TestUsers("pst");
let sys: MailSystem | undefined;
afterAll(async () => {
  await sys?.cleanup();
  users.removeAll();
}, 60_000);

/** Real, effective, saved and file-system uid of `pid`. */
function uids(pid: number): number[] {
  const line = /^Uid:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]!;
  return line.trim().split(/\s+/).map(Number);
}

function argv(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

/** The BUN_JSC_ variables `pid` was started with. */
function jscOptions(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const eq = item.indexOf("=");
    if (item.startsWith("BUN_JSC_") && eq > 0) out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** The processes of the system by role (`postern ROLE ...`). */
function byRole(system: MailSystem): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const pid of system.processTree()) {
    const a = argv(pid);
    if (a[0] !== "postern" || !a[1]) continue;
    out.set(a[1], [...(out.get(a[1]) ?? []), pid]);
  }
  return out;
}

/** The path /proc/net/unix gives the socket behind descriptor `fd` of `pid`. */
function socketPathOf(pid: number, fd: number): string | undefined {
  const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
  if (!inode) return undefined;
  for (const line of readFileSync("/proc/net/unix", "utf8").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[6] === inode) return f[7];
  }
  return undefined;
}

/** The local port of the listening TCP socket at descriptor `fd` of process `pid` (/proc/net/tcp), if it is one. */
function tcpListenPortOf(pid: number, fd: number): number | undefined {
  const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
  if (!inode) return undefined;
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    // st 0A: LISTEN
    if (f[9] === inode && f[3] === "0A") return Number.parseInt(f[1]!.split(":")[1]!, 16);
  }
  return undefined;
}

/** Whether the master has a listening TCP socket on `port` among its descriptors. */
function masterHoldsPort(port: number): boolean {
  const master = sys!.masterPid()!;
  return readdirSync(`/proc/${master}/fd`).some((fd) => {
    try {
      return tcpListenPortOf(master, Number(fd)) === port;
    } catch {
      return false;
    }
  });
}

describe.skipIf(!isRoot)("the running system follows the service table", () => {
  let owner: PasswdEntry;
  let alice: PasswdEntry;
  let roles: Map<string, number[]>;
  let smtpPort: number;
  let smtpClient: RawSmtp | undefined;

  beforeAll(async () => {
    ensureMailOwner();
    owner = getpwnam("postern")!;
    sys = new MailSystem();
    alice = users.add("a", join(sys.dir, "home"));
    // one smtpd service, one process (20 sessions)
    smtpPort = freePort();
    sys.writeConfig({}, `[services.smtp]\nlisten = "127.0.0.1:${smtpPort}"\nprocess_limit = 20\n`);
    await sys.start();
    // smtpd starts for its first client too; the session stays open through the checks
    smtpClient = await RawSmtp.connect(smtpPort);
    expect((await smtpClient.reply()).startsWith("220 ")).toBe(true);
    // showq, local, pickup and qmgr run only on demand (max_idle, 100 s by default, keeps them for the
    // checks): a listing starts showq, a message pickup, qmgr and local
    expect(masterSingletons().filter((r) => startedOnDemand(r))).toEqual(["local", "qmgr", "showq", "pickup"]);
    await requestJsonLine(join(sys.queue, "public", "showq"), { command: "showq" });
    await sys.send([alice.name], message("service table start-up"));
    await waitFor("the first delivery", () => mboxMessages(join(sys!.spool, alice.name)).some((m) => m.includes("Subject: service table start-up\n")));
    const wanted = (r: Map<string, number[]>) =>
      masterSingletons().every((role) => r.get(role)?.length === 1) &&
      (r.get("smtpd")?.length ?? 0) >= 1 &&
      // a role starts as root and drops once its log is open: wait until every one that drops has
      [...r].every(([role, pids]) => !(role in SERVICE_TABLE) || daemonEntry(role as DaemonRole).runsAs === "root" || pids.every((p) => uids(p)[0] !== 0));
    roles = await waitFor("every role of the table, settled", () => {
      const r = byRole(sys!);
      return wanted(r) && r;
    });
  }, 60_000);

  test("each role runs as many processes as the table says, as the user it says", () => {
    const want = (role: DaemonRole) => (daemonEntry(role).runsAs === "root" ? 0 : owner.uid);
    expect(roles.get("master")).toHaveLength(1);
    expect(uids(roles.get("master")![0]!)).toEqual([0, 0, 0, 0]);
    for (const role of masterSingletons()) {
      expect([role, roles.get(role)!.length]).toEqual([role, 1]);
      const u = want(role);
      expect([role, uids(roles.get(role)![0]!)]).toEqual([role, [u, u, u, u]]);
    }
    for (const pid of roles.get("smtpd")!) expect(["smtpd", uids(pid)]).toEqual(["smtpd", [owner.uid, owner.uid, owner.uid, owner.uid]]);
    // nothing runs that the table does not name
    expect([...roles.keys()].filter((r) => !(r in SERVICE_TABLE))).toEqual([]);
  });

  test("each socket the table names is the master's, has the table's mode, and is its server's descriptor 3", () => {
    for (const role of Object.keys(SERVICE_TABLE) as DaemonRole[]) {
      const s = servedSocket(role);
      const pids = roles.get(role) ?? [];
      if (role === "smtpd") {
        // the TCP socket the master bound for the service's one address (src/master/smtpd-sockets.ts)
        expect(pids).toHaveLength(1);
        expect(argv(pids[0]!).join(" ")).toContain(" -s 1");
        expect(tcpListenPortOf(pids[0]!, 3)).toBe(smtpPort);
        // and the master holds it too (it is the master's while smtpd is down)
        expect(masterHoldsPort(smtpPort)).toBe(true);
        continue;
      }
      if (!s) {
        // no socket passed on: started without -s 1
        for (const pid of pids) expect([role, argv(pid).includes("-s")]).toEqual([role, false]);
        continue;
      }
      const path = join(sys!.queue, s.path);
      const st = lstatSync(path);
      expect([s.path, st.isSocket(), st.mode & 0o7777, st.uid]).toEqual([s.path, true, s.mode, 0]);
      expect(pids).toHaveLength(1);
      expect([role, argv(pids[0]!).join(" ")]).toEqual([role, expect.stringContaining(" -s 1")]);
      expect([role, socketPathOf(pids[0]!, 3)]).toEqual([role, path]);
    }
    // and no other unix channel exists in the queue
    const unix = Object.values(CHANNELS).filter((c) => c.kind === "unix").map((c) => c.path);
    expect(unix.sort()).toEqual(["private/local", "public/qmgr", "public/showq"]);
  });

  test("each process starts with its role's JSC options, and no others", () => {
    for (const [role, pids] of roles) {
      for (const pid of pids) expect([role, jscOptions(pid)]).toEqual([role, { ...jscEnvironment(role as DaemonRole) }]);
    }
    // the relay path's roles keep the DFG tier, the others run without it
    expect(jscOptions(roles.get("smtpd")![0]!).BUN_JSC_useDFGJIT).toBeUndefined();
    expect(jscOptions(roles.get("qmgr")![0]!).BUN_JSC_useDFGJIT).toBeUndefined();
    for (const role of ["master", "pickup", "showq", "local"]) expect([role, jscOptions(roles.get(role)![0]!).BUN_JSC_useDFGJIT]).toEqual([role, "0"]);
  });

  test("the local service starts a worker that runs as the recipient", async () => {
    expect(daemonEntry("local-worker")).toMatchObject({ runsAs: "recipient", startedBy: "local" });
    await sys!.send([alice.name], message("service table worker"));
    await waitFor("the delivery", () => mboxMessages(join(sys!.spool, alice.name)).some((m) => m.includes("Subject: service table worker\n")));
    // an idle worker stays a few seconds: long enough to be seen
    const worker = await waitFor("a local-worker process", () => byRole(sys!).get("local-worker")?.[0]);
    expect(uids(worker)).toEqual([alice.uid, alice.uid, alice.uid, alice.uid]);
    expect(jscOptions(worker)).toEqual({ ...jscEnvironment("local-worker") });
    expect(jscOptions(worker).BUN_JSC_useDFGJIT).toBe("0");
    const parent = Number(readFileSync(`/proc/${worker}/stat`, "utf8").split(") ")[1]!.split(" ")[1]);
    expect(parent).toBe(roles.get("local")![0]!);
  });
});
