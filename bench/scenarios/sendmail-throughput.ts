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
import type { BenchContext } from "../lib/context.ts";
import type { Mta, MtaName, Unavailable } from "../lib/mta.ts";
import type { Measurement, Scenario, ScenarioResult, Side } from "../lib/scenario.ts";
import { harnessCpu, TreeCpuTracker, type CpuByRole } from "../lib/cpu.ts";
import { makeMessage } from "../lib/message.ts";
import { clearMaildir, maildirCount } from "../lib/maildir.ts";
import { describeMemory, treeMemory, type TreeMemory } from "../lib/pss.ts";
import { queuedCount } from "../lib/queue.ts";
import { summarize } from "../lib/stats.ts";
import { describeSubmitter, probeSubmitter, sendmailSubmitter, submitAsync, type Submitter } from "../lib/submit.ts";
import { sleepMs, waitFor } from "../lib/wait.ts";

const MESSAGE_SIZE = 2048;
const SETTLE_MS = 2000;
const POLL_MS = 20;
const CPU_SAMPLE_MS = 250;
const PSS_SAMPLE_MS = 1000;
/** A run gives up when no message is delivered for this long. */
const STALL_MS = 60_000;

export const scenario: Scenario = {
  name: "sendmail-throughput",
  summary: "End-to-end messages/s of `sendmail -i user@localhost` from 1 and 8 submitters until all are in the Maildir",
  defaultRuns: 3,
  options: {
    messages: { type: "string", description: "messages per run (default 2000)" },
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
  const messages = wholeNumber(ctx.options.extra.messages, 2000, "messages");
  const levels = String(ctx.options.extra.concurrency ?? "1,8")
    .split(",")
    .map((v) => wholeNumber(v.trim(), 0, "concurrency"));
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
      unavailable[s.mta.name] = { unavailable: `not yet applicable (${why.unavailable})` };
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

  const results = new Map<string, RunResult[]>();
  const key = (name: MtaName, c: number) => `${name}/${c}`;
  for (const c of levels) {
    for (let i = 0; i < ctx.options.runs; i++) {
      const order = i % 2 === 0 ? active : [...active].reverse();
      for (const s of order) {
        const r = await oneRun(ctx, s, messages, c, msgFile);
        ctx.progress(
          `  ${s.mta.name}, ${c} submitter(s), run ${i + 1}/${ctx.options.runs}: ${r.accepted} messages, ${r.rate.toFixed(1)}/s end to end, ` +
            `${r.submitRate.toFixed(1)}/s submitted, drain ${r.drain.toFixed(2)} s${r.stalled ? `; STALLED: ${r.stalled}` : ""}`,
        );
        const list = results.get(key(s.mta.name, c)) ?? [];
        list.push(r);
        results.set(key(s.mta.name, c), list);
      }
    }
  }

  const sideOf = (name: MtaName, c: number, pick: (r: RunResult) => number): Side => {
    if (unavailable[name]) return unavailable[name]!;
    const list = (results.get(key(name, c)) ?? []).filter((r) => !r.stalled);
    return list.length ? summarize(list.map(pick)) : { unavailable: "every run stalled" };
  };
  const runNotes = (c: number): string[] =>
    (["postfix", "postern"] as const).flatMap((name) => {
      const list = results.get(key(name, c)) ?? [];
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
      target: { ratio: 2, kind: "at least" },
      notes: runNotes(c),
    });
    measurements.push({ name: `${label}, submission only`, unit: "msg/s", better: "higher", postfix: sideOf("postfix", c, (r) => r.submitRate), postern: sideOf("postern", c, (r) => r.submitRate) });
    measurements.push({ name: `${label}, drain after last sendmail`, unit: "s", better: "lower", postfix: sideOf("postfix", c, (r) => r.drain), postern: sideOf("postern", c, (r) => r.drain) });
  }
  measurements.push({ name: `idle memory, PSS (${SETTLE_MS / 1000} s after start)`, unit: "MB", better: "lower", postfix: idle.postfix, postern: idle.postern, notes: idleNotes });
  const memoryNotes: string[] = [];
  const lastRun = (name: MtaName) => results.get(key(name, levels.at(-1)!))?.at(-1);
  const endSide = (name: MtaName): Side => {
    const r = lastRun(name);
    if (unavailable[name] || !r) return unavailable[name] ?? { unavailable: "no run" };
    memoryNotes.push(`${name} at the end of its last run: ${describeMemory(r.memoryEnd)}`);
    return summarize([r.memoryEnd.pssKb / 1024]);
  };
  measurements.push({ name: "memory at the end of the last run, PSS", unit: "MB", better: "lower", postfix: endSide("postfix"), postern: endSide("postern"), notes: memoryNotes });
  const peakSide = (name: MtaName): Side => {
    if (unavailable[name]) return unavailable[name]!;
    const all = [...results.entries()].filter(([k]) => k.startsWith(`${name}/`)).flatMap(([, list]) => list);
    return all.length ? summarize([Math.max(...all.map((r) => r.pssPeakKb)) / 1024]) : { unavailable: "no run" };
  };
  measurements.push({ name: `peak memory during the runs, PSS (sampled every ${PSS_SAMPLE_MS / 1000} s)`, unit: "MB", better: "lower", postfix: peakSide("postfix"), postern: peakSide("postern") });

  for (const c of levels) for (const s of active) notes.push(cpuNote(s.mta.name, c, results.get(key(s.mta.name, c)) ?? []));
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
  const roles = new Map<string, number>();
  let daemon = 0;
  let between = 0;
  for (const r of done) {
    daemon += r.cpu.totalMs;
    between += r.cpu.betweenSamplesMs;
    for (const [role, v] of r.cpu.roles) roles.set(role, (roles.get(role) ?? 0) + v.ms);
  }
  const sendmail = done.reduce((s, r) => s + r.sendmailMs, 0);
  const parts = [...roles.entries()].filter(([, ms]) => ms > 0).sort((a, b) => b[1] - a[1]).map(([role, ms]) => `${role} ${per(ms)}`);
  if (between > 0) parts.push(`processes gone between samples ${per(between)}`);
  const wall = done.reduce((s, r) => s + r.seconds, 0);
  return (
    `${name}, ${c} submitter(s): CPU per message ${per(sendmail + daemon)} ms = sendmail ${per(sendmail)} + daemons ${per(daemon)} (${parts.join(", ")}); ` +
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
  let pssPeakKb = 0;

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

  let delivered = 0;
  let lastProgress = t0;
  let lastCpu = t0;
  let lastPss = t0 - PSS_SAMPLE_MS;
  let stalled: string | undefined;
  for (;;) {
    await Bun.sleep(POLL_MS);
    const now = performance.now();
    const count = maildirCount(maildir);
    if (count > delivered) {
      delivered = count;
      lastProgress = now;
    }
    if (tSubmitted && delivered >= accepted) break;
    if (now - lastCpu >= CPU_SAMPLE_MS) {
      tracker.sample();
      lastCpu = now;
    }
    if (now - lastPss >= PSS_SAMPLE_MS) {
      pssPeakKb = Math.max(pssPeakKb, treeMemory(master).pssKb);
      lastPss = now;
    }
    if (now - lastProgress > STALL_MS) {
      stalled = `${delivered} of ${accepted} delivered after ${((now - t0) / 1000).toFixed(0)} s, ${queuedCount(mta.queueDirectory)} files queued`;
      break;
    }
  }
  const tEnd = performance.now();
  await allSubmitted;
  const cpu = tracker.result();
  const h1 = harnessCpu();
  const memoryEnd = treeMemory(master);
  pssPeakKb = Math.max(pssPeakKb, memoryEnd.pssKb);
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
  return u ? { unavailable: `not yet applicable (${u.unavailable})` } : { unavailable: "not measured" };
}

function wholeNumber(v: unknown, fallback: number, what: string): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${what} must be a whole number, not "${v}"`);
  return n;
}
