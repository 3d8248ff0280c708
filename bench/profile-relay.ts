/**
 * Profiling driver for issue 16 (relay at few sessions): starts a private
 * postern system as the tests do (MailSystem, $POSTERN_DIST) with relayhost
 * = [127.0.0.1]:SINKPORT and an smtp-sink there (as bench/scenarios/relay.ts
 * starts it), runs the relay scenario's smtp-source load into it
 * (bench/lib/smtp-source.ts: -d -s SESSIONS -m MESSAGES -l 4096, one
 * recipient at example.com), waits until the queue is empty and prints the
 * rate end to end and over SMTP, and each daemon's CPU per message by thread
 * (bench/lib/thread-cpu.ts). WARMUP messages go first, uncounted.
 * STRACE=1 attaches `strace -f -c` to smtpd for the measured run (summary in
 * STRACE_OUT, default /tmp/strace-ROLE.out; STRACE_OPTS="-ttt -T" instead of
 * -c gives the timeline); STRACE_ROLE=qmgr (or another role) attaches it to
 * that daemon instead. HOLD=1 puts every message on hold at the end of
 * data (smtpd_data_restrictions = check_client_access static:HOLD): smtpd's
 * side alone, with no delivery beside it (the rate is then over SMTP). IMPORT_ENV as in
 * bench/profile-local.ts. Root only; it trusts its own private system. Not a
 * benchmark with Postfix beside it (bench/run.ts relay is).
 *   POSTERN_DIST=DIR bun bench/profile-relay.ts [SESSIONS] [MESSAGES] [WARMUP]
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MailSystem } from "../test/helpers/mail-system.ts";
import { importEnvChanges } from "./lib/import-env.ts";
import { startSmtpSource } from "./lib/smtp-source.ts";
import { portAnswers } from "./lib/wait.ts";
import { describeThreads, threadTicks } from "./lib/thread-cpu.ts";

const sessions = Number(process.argv[2] ?? 1);
const messages = Number(process.argv[3] ?? 2000);
const warmup = Number(process.argv[4] ?? 200);
const port = 20000 + Math.floor(Math.random() * 20000);
const sinkPort = port + 1;
const sys = new MailSystem({ relayhost: `[127.0.0.1]:${sinkPort}` });
const sink = Bun.spawn(["/usr/sbin/smtp-sink", "-c", "-u", "nobody", "-m", "1000", `127.0.0.1:${sinkPort}`, "1000"], { stdio: ["ignore", "ignore", "inherit"] });
const queued = () => ["incoming", "active", "deferred"].reduce((n, d) => {
  try {
    return n + readdirSync(join(sys.queue, d), { recursive: true }).length;
  } catch {
    return n;
  }
}, 0);
try {
  const hold = process.env.HOLD ? { smtpd_data_restrictions: "check_client_access static:HOLD" } : {};
  sys.writeConfig({ relayhost: `[127.0.0.1]:${sinkPort}`, ...hold, ...importEnvChanges() }, `[services.smtp]\nlisten = ["127.0.0.1:${port}"]\n`);
  await sys.start();
  for (let i = 0; i < 300 && !(await portAnswers(port)); i++) await Bun.sleep(100);
  const send = async (n: number) => {
    const t0 = performance.now();
    const src = startSmtpSource({ sessions, messages: n, from: "sender@localhost", to: "rcpt@example.com", port });
    await src.proc.exited;
    if (src.error()) throw new Error(src.error());
    const tSmtp = performance.now() - t0;
    const until = Date.now() + 300_000;
    while (queued() > 0 && Date.now() < until) await Bun.sleep(5);
    return { tSmtp, tAll: performance.now() - t0 };
  };
  if (warmup > 0) await send(warmup);
  await Bun.sleep(500);
  const roles = sys.roles();
  const pids = [...roles].filter(([, pid]) => pid);
  let strace: ReturnType<typeof Bun.spawn> | undefined;
  if (process.env.STRACE || process.env.STRACE_ROLE) {
    const role = process.env.STRACE_ROLE ?? "smtpd";
    const traced = roles.get(role);
    if (!traced) throw new Error(`no ${role} daemon to trace`);
    strace = Bun.spawn(["strace", "-f", ...(process.env.STRACE_OPTS ?? "-c").split(" "), "-o", process.env.STRACE_OUT ?? `/tmp/strace-${role}.out`, "-p", String(traced)], { stderr: "ignore" });
    await Bun.sleep(1000);
  }
  const before = new Map(pids.map(([, pid]) => [pid, threadTicks(pid!)]));
  const { tSmtp, tAll } = await send(messages);
  const after = new Map(pids.map(([, pid]) => [pid, threadTicks(pid!)]));
  strace?.kill("SIGINT");
  await strace?.exited;
  console.log(`relayed ${messages}: smtp ${(messages / (tSmtp / 1000)).toFixed(0)} msg/s, end to end ${(messages / (tAll / 1000)).toFixed(0)} msg/s (${(tAll / messages).toFixed(3)} ms per message); load ${readFileSync("/proc/loadavg", "utf8").trim()}`);
  for (const [role, pid] of pids) console.log(`  ${role}: ${describeThreads(before.get(pid!), after.get(pid!)!, messages)}`);
} finally {
  await sys.stop().catch(() => undefined);
  await Bun.sleep(1000);
  sys.killLeftovers();
  await sys.cleanup();
  sink.kill("SIGTERM");
  await sink.exited;
}
