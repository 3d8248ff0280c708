/**
 * Profiling driver for issue 16 (SMTP in -> local Maildir): starts a private
 * postern system as the tests do (MailSystem, $POSTERN_DIST), one local user
 * with home_mailbox = Maildir/, an smtpd on a free 127.0.0.1 port, then runs
 * Debian's smtp-source (-s SESSIONS -m MESSAGES -l 4096) into it, waits for
 * every message in the Maildir, prints the rate, the daemons' CPU by role
 * (sampled from /proc/PID/stat) and the median and mean of the log's
 * delays=a/b/c/d, each process's CPU by thread (bench/lib/thread-cpu.ts),
 * the whole system's PSS 5 s after the last delivery, and stops the system. STRACE=fsync,unlink,... attaches
 * `strace -f -T` to the local service and the queue manager for the run
 * (output in STRACE_OUT, default /tmp/strace.out). Root only; it trusts its
 * own private system. Not a benchmark with Postfix beside it (bench/run.ts
 * is): a quick loop for profiling one side (issue 16).
 * WARMUP messages are sent and delivered first and not counted (the JIT's
 * start-up work is then mostly done), over WARMUP_SESSIONS sessions (default
 * SESSIONS); IMPORT_ENV="NAME=VALUE ..." adds to
 * import_environment, the environment the master gives its children (an
 * allocator's MIMALLOC_* option, say).
 *   POSTERN_DIST=DIR bun bench/profile-local.ts [SESSIONS] [MESSAGES] [WARMUP]
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MailSystem, TestUsers } from "../test/helpers/mail-system.ts";
import { importEnvChanges } from "./lib/import-env.ts";
import { maildirCount } from "./lib/maildir.ts";
import { processMemory } from "./lib/pss.ts";
import { portAnswers } from "./lib/wait.ts";
import { describeThreads, threadTicks } from "./lib/thread-cpu.ts";

const sessions = Number(process.argv[2] ?? 20);
const messages = Number(process.argv[3] ?? 2000);
const warmup = Number(process.argv[4] ?? 0);
const port = 20000 + Math.floor(Math.random() * 20000);
const users = new TestUsers("pprof");
const sys = new MailSystem({ home_mailbox: "Maildir/" });
const ticks = (pid: number): number => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  } catch {
    return 0;
  }
};
try {
  const u = users.add("u", join(sys.dir, "home"));
  sys.writeConfig(importEnvChanges(), `[services.smtp]\nlisten = ["127.0.0.1:${port}"]\n`);
  await sys.start();
  // smtpd is up when its port answers: the system's start waits only for the roles that run at idle
  for (let i = 0; i < 300 && !(await portAnswers(port)); i++) await Bun.sleep(100);
  const maildir = join(u.home, "Maildir");
  const count = () => maildirCount(maildir) - warmup;
  const send = (n: number, s = sessions) => Bun.spawn(["smtp-source", "-d", "-s", String(s), "-m", String(n), "-l", "4096", "-f", "sender@localhost", "-t", `${u.name}@localhost`, `127.0.0.1:${port}`], { stdout: "inherit", stderr: "inherit" });
  if (warmup > 0) {
    await send(warmup, Number(process.env.WARMUP_SESSIONS ?? sessions)).exited;
    const until = Date.now() + 300_000;
    while (count() < 0 && Date.now() < until) await Bun.sleep(20);
    await Bun.sleep(500);
  }
  const cpu = new Map<string, number>();
  const seen = new Map<number, { role: string; t: number }>();
  // the highest PSS seen per role (summed over its processes at one sample) and for the whole system
  const peak = new Map<string, number>();
  const peakAnon = new Map<string, number>();
  let peakTotal = 0;
  let peakTotalAnon = 0;
  const sample = () => {
    const now = new Map<string, number>();
    const nowAnon = new Map<string, number>();
    for (const pid of sys.allProcesses()) {
      let role = "?";
      try {
        role = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[1] ?? "?";
      } catch {
        continue;
      }
      seen.set(pid, { role, t: ticks(pid) || seen.get(pid)?.t || 0 });
      const m = processMemory(pid);
      now.set(role, (now.get(role) ?? 0) + (m?.pssKb ?? 0));
      nowAnon.set(role, (nowAnon.get(role) ?? 0) + (m?.pssAnonKb ?? 0));
    }
    for (const [role, kb] of now) peak.set(role, Math.max(peak.get(role) ?? 0, kb));
    for (const [role, kb] of nowAnon) peakAnon.set(role, Math.max(peakAnon.get(role) ?? 0, kb));
    peakTotal = Math.max(peakTotal, [...now.values()].reduce((a, b) => a + b, 0));
    peakTotalAnon = Math.max(peakTotalAnon, [...nowAnon.values()].reduce((a, b) => a + b, 0));
  };
  let strace: ReturnType<typeof Bun.spawn> | undefined;
  if (process.env.STRACE) {
    const roles = sys.roles();
    strace = Bun.spawn(["strace", "-f", "-T", "-e", `trace=${process.env.STRACE}`, "-o", process.env.STRACE_OUT ?? "/tmp/strace.out", "-p", String(roles.get("local")), "-p", String(roles.get("qmgr"))], { stderr: "ignore" });
    await Bun.sleep(1000);
  }
  sample();
  const before = new Map([...seen].map(([p, v]) => [p, v.t]));
  const threadsBefore = new Map([...seen.keys()].map((pid) => [pid, threadTicks(pid)]));
  const t0 = performance.now();
  const src = send(messages);
  const timer = setInterval(sample, 200);
  await src.exited;
  const tSmtp = performance.now() - t0;
  const deadline = Date.now() + 300_000;
  while (count() < messages && Date.now() < deadline) await Bun.sleep(20);
  const tAll = performance.now() - t0;
  sample();
  const threadsAfter = new Map([...seen.keys()].map((pid) => [pid, threadTicks(pid)]));
  clearInterval(timer);
  strace?.kill("SIGINT");
  await strace?.exited;
  for (const [pid, v] of seen) cpu.set(v.role, (cpu.get(v.role) ?? 0) + v.t - (before.get(pid) ?? 0));
  const hz = 100;
  console.log(`delivered ${count()}/${messages}; smtp ${(messages / (tSmtp / 1000)).toFixed(0)} msg/s, end to end ${(messages / (tAll / 1000)).toFixed(0)} msg/s; load ${readFileSync("/proc/loadavg", "utf8").trim()}`);
  // Postfix's delays=a/b/c/d of each delivery: before the queue manager, in it, connection set-up, transmission
  const delays = [...sys.log().matchAll(/delays=([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+)/g)].map((m) => m.slice(1, 5).map(Number));
  const median = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
  const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / (xs.length || 1);
  console.log(`  delays a/b/c/d median ${[0, 1, 2, 3].map((i) => median(delays.map((d) => d[i]!))).join("/")} mean ${[0, 1, 2, 3].map((i) => mean(delays.map((d) => d[i]!)).toFixed(3)).join("/")} s (${delays.length} deliveries)`);
  for (const [role, t] of [...cpu].sort((a, b) => b[1] - a[1])) console.log(`  ${role}: ${((t / hz) * 1000 / messages).toFixed(2)} ms CPU per message, peak PSS ${((peak.get(role) ?? 0) / 1024).toFixed(1)} MB (Pss_Anon ${((peakAnon.get(role) ?? 0) / 1024).toFixed(1)})`);
  for (const [pid, v] of seen) if (threadsAfter.get(pid)?.size) console.log(`  ${v.role} by thread: ${describeThreads(threadsBefore.get(pid), threadsAfter.get(pid)!, messages)}`);
  console.log(`  peak PSS of the whole system (one sample) ${(peakTotal / 1024).toFixed(1)} MB, peak Pss_Anon ${(peakTotalAnon / 1024).toFixed(1)} MB`);
  // what the daemons give back once the burst is over (the allocator's purge, the GC)
  await Bun.sleep(5000);
  const idle = sys.allProcesses().reduce((sum, pid) => sum + (processMemory(pid)?.pssKb ?? 0), 0);
  console.log(`  PSS of the whole system 5 s after the last delivery ${(idle / 1024).toFixed(1)} MB`);
} finally {
  await sys.stop().catch(() => undefined);
  await Bun.sleep(2000);
  sys.killLeftovers();
  await sys.cleanup();
  users.removeAll();
}
