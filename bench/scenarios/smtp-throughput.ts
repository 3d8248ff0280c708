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
import { alternateRuns, mtaPlan, notApplicable, startSystems } from "../lib/alternate.ts";
import type { BenchContext } from "../lib/context.ts";
import { type CpuByRole, describeRoles, sumCpu, TreeCpuTracker } from "../lib/cpu.ts";
import type { Mta, MtaName } from "../lib/mta.ts";
import type { Measurement, Scenario, ScenarioResult } from "../lib/scenario.ts";
import { clearMaildir, maildirCount } from "../lib/maildir.ts";
import { MESSAGES_OPTION, numberList, wholeNumber } from "../lib/options.ts";
import { queuedCount } from "../lib/queue.ts";
import { watchRun } from "../lib/run-watch.ts";
import { SMTP_SOURCE_MESSAGE_SIZE as MESSAGE_SIZE, startSmtpSource } from "../lib/smtp-source.ts";
import { sleepMs, waitFor } from "../lib/wait.ts";

const PSS_SAMPLE_MS = 500;

export const scenario: Scenario = {
  name: "smtp-throughput",
  summary: "End-to-end messages/s of smtp-source (4 KiB, 1/20/100 sessions) into each SMTP server until all are in the Maildir",
  defaultRuns: 3,
  options: {
    messages: MESSAGES_OPTION,
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
  const source = startSmtpSource({ sessions, messages, from: "sender@localhost", to: recipient, port: mta.smtpPort });
  const watched = await watchRun({
    master,
    tracker,
    t0,
    pssSampleMs: PSS_SAMPLE_MS,
    count: () => maildirCount(maildir),
    done: (delivered) => source.sentAt() > 0 && delivered >= messages,
    failed: () => (source.sentAt() ? source.error() : undefined),
    stalled: (delivered, seconds) => `${delivered} of ${messages} delivered after ${seconds.toFixed(0)} s`,
    onStall: () => source.proc.kill(),
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = tracker.result();
  const tSent = source.sentAt();
  const { count: delivered, pssPeakKb, error } = watched;
  return { delivered, rate: delivered / seconds, smtpRate: tSent ? messages / ((tSent - t0) / 1000) : 0, pssPeakKb, cpu, ...(error ? { error } : {}) };
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const messages = wholeNumber(ctx.options.extra.messages, 2000, "messages");
  const levels = numberList(ctx.options.extra.sessions, "1,20,100", "sessions");
  const { started, active } = startSystems(ctx);

  const warmup = Math.min(messages, 200);
  for (const mta of active) {
    ctx.progress(`warm-up: ${warmup} messages through ${mta.name}`);
    const r = await oneRun(ctx, mta, warmup, Math.min(20, Math.max(...levels)));
    if (r.error) throw new Error(`${mta.name}: warm-up failed: ${r.error}`);
  }

  const results = await alternateRuns(mtaPlan(levels, ctx.options.runs, active), async (mta, s, i) => {
    const r = await oneRun(ctx, mta, messages, s);
    ctx.progress(
      `  ${mta.name}, ${s} session(s), run ${i + 1}/${ctx.options.runs}: ${r.delivered} delivered, ${r.rate.toFixed(1)}/s end to end, ${r.smtpRate.toFixed(1)}/s over SMTP, daemon CPU ${(r.cpu.totalMs / messages).toFixed(2)} ms/msg${r.error ? `; FAILED: ${r.error}` : ""}`,
    );
    return r;
  });

  const { side, failures } = results.report((r) => r.error, (name) => notApplicable(started[name]));
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
  // issue 16: at most 2 x Postfix's peak in every scenario, and 0.5 x at 100 sessions
  for (const s of levels) {
    measurements.push({
      name: `peak memory with ${s} session${s === 1 ? "" : "s"}, PSS of the whole system`,
      unit: "MB",
      better: "lower",
      postfix: side("postfix", s, (r) => r.pssPeakKb / 1024),
      postern: side("postern", s, (r) => r.pssPeakKb / 1024),
      target: { ratio: s >= 100 ? 0.5 : 2, kind: "at most" },
    });
  }
  for (const mta of active) mta.stop();
  const cpuNotes = levels.flatMap((s) => active.map((mta) => cpuNote(mta.name, s, messages, results.runs(mta.name, s))));
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
  const per = messages * done.length;
  const sum = sumCpu(done.map((r) => r.cpu));
  return `${label}: daemon CPU per message ${(sum.totalMs / per).toFixed(2)} ms, ${(sum.systemMs / per).toFixed(2)} of it in the kernel (${describeRoles(sum, per)}), over ${done.length} runs`;
}
