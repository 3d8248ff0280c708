/**
 * smtp-throughput: end-to-end messages per second through each system's
 * SMTP server. Postfix's smtp-source sends 4 KiB messages to the bench
 * user at localhost over 1, 20 and 100 parallel SMTP sessions (each session
 * sends its messages over one connection, `-d`); the clock runs from the
 * start of smtp-source until the recipient's Maildir holds every message.
 * Reported per session count: the end-to-end rate, the SMTP rate (until
 * smtp-source exits), and the daemons' CPU per message (every process of
 * the master's tree, by role, with the kernel's share); and the memory of
 * the whole system (PSS of the process tree) at its peak during the runs
 * with the most sessions.
 *
 * Both daemons run during the whole scenario; runs alternate between the
 * systems and each starts with an empty queue and Maildir. Both commit every
 * message with fsync before their 250 reply.
 */
import { join } from "node:path";
import type { BenchContext } from "../lib/context.ts";
import { type CpuByRole, TreeCpuTracker } from "../lib/cpu.ts";
import type { Mta, MtaName, Unavailable } from "../lib/mta.ts";
import type { Measurement, Scenario, ScenarioResult, Side } from "../lib/scenario.ts";
import { clearMaildir, maildirCount } from "../lib/maildir.ts";
import { treeMemory } from "../lib/pss.ts";
import { queuedCount } from "../lib/queue.ts";
import { summarize } from "../lib/stats.ts";
import { sleepMs, waitFor } from "../lib/wait.ts";

const MESSAGE_SIZE = 4096;
const SETTLE_MS = 2000;
const POLL_MS = 20;
const PSS_SAMPLE_MS = 500;
const CPU_SAMPLE_MS = 250;
/** A run gives up when no message is delivered for this long. */
const STALL_MS = 60_000;
const SMTP_SOURCE = "/usr/sbin/smtp-source";

export const scenario: Scenario = {
  name: "smtp-throughput",
  summary: "End-to-end messages/s of smtp-source (4 KiB, 1/20/100 sessions) into each SMTP server until all are in the Maildir",
  defaultRuns: 3,
  options: {
    messages: { type: "string", description: "messages per run (default 2000)" },
    sessions: { type: "string", description: "comma-separated numbers of parallel SMTP sessions (default 1,20,100)" },
  },
  run,
};

export interface RunResult {
  delivered: number;
  rate: number;
  smtpRate: number;
  pssPeakKb: number;
  /** The master's tree from smtp-source's start until the last delivery. */
  cpu: CpuByRole;
  error?: string;
}

function wholeNumber(v: unknown, fallback: number, what: string): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${what} must be a whole number of at least 1, not "${v}"`);
  return n;
}

/** Where a run's messages go: the bench user's own Maildir by default, or another address and Maildir (virtual mailboxes). */
export interface RunTarget {
  recipient: string;
  maildir: string;
}

export async function oneRun(ctx: BenchContext, mta: Mta, messages: number, sessions: number, target?: RunTarget): Promise<RunResult> {
  const maildir = target?.maildir ?? mta.maildir(ctx.user.home);
  if (!waitFor(() => queuedCount(mta.queueDirectory) === 0, 120_000, 100)) throw new Error(`${mta.name}: the queue did not empty before a run`);
  clearMaildir(maildir);
  sleepMs(500);
  const master = mta.masterPid();
  if (master === undefined) throw new Error(`${mta.name} is not running`);
  const recipient = target?.recipient ?? `${ctx.user.name}@localhost`;
  const tracker = new TreeCpuTracker(master);
  const t0 = performance.now();
  const proc = Bun.spawn(
    [SMTP_SOURCE, "-d", "-s", String(sessions), "-m", String(messages), "-l", String(MESSAGE_SIZE), "-M", "bench.client", "-f", `sender@localhost`, "-t", recipient, `127.0.0.1:${mta.smtpPort}`],
    { stdout: "ignore", stderr: "pipe", stdin: "ignore" },
  );
  let tSent = 0;
  let sourceError: string | undefined;
  void proc.exited.then(async (code) => {
    tSent = performance.now();
    if (code !== 0) sourceError = `smtp-source exit ${code}: ${(await new Response(proc.stderr).text()).trim().split("\n").at(-1) ?? ""}`;
  });
  let delivered = 0;
  let lastProgress = t0;
  let lastPss = 0;
  let lastCpu = 0;
  let pssPeakKb = 0;
  let error: string | undefined;
  for (;;) {
    await Bun.sleep(POLL_MS);
    const now = performance.now();
    const count = maildirCount(maildir);
    if (count > delivered) {
      delivered = count;
      lastProgress = now;
    }
    if (now - lastPss >= PSS_SAMPLE_MS) {
      pssPeakKb = Math.max(pssPeakKb, treeMemory(master).pssKb);
      lastPss = now;
    }
    if (now - lastCpu >= CPU_SAMPLE_MS) {
      tracker.sample();
      lastCpu = now;
    }
    if (tSent && delivered >= messages) break;
    if (tSent && sourceError) {
      error = sourceError;
      break;
    }
    if (now - lastProgress > STALL_MS) {
      error = `${delivered} of ${messages} delivered after ${((now - t0) / 1000).toFixed(0)} s`;
      proc.kill();
      break;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = tracker.result();
  return { delivered, rate: delivered / seconds, smtpRate: tSent ? messages / ((tSent - t0) / 1000) : 0, pssPeakKb, cpu, ...(error ? { error } : {}) };
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const messages = wholeNumber(ctx.options.extra.messages, 2000, "messages");
  const levels = String(ctx.options.extra.sessions ?? "1,20,100")
    .split(",")
    .map((v) => wholeNumber(v.trim(), 1, "sessions"));
  const started: Record<MtaName, Unavailable | undefined> = { postfix: ctx.postfix.start(), postern: ctx.postern.start() };
  if (started.postfix) throw new Error(`Postfix did not start: ${started.postfix.unavailable}`);
  sleepMs(SETTLE_MS);
  const active = [ctx.postfix, ctx.postern].filter((m) => !started[m.name]);

  const warmup = Math.min(messages, 200);
  for (const mta of active) {
    ctx.progress(`warm-up: ${warmup} messages through ${mta.name}`);
    const r = await oneRun(ctx, mta, warmup, Math.min(20, Math.max(...levels)));
    if (r.error) throw new Error(`${mta.name}: warm-up failed: ${r.error}`);
  }

  const results = new Map<string, RunResult[]>();
  const key = (name: MtaName, s: number) => `${name}/${s}`;
  for (const s of levels) {
    for (let i = 0; i < ctx.options.runs; i++) {
      const order = i % 2 === 0 ? active : [...active].reverse();
      for (const mta of order) {
        const r = await oneRun(ctx, mta, messages, s);
        ctx.progress(
          `  ${mta.name}, ${s} session(s), run ${i + 1}/${ctx.options.runs}: ${r.delivered} delivered, ${r.rate.toFixed(1)}/s end to end, ${r.smtpRate.toFixed(1)}/s over SMTP, daemon CPU ${(r.cpu.totalMs / messages).toFixed(2)} ms/msg${r.error ? `; FAILED: ${r.error}` : ""}`,
        );
        const list = results.get(key(mta.name, s)) ?? [];
        list.push(r);
        results.set(key(mta.name, s), list);
      }
    }
  }

  const side = (name: MtaName, s: number, pick: (r: RunResult) => number): Side => {
    if (started[name]) return { unavailable: `not yet applicable (${started[name]!.unavailable})` };
    const ok = (results.get(key(name, s)) ?? []).filter((r) => !r.error);
    return ok.length ? summarize(ok.map(pick)) : { unavailable: "every run failed" };
  };
  const failures = (s: number) =>
    (["postfix", "postern"] as const).flatMap((n) => (results.get(key(n, s)) ?? []).filter((r) => r.error).map((r) => `${n}: ${r.error}`));
  const measurements: Measurement[] = [];
  for (const s of levels) {
    const label = `${s} session${s === 1 ? "" : "s"}`;
    measurements.push({ name: `${label}, end to end`, unit: "msg/s", better: "higher", postfix: side("postfix", s, (r) => r.rate), postern: side("postern", s, (r) => r.rate), target: { ratio: 2, kind: "at least" }, notes: failures(s) });
    measurements.push({ name: `${label}, over SMTP (until smtp-source exits)`, unit: "msg/s", better: "higher", postfix: side("postfix", s, (r) => r.smtpRate), postern: side("postern", s, (r) => r.smtpRate) });
    measurements.push({
      name: `${label}, daemon CPU per message`,
      unit: "ms",
      better: "lower",
      postfix: side("postfix", s, (r) => r.cpu.totalMs / messages),
      postern: side("postern", s, (r) => r.cpu.totalMs / messages),
      target: { ratio: 0.5, kind: "at most" },
    });
  }
  const top = Math.max(...levels);
  measurements.push({
    name: `peak memory with ${top} sessions, PSS of the whole system`,
    unit: "MB",
    better: "lower",
    postfix: side("postfix", top, (r) => r.pssPeakKb / 1024),
    postern: side("postern", top, (r) => r.pssPeakKb / 1024),
    target: { ratio: 0.5, kind: "at most" },
  });
  for (const mta of active) mta.stop();
  const cpuNotes = levels.flatMap((s) => active.map((mta) => cpuNote(mta.name, s, messages, results.get(key(mta.name, s)) ?? [])));
  return {
    command: `smtp-source -d -s N -m ${messages} -l ${MESSAGE_SIZE} -t ${ctx.user.name}@localhost 127.0.0.1:PORT  (N = ${levels.join(", ")})`,
    measurements,
    notes: [`each run starts with an empty queue and Maildir; ${warmup} uncounted warm-up messages per side first; memory sampled every ${PSS_SAMPLE_MS} ms`, ...cpuNotes, `message files: ${join(ctx.base)}`],
  };
}

/** "postern, 20 sessions: daemon CPU per message 5.10 ms, 3.90 of it in the kernel (postern smtpd 2.1, ...)". */
function cpuNote(name: MtaName, sessions: number, messages: number, runs: RunResult[]): string {
  const done = runs.filter((r) => !r.error);
  const label = `${name}, ${sessions} session${sessions === 1 ? "" : "s"}`;
  if (!done.length) return `${label}: no completed run`;
  const per = (ms: number) => (ms / (messages * done.length)).toFixed(2);
  const roles = new Map<string, number>();
  let total = 0;
  let system = 0;
  let between = 0;
  for (const r of done) {
    total += r.cpu.totalMs;
    system += r.cpu.systemMs;
    between += r.cpu.betweenSamplesMs;
    for (const [role, v] of r.cpu.roles) roles.set(role, (roles.get(role) ?? 0) + v.ms);
  }
  const parts = [...roles.entries()].filter(([, ms]) => ms > 0).sort((a, b) => b[1] - a[1]).map(([role, ms]) => `${role} ${per(ms)}`);
  if (between > 0) parts.push(`processes gone between samples ${per(between)}`);
  return `${label}: daemon CPU per message ${per(total)} ms, ${per(system)} of it in the kernel (${parts.join(", ")}), over ${done.length} runs`;
}
