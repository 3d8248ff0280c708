/**
 * sendmail-throughput: end-to-end messages per second through each running
 * system. 2,000 messages (2 KiB) are submitted with `sendmail -i
 * user@localhost` by 1 and by 8 concurrent submitters; the clock runs from
 * the first spawn until the recipient's Maildir holds every accepted message.
 * Reported per concurrency: the end-to-end rate, the submission rate (until
 * the last sendmail exits) and the drain time (last sendmail exit to last
 * delivery); the idle memory of each started system, its memory at the end
 * of its last run and its peak during the runs (PSS of the process tree);
 * and where the CPU went per message, by role.
 *
 * Both daemons run during the whole scenario; runs alternate between the
 * systems (Postfix, postern, postern, Postfix, ...) and each starts with an
 * empty queue and an empty Maildir. Both queue durably (fsync) on every
 * step, as configured by the harness.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { alternateRuns, notApplicable, SETTLE_MS } from "../lib/alternate.ts";
import type { BenchContext } from "../lib/context.ts";
import type { Mta, MtaName, Unavailable } from "../lib/mta.ts";
import type { Measurement, Scenario, ScenarioResult, Side } from "../lib/scenario.ts";
import { describeRoles, harnessCpu, sumCpu, TreeCpuTracker, type CpuByRole } from "../lib/cpu.ts";
import { makeMessage } from "../lib/message.ts";
import { clearMaildir, maildirCount } from "../lib/maildir.ts";
import { MESSAGES_OPTION, numberList, wholeNumber } from "../lib/options.ts";
import { describeMemory, treeMemory, type TreeMemory } from "../lib/pss.ts";
import { queuedCount } from "../lib/queue.ts";
import { watchRun } from "../lib/run-watch.ts";
import { summarize } from "../lib/stats.ts";
import { describeSubmitter, probeSubmitter, sendmailSubmitter, submitAsync, type Submitter } from "../lib/submit.ts";
import { sleepMs, waitFor } from "../lib/wait.ts";

const MESSAGE_SIZE = 2048;
const PSS_SAMPLE_MS = 1000;

export const scenario: Scenario = {
  name: "sendmail-throughput",
  summary: "End-to-end messages/s of `sendmail -i user@localhost` from 1 and 8 submitters until all are in the Maildir",
  defaultRuns: 3,
  options: {
    messages: MESSAGES_OPTION,
    concurrency: { type: "string", description: "comma-separated numbers of concurrent submitters (default 1,8)" },
  },
  run,
};

interface RunResult {
  accepted: number;
  failures: string[];
  /** Messages per second, first spawn to last delivery. */
  rate: number;
  /** Messages per second, first spawn to last sendmail exit. */
  submitRate: number;
  /** Seconds from the last sendmail exit to the last delivery. */
  drain: number;
  seconds: number;
  cpu: CpuByRole;
  /** CPU ms of every sendmail (and its children) of the run. */
  sendmailMs: number;
  memoryEnd: TreeMemory;
  pssPeakKb: number;
  stalled?: string;
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const messages = wholeNumber(ctx.options.extra.messages, 2000, "messages", 0);
  const levels = numberList(ctx.options.extra.concurrency, "1,8", "concurrency", 0);
  if (levels.some((n) => n < 1)) throw new Error("--concurrency takes numbers of at least 1");
  const msgFile = join(ctx.base, "message-2k.eml");
  const recipient = `${ctx.user.name}@localhost`;
  writeFileSync(msgFile, makeMessage(MESSAGE_SIZE, { from: `Bench <${recipient}>`, to: recipient, subject: "postern bench: sendmail throughput" }));
  chmodSync(msgFile, 0o644);
  const submitters = [sendmailSubmitter(ctx, ctx.postfix, ["-i"], [recipient]), sendmailSubmitter(ctx, ctx.postern, ["-i"], [recipient])];
  const notes: string[] = [];

  const started: Record<MtaName, Unavailable | undefined> = { postfix: ctx.postfix.start(), postern: ctx.postern.start() };
  if (started.postfix) throw new Error(`Postfix did not start: ${started.postfix.unavailable}`);
  const idleTrackers = submitters.filter((s) => !started[s.mta.name]).map((s) => [s.mta.name, new TreeCpuTracker(s.mta.masterPid()!)] as const);
  sleepMs(SETTLE_MS);
  const idle: Record<MtaName, Side> = { postfix: unavailableSide(started.postfix), postern: unavailableSide(started.postern) };
  const idleNotes: string[] = [];
  for (const [name, tracker] of idleTrackers) {
    const mta = name === "postfix" ? ctx.postfix : ctx.postern;
    const memory = treeMemory(mta.masterPid()!);
    idle[name] = summarize([memory.pssKb / 1024]);
    idleNotes.push(`${name}: ${describeMemory(memory)}; CPU while idle: ${tracker.result().totalMs} ms in ${SETTLE_MS / 1000} s`);
  }

  // probe, then an uncounted warm-up batch: Postfix's processes start on demand, page cache fills
  const active: Submitter[] = [];
  const unavailable: Partial<Record<MtaName, Unavailable>> = {};
  for (const s of submitters) {
    const why = started[s.mta.name] ?? probeSubmitter(s, msgFile);
    if (why) {
      if (s.mta.name === "postfix") throw new Error(`Postfix's sendmail fails in the private instance: ${why.unavailable}`);
      unavailable[s.mta.name] = notApplicable(why);
      continue;
    }
    active.push(s);
  }
  const warmup = Math.min(messages, ctx.options.warmup * 20);
  for (const s of active) {
    ctx.progress(`warm-up: ${warmup} messages through ${s.mta.name}`);
    const r = await oneRun(ctx, s, warmup, Math.max(...levels), msgFile);
    if (r.stalled) throw new Error(`${s.mta.name}: warm-up stalled: ${r.stalled}`);
  }

  const results = await alternateRuns({ levels, runs: ctx.options.runs, active, system: (s) => s.mta.name, levelKey: String }, async (s, c, i) => {
    const r = await oneRun(ctx, s, messages, c, msgFile);
    ctx.progress(
      `  ${s.mta.name}, ${c} submitter(s), run ${i + 1}/${ctx.options.runs}: ${r.accepted} messages, ${r.rate.toFixed(1)}/s end to end, ` +
        `${r.submitRate.toFixed(1)}/s submitted, drain ${r.drain.toFixed(2)} s${r.stalled ? `; STALLED: ${r.stalled}` : ""}`,
    );
    return r;
  });

  const { side: sideOf } = results.report((r) => r.stalled, (name) => unavailable[name], "every run stalled");
  const runNotes = (c: number): string[] =>
    (["postfix", "postern"] as const).flatMap((name) => {
      const list = results.runs(name, c);
      const failed = list.flatMap((r) => r.failures);
      const stalled = list.filter((r) => r.stalled);
      return [
        ...(failed.length ? [`${name}: ${failed.length} failed submissions, first: ${failed[0]}`] : []),
        ...(stalled.length ? [`${name}: ${stalled.length} runs stalled, first: ${stalled[0]!.stalled}`] : []),
      ];
    });
  const measurements: Measurement[] = [];
  for (const c of levels) {
    const label = `${c} submitter${c === 1 ? "" : "s"}`;
    measurements.push({
      name: `${label}, end to end`,
      unit: "msg/s",
      better: "higher",
      postfix: sideOf("postfix", c, (r) => r.rate),
      postern: sideOf("postern", c, (r) => r.rate),
      // issue 16: "2,000 sendmail -> Maildir end to end: at least 1.0 x Postfix"
      target: { ratio: 1, kind: "at least" },
      notes: runNotes(c),
    });
    measurements.push({ name: `${label}, submission only`, unit: "msg/s", better: "higher", postfix: sideOf("postfix", c, (r) => r.submitRate), postern: sideOf("postern", c, (r) => r.submitRate) });
    measurements.push({ name: `${label}, drain after last sendmail`, unit: "s", better: "lower", postfix: sideOf("postfix", c, (r) => r.drain), postern: sideOf("postern", c, (r) => r.drain) });
  }
  measurements.push({ name: `idle memory, PSS (${SETTLE_MS / 1000} s after start)`, unit: "MB", better: "lower", postfix: idle.postfix, postern: idle.postern, notes: idleNotes });
  const memoryNotes: string[] = [];
  const lastRun = (name: MtaName) => results.runs(name, levels.at(-1)!).at(-1);
  const endSide = (name: MtaName): Side => {
    const r = lastRun(name);
    if (unavailable[name] || !r) return unavailable[name] ?? { unavailable: "no run" };
    memoryNotes.push(`${name} at the end of its last run: ${describeMemory(r.memoryEnd)}`);
    return summarize([r.memoryEnd.pssKb / 1024]);
  };
  measurements.push({ name: "memory at the end of the last run, PSS", unit: "MB", better: "lower", postfix: endSide("postfix"), postern: endSide("postern"), notes: memoryNotes });
  const peakSide = (name: MtaName): Side => {
    if (unavailable[name]) return unavailable[name]!;
    const all = results.all(name);
    return all.length ? summarize([Math.max(...all.map((r) => r.pssPeakKb)) / 1024]) : { unavailable: "no run" };
  };
  measurements.push({ name: `peak memory during the runs, PSS (sampled every ${PSS_SAMPLE_MS / 1000} s)`, unit: "MB", better: "lower", postfix: peakSide("postfix"), postern: peakSide("postern") });

  for (const c of levels) for (const s of active) notes.push(cpuNote(s.mta.name, c, results.runs(s.mta.name, c)));
  notes.push(`each run starts with an empty queue and Maildir; both daemons run throughout; ${warmup} uncounted warm-up messages per side first`);
  for (const s of active) s.mta.stop();
  return {
    command: `${describeSubmitter(submitters[0]!, `${MESSAGE_SIZE}-byte message`)} x ${messages}, ${levels.join(" / ")} concurrent submitters  (MAIL_CONFIG=private instance; user ${ctx.options.asRoot ? "root" : ctx.user.name})`,
    measurements,
    notes,
  };
}

/** "postern, 8 submitters: CPU per message 9.1 ms = sendmail 4.0 + daemons 5.1 (postern qmgr 1.2, ...)". */
function cpuNote(name: MtaName, c: number, runs: RunResult[]): string {
  const done = runs.filter((r) => !r.stalled);
  const messages = done.reduce((s, r) => s + r.accepted, 0);
  if (!messages) return `${name}, ${c} submitter(s): no completed run`;
  const per = (ms: number) => (ms / messages).toFixed(2);
  const sum = sumCpu(done.map((r) => r.cpu));
  const daemon = sum.totalMs;
  const sendmail = done.reduce((s, r) => s + r.sendmailMs, 0);
  const wall = done.reduce((s, r) => s + r.seconds, 0);
  return (
    `${name}, ${c} submitter(s): CPU per message ${per(sendmail + daemon)} ms = sendmail ${per(sendmail)} + daemons ${per(daemon)} (${describeRoles(sum, messages)}); ` +
    `CPU use ${(((sendmail + daemon) / (wall * 1000)) * 100).toFixed(0)}% of one core over ${done.length} runs`
  );
}

/** Submits `messages` from `concurrency` workers and waits until every accepted one is in the Maildir. */
async function oneRun(ctx: BenchContext, s: Submitter, messages: number, concurrency: number, msgFile: string): Promise<RunResult> {
  const mta: Mta = s.mta;
  const maildir = mta.maildir(ctx.user.home);
  if (!waitFor(() => queuedCount(mta.queueDirectory) === 0, 120_000, 100)) throw new Error(`${mta.name}: the queue did not empty before a run (${queuedCount(mta.queueDirectory)} files)`);
  clearMaildir(maildir);
  sleepMs(500);
  const master = mta.masterPid();
  if (master === undefined) throw new Error(`${mta.name} is not running`);
  const tracker = new TreeCpuTracker(master);
  const h0 = harnessCpu();

  let next = 0;
  let accepted = 0;
  let finished = 0;
  const failures: string[] = [];
  const t0 = performance.now();
  let tSubmitted = 0;
  const worker = async () => {
    while (next < messages) {
      next++;
      const r = await submitAsync(s, msgFile);
      if (r.code === 0) accepted++;
      else failures.push(`exit ${r.code}: ${r.stderr.trim().split("\n").at(-1) ?? ""}`);
    }
    if (++finished === concurrency) tSubmitted = performance.now();
  };
  const workers = Array.from({ length: Math.min(concurrency, messages) }, worker);
  const allSubmitted = Promise.all(workers);

  const watched = await watchRun({
    master,
    tracker,
    t0,
    pssSampleMs: PSS_SAMPLE_MS,
    count: () => maildirCount(maildir),
    done: (delivered) => tSubmitted > 0 && delivered >= accepted,
    stalled: (delivered, seconds) => `${delivered} of ${accepted} delivered after ${seconds.toFixed(0)} s, ${queuedCount(mta.queueDirectory)} files queued`,
  });
  const tEnd = watched.tEnd;
  const stalled = watched.error;
  await allSubmitted;
  const cpu = tracker.result();
  const h1 = harnessCpu();
  const memoryEnd = treeMemory(master);
  const pssPeakKb = Math.max(watched.pssPeakKb, memoryEnd.pssKb);
  const seconds = (tEnd - t0) / 1000;
  return {
    accepted,
    failures,
    rate: accepted / seconds,
    submitRate: accepted / ((tSubmitted - t0) / 1000),
    drain: Math.max(0, (tEnd - tSubmitted) / 1000),
    seconds,
    cpu,
    sendmailMs: h1.children - h0.children,
    memoryEnd,
    pssPeakKb,
    ...(stalled ? { stalled } : {}),
  };
}

function unavailableSide(u: Unavailable | undefined): Side {
  return notApplicable(u) ?? { unavailable: "not measured" };
}
