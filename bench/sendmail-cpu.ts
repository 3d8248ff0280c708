/**
 * The daemons' CPU per message on the sendmail path (issue 16, session 5):
 * starts a private postern system as the tests do (MailSystem,
 * $POSTERN_DIST), one local user with home_mailbox = Maildir/, sends one
 * message to start pickup and local, then N messages of 2 KiB through
 * `sendmail`, PAR at a time (default 1), waits for all of them in the
 * Maildir and prints each daemon's CPU per message, by thread
 * (bench/lib/thread-cpu.ts). STRACE_ROLE=pickup (or qmgr, local, ...)
 * attaches `strace -f` to that daemon for the run (-c with STRACE_C=1;
 * output in STRACE_OUT, default /tmp/strace.out). Root only; it trusts its
 * own private system. Not a comparison with Postfix (bench/run.ts
 * sendmail-throughput is): a loop for profiling one side.
 * IMPORT_ENV="NAME=VALUE ..." adds to the daemons' environment (bench/lib/import-env.ts).
 *   POSTERN_DIST=DIR bun bench/sendmail-cpu.ts [N] [PAR]
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MailSystem, TestUsers } from "../test/helpers/mail-system.ts";
import { importEnvChanges } from "./lib/import-env.ts";
import { maildirCount } from "./lib/maildir.ts";
import { describeThreads, threadTicks } from "./lib/thread-cpu.ts";

const n = Number(process.argv[2] ?? 300);
const par = Number(process.argv[3] ?? 1);
const users = new TestUsers("pscpu");
const sys = new MailSystem({ home_mailbox: "Maildir/" });
const roleOf = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[1] ?? "?";
  } catch {
    return "?";
  }
};
try {
  const u = users.add("u", join(sys.dir, "home"));
  sys.writeConfig(importEnvChanges());
  await sys.start();
  const body = `Subject: cpu\n\n${"x".repeat(75)}\n`.repeat(26);
  const maildir = join(u.home, "Maildir");
  const count = () => maildirCount(maildir);
  // the first message starts pickup and local (on demand) and is not counted
  await sys.send([`${u.name}@localhost`], body);
  for (let i = 0; i < 600 && count() < 1; i++) await Bun.sleep(50);
  let strace: ReturnType<typeof Bun.spawn> | undefined;
  if (process.env.STRACE_ROLE) {
    const pid = sys.allProcesses().find((p) => roleOf(p) === process.env.STRACE_ROLE);
    if (pid === undefined) throw new Error(`no ${process.env.STRACE_ROLE} process`);
    strace = Bun.spawn(["strace", ...(process.env.STRACE_C ? ["-c", "-S", "calls"] : ["-T"]), "-f", "-o", process.env.STRACE_OUT ?? "/tmp/strace.out", "-p", String(pid)], { stderr: "ignore" });
    await Bun.sleep(1000);
  }
  const before = new Map(sys.allProcesses().map((pid) => [pid, threadTicks(pid)]));
  const t0 = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < n) {
      next++;
      await sys.send([`${u.name}@localhost`], body);
    }
  };
  await Promise.all(Array.from({ length: par }, lane));
  const deadline = Date.now() + 300_000;
  while (count() < n + 1 && Date.now() < deadline) await Bun.sleep(20);
  const seconds = (performance.now() - t0) / 1000;
  const after = sys.allProcesses().map((pid) => [pid, roleOf(pid), threadTicks(pid)] as const);
  strace?.kill("SIGINT");
  await strace?.exited;
  console.log(`delivered ${count() - 1}/${n} in ${seconds.toFixed(1)} s (${((count() - 1) / seconds).toFixed(1)} msg/s, ${par} at a time); load ${readFileSync("/proc/loadavg", "utf8").trim()}`);
  for (const [pid, role, ticks] of after) console.log(`  ${role}: ${describeThreads(before.get(pid), ticks, n)}`);
} finally {
  await sys.stop().catch(() => undefined);
  await Bun.sleep(1000);
  sys.killLeftovers();
  await sys.cleanup();
  users.removeAll();
}
