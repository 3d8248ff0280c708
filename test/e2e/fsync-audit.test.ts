/**
 * The syscall audit of issue 9: a message is acknowledged only once it is
 * durable. The whole mail system runs under `strace -f` (`postern start-fg`
 * as strace's child, so no ptrace permission beyond our own is needed); 20
 * messages go in over one SMTP session alone (smtpd then commits on its
 * event loop), then 200 in 4 concurrent sessions (through the thread pool)
 * and 100 through `sendmail`, each sendmail under its own strace. From the
 * traces:
 *
 * - every "250 2.0.0 Ok: queued as ID" smtpd writes to a client comes after
 *   smtpd's fsync of the queue file (finished before the rename into
 *   incoming/ID started) and its fsync of incoming/ (started after the rename
 *   finished), and before any of it would be lost in a crash; the lone
 *   session's fsyncs ran on smtpd's main thread;
 * - the queue manager removed every message from active/ only after it had
 *   written its D record and fsynced it; first 3 messages go in one at a
 *   time, each delivered before the next: being the only delivery, its
 *   fsync ran on the queue manager's own thread, and the file was removed
 *   without asking first whether it was there;
 * - every sendmail that exits 0 fsynced its maildrop file before renaming it
 *   to its queue ID and fsynced maildrop/ after the rename; as root, every
 *   fifth sendmail runs as an ordinary user, who may not open maildrop/
 *   (mode 3733) and fsyncs the renamed file again instead, as
 *   docs/queue-file.md says (no directory fsync is possible for them).
 *
 * Ordering is by the lines of the trace (strace prints events in the order
 * it sees them: a call that finished on line N finished before a call that
 * started on a later line), not by timestamps. Skipped, with a message, when
 * strace is not installed (.ci/run installs it).
 *
 * Runs as root (the daemons drop to mail_owner) or as a normal user.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { bin, cleanEnv } from "../helpers/run.ts";
import { fdPath, parseTrace, processOfThread, quotedArgs, type SyscallEvent, type Trace } from "../helpers/strace.ts";
import type { PasswdEntry } from "../../src/util/passwd.ts";
import { HOST, isRoot, TestUsers, waitFor } from "../helpers/mail-system.ts";
import { RawSmtp, SmtpdSystem } from "../helpers/smtpd-system.ts";

const SYSCALLS = "fsync,fdatasync,rename,renameat,renameat2,write,writev,sendto,sendmsg,openat,clone,clone3,fork,vfork,execve,unlink,unlinkat,access,faccessat,faccessat2";

/** strace, when it is installed and may trace here (a container without ptrace says no). */
function usableStrace(): string | undefined {
  const path = Bun.which("strace");
  if (!path) {
    console.warn("fsync-audit: strace is not installed (Debian package strace; .ci/run installs it): the syscall audit is skipped");
    return undefined;
  }
  const probe = Bun.spawnSync([path, "-f", "-qq", "--seccomp-bpf", "-o", "/dev/null", "-e", `trace=${SYSCALLS}`, "--", "true"], { stdout: "ignore", stderr: "pipe" });
  if (probe.exitCode !== 0) {
    console.warn(`fsync-audit: strace cannot trace here (${probe.stderr.toString().trim()}): the syscall audit is skipped`);
    return undefined;
  }
  return path;
}

const STRACE = usableStrace();

const ALONE_MESSAGES = 3;
const LONE_MESSAGES = 20;
const SESSIONS = 4;
const PER_SESSION = 50;
const SENDMAILS = 100;
const SENDMAIL_PARALLEL = 4;

const FSYNCS = new Set(["fsync", "fdatasync"]);
const RENAMES = new Set(["rename", "renameat", "renameat2"]);
const REPLY_WRITES = new Set(["write", "writev", "sendto", "sendmsg"]);
const UNLINKS = new Set(["unlink", "unlinkat"]);
const ACCESSES = new Set(["access", "faccessat", "faccessat2"]);

/** A path relative to the queue directory: -y prints resolved paths, the program the ones it was given. */
function inQueue(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  const at = path.lastIndexOf("/queue/");
  return at < 0 ? undefined : path.slice(at + "/queue/".length);
}

/** The rename, file fsync and directory fsync that must precede an acknowledgement of queue file `dir/id`. */
function commitOf(events: SyscallEvent[], dir: string, id: string, before: number): { rename?: SyscallEvent; fileSync?: SyscallEvent; dirSync?: SyscallEvent } {
  const rename = events.find((e) => RENAMES.has(e.name) && e.ret === 0 && e.exit < before && inQueue(quotedArgs(e.args)[1]) === `${dir}/${id}`);
  if (!rename) return {};
  const source = inQueue(quotedArgs(rename.args)[0]);
  const fileSync = events.find((e) => FSYNCS.has(e.name) && e.ret === 0 && e.exit < rename.entry && inQueue(fdPath(e.args)) === source);
  const dirSync = events.find((e) => FSYNCS.has(e.name) && e.ret === 0 && e.entry > rename.exit && e.exit < before && inQueue(fdPath(e.args)) === dir);
  return { rename, fileSync, dirSync };
}

/** Sends `count` messages in one SMTP session (MAIL, RCPT, DATA pipelined); returns the queue IDs of the 250 replies. */
async function smtpSession(port: number, tag: string, count: number): Promise<string[]> {
  const c = await RawSmtp.connect(port);
  const ids: string[] = [];
  try {
    expect(await c.reply()).toStartWith("220 ");
    expect(await c.cmd("EHLO client.example.test")).toStartWith("250");
    for (let i = 0; i < count; i++) {
      c.send(`MAIL FROM:<sender@example.test>\r\nRCPT TO:<root@${HOST}>\r\nDATA\r\n`);
      expect(await c.reply()).toStartWith("250 ");
      expect(await c.reply()).toStartWith("250 ");
      expect(await c.reply()).toStartWith("354 ");
      c.send(`Subject: fsync audit ${tag}-${i}\r\nMessage-Id: <${tag}-${i}@test>\r\n\r\nbody ${i}\r\n.\r\n`);
      const r = await c.reply(30_000);
      const m = /^250 2\.0\.0 Ok: queued as ([0-9A-F]+)\r\n$/.exec(r);
      if (!m) throw new Error(`end of data got ${JSON.stringify(r)}`);
      ids.push(m[1]!);
    }
    await c.quit();
  } finally {
    c.destroy();
  }
  return ids;
}

interface SendmailRun {
  i: number;
  /** The submitting user; undefined for the test's own (root's) sendmail. */
  user: string | undefined;
  code: number;
  trace: string;
  stderr: string;
}

/** One sendmail under strace (as `user` through setpriv when given); resolves with its exit code and trace. */
async function tracedSendmail(etc: string, traceFile: string, i: number, user?: PasswdEntry): Promise<SendmailRun> {
  const asUser = user ? ["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups"] : [];
  const proc = Bun.spawn([STRACE!, "-f", "-qq", "--seccomp-bpf", "-y", "-s", "256", "-o", traceFile, "-e", `trace=${SYSCALLS}`, "--", ...asUser, bin("sendmail"), "-C", etc, "-i", "--", `root@${HOST}`], {
    env: cleanEnv(user ? { HOME: user.home, USER: user.name, LOGNAME: user.name } : {}),
    cwd: "/",
    stdin: new Blob([`Subject: fsync audit sendmail-${i}\nMessage-Id: <sendmail-${i}@test>\n\nbody ${i}\n`]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 60_000);
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { i, user: user?.name, code, trace: readFileSync(traceFile, "utf8"), stderr };
}

describe.skipIf(!STRACE)("fsync audit (strace)", () => {
  let sys: SmtpdSystem | undefined;
  let strace: ReturnType<typeof Bun.spawn> | undefined;
  const users = new TestUsers("fsa");

  afterAll(async () => {
    await sys?.cleanup();
    users.removeAll();
    if (strace && strace.exitCode === null) {
      strace.kill("SIGKILL");
      await strace.exited;
    }
  });

  test(
    "every 250 to end-of-data and every sendmail exit 0 come after fsync of the queue file and of its directory",
    async () => {
      // delivery discards: each message is delivered once, the queue drains, nothing retries
      const system = new SmtpdSystem({ default_transport: "discard:", local_transport: "discard:", relay_transport: "discard:" });
      sys = system;
      const traceFile = join(system.dir, "daemons.strace");
      // the whole system as strace's descendants: --seccomp-bpf stops them only at the traced calls
      strace = Bun.spawn([STRACE!, "-f", "-qq", "--seccomp-bpf", "-y", "-s", "256", "-o", traceFile, "-e", `trace=${SYSCALLS}`, "--", bin("postern"), "start-fg", "-c", system.etc], {
        env: cleanEnv(),
        cwd: "/",
        stdin: "ignore",
        stdout: "ignore",
        stderr: "pipe",
      });
      await waitFor("the queue manager's socket", () => existsSync(join(system.queue, "public", "qmgr")) || strace!.exitCode !== null, 30_000);
      expect(strace.exitCode).toBeNull();
      await waitFor(
        "smtpd's greeting",
        async () => {
          try {
            const c = await RawSmtp.connect(system.port);
            const greeting = await c.reply(5000);
            c.destroy();
            return greeting.startsWith("220 ");
          } catch {
            return false;
          }
        },
        30_000,
      );
      system.track();

      // first a few messages one at a time, each delivered and removed before the next is sent: each is the
      // queue manager's only delivery, whose D-record fsync then runs on its event loop (src/qmgr/schedule.ts)
      const alone: string[] = [];
      for (let i = 0; i < ALONE_MESSAGES; i++) {
        const [id] = await smtpSession(system.port, `alone${i}`, 1);
        alone.push(id!);
        await waitFor(`${id} delivered and removed`, () => ["incoming", "active"].every((q) => !existsSync(join(system.queue, q, id!))), 30_000);
      }
      // then one session alone, whose commits run every step on smtpd's event loop (src/smtpd/queue-sink.ts)
      const lone = await smtpSession(system.port, "lone", LONE_MESSAGES);
      // then 200 messages over SMTP, 4 sessions at once, while 100 sendmails run 4 at a time
      const sessions = Promise.all(Array.from({ length: SESSIONS }, (_, s) => smtpSession(system.port, `s${s}`, PER_SESSION)));
      // as root, every fifth sendmail runs as an ordinary user, who cannot open maildrop/ (mode 3733) to fsync it
      const user = isRoot ? users.add("u", join(system.dir, "home")) : undefined;
      const sendmails: SendmailRun[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: SENDMAIL_PARALLEL }, async () => {
          while (next < SENDMAILS) {
            const i = next++;
            sendmails.push(await tracedSendmail(system.etc, join(system.dir, `sendmail-${i}.strace`), i, i % 5 === 4 ? user : undefined));
          }
        }),
      );
      const ids = [...alone, ...lone, ...(await sessions).flat()];
      expect(ids.length).toBe(ALONE_MESSAGES + LONE_MESSAGES + SESSIONS * PER_SESSION);
      expect(new Set(ids).size).toBe(ids.length);

      // every message delivered (the checks below follow each one to its removal from active/), then stop the
      // system: strace exits with its last traced process, and its file is complete
      await system.waitForEmptyQueue(60_000);
      await system.stop();
      await waitFor("strace to exit after the system stopped", () => strace!.exitCode !== null, 30_000);

      // smtpd: each acknowledgement after the file's fsync, the rename, and the directory's fsync
      const trace: Trace = parseTrace(readFileSync(traceFile, "utf8"));
      const smtpd = (e: SyscallEvent) => trace.roleOf.get(processOfThread(trace, e.tid)) === "smtpd";
      const smtpdEvents = trace.events.filter(smtpd);
      const acks = smtpdEvents.filter((e) => REPLY_WRITES.has(e.name) && /250 2\.0\.0 Ok: queued as [0-9A-F]+\\r\\n/.test(e.args));
      expect(acks.length).toBe(ids.length);
      const problems: string[] = [];
      for (const ack of acks) {
        const id = /queued as ([0-9A-F]+)/.exec(ack.args)![1]!;
        const c = commitOf(smtpdEvents, "incoming", id, ack.entry);
        if (!c.rename) problems.push(`${id}: no rename into incoming/${id} by smtpd before its 250 (trace line ${ack.entry + 1})`);
        else if (!c.fileSync) problems.push(`${id}: the queue file was not fsynced before its rename (trace line ${c.rename.entry + 1})`);
        else if (!c.dirSync) problems.push(`${id}: incoming/ was not fsynced between the rename (line ${c.rename.exit + 1}) and the 250 (line ${ack.entry + 1})`);
      }
      expect(problems).toEqual([]);
      expect(new Set(acks.map((a) => /queued as ([0-9A-F]+)/.exec(a.args)![1]))).toEqual(new Set(ids));
      // the lone session's commits made both fsyncs on smtpd's own thread, not in the thread pool
      const onPoolThreads = lone.filter((id) => {
        const c = commitOf(smtpdEvents, "incoming", id, Number.MAX_SAFE_INTEGER);
        return [c.fileSync, c.dirSync].some((e) => e === undefined || e.tid !== processOfThread(trace, e.tid));
      });
      expect(onPoolThreads).toEqual([]);

      // the queue manager: each message's file removed from active/ after its D record was written and fsynced
      const qmgrEvents = trace.events.filter((e) => trace.roleOf.get(processOfThread(trace, e.tid)) === "qmgr");
      const inActive = (e: SyscallEvent, id: string) => inQueue(fdPath(e.args)) === `active/${id}`;
      const removals: string[] = [];
      for (const id of ids) {
        const removal = qmgrEvents.find((e) => UNLINKS.has(e.name) && e.ret === 0 && quotedArgs(e.args).some((a) => inQueue(a) === `active/${id}`));
        if (!removal) {
          removals.push(`${id}: not removed from active/ by the queue manager`);
          continue;
        }
        const record = qmgrEvents.find((e) => REPLY_WRITES.has(e.name) && e.ret > 0 && e.exit < removal.entry && inActive(e, id) && /"D \d+ \d+\\n"/.test(e.args));
        const sync = record && qmgrEvents.find((e) => FSYNCS.has(e.name) && e.ret === 0 && e.entry > record.exit && e.exit < removal.entry && inActive(e, id));
        if (!record) removals.push(`${id}: no D record written before the removal (trace line ${removal.entry + 1})`);
        else if (!sync) removals.push(`${id}: the D record (line ${record.exit + 1}) was not fsynced before the removal (line ${removal.entry + 1})`);
        else if (alone.includes(id)) {
          // the only delivery: its fsync on the queue manager's own thread, the file removed without a look first
          if (sync.tid !== processOfThread(trace, sync.tid)) removals.push(`${id}: the D record's fsync ran on a pool thread (line ${sync.entry + 1})`);
          const looked = qmgrEvents.find((e) => ACCESSES.has(e.name) && quotedArgs(e.args).some((a) => inQueue(a) === `active/${id}`));
          if (looked) removals.push(`${id}: access() before the removal (line ${looked.entry + 1})`);
        }
      }
      expect(removals).toEqual([]);

      // sendmail: exit 0 only after the maildrop file's fsync, its rename, and maildrop/'s fsync; a user who
      // may not open maildrop/ fsyncs the renamed file again instead (docs/queue-file.md: on a journaling file
      // system that commits the rename, which changed the file's ctime in the same transaction)
      expect(sendmails.length).toBe(SENDMAILS);
      const byUser = sendmails.filter((s) => s.user !== undefined).length;
      expect(byUser).toBe(isRoot ? SENDMAILS / 5 : 0);
      for (const s of sendmails) {
        expect({ i: s.i, code: s.code, stderr: s.stderr }).toEqual({ i: s.i, code: 0, stderr: "" });
        const t = parseTrace(s.trace);
        const renames = t.events.filter((e) => RENAMES.has(e.name) && e.ret === 0 && inQueue(quotedArgs(e.args)[1])?.startsWith("maildrop/"));
        expect(renames.length).toBe(1);
        const rename = renames[0]!;
        const id = inQueue(quotedArgs(rename.args)[1])!.slice("maildrop/".length);
        const c = commitOf(t.events, "maildrop", id, Number.MAX_SAFE_INTEGER);
        const resync = t.events.some((e) => FSYNCS.has(e.name) && e.ret === 0 && e.entry > rename.exit && inQueue(fdPath(e.args)) === `maildrop/${id}`);
        // root, or the user who owns the whole queue in unprivileged mode
        const mayOpenMaildrop = s.user === undefined;
        expect({ i: s.i, user: s.user, id, fileSync: c.fileSync !== undefined, after: c.dirSync !== undefined ? "maildrop/ fsynced" : resync ? "file fsynced again" : "nothing" }).toEqual({
          i: s.i,
          user: s.user,
          id,
          fileSync: true,
          after: mayOpenMaildrop ? "maildrop/ fsynced" : "file fsynced again",
        });
      }
    },
    180_000,
  );
});
