/**
 * sendmail-latency: the time from spawning `sendmail -i user@localhost` with
 * a 2 KiB message on stdin to its exit (the message durably queued), for
 * Postfix's and postern's sendmail, with the daemons down and up.
 *
 * Runs are interleaved (Postfix, postern, postern, Postfix, ...) so both
 * share the machine's noise; a few warm-up runs per side are not counted.
 * Each phase checks its effect: with the daemons down, maildrop holds one
 * file per successful run; with them up, every message reaches the Maildir.
 * With the daemons up the idle memory (PSS) of each system is taken first.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BenchContext } from "../lib/context.ts";
import type { Mta, Unavailable } from "../lib/mta.ts";
import type { Measurement, Scenario, ScenarioResult, Side } from "../lib/scenario.ts";
import { makeMessage } from "../lib/message.ts";
import { maildirCount } from "../lib/maildir.ts";
import { timedRun } from "../lib/proc.ts";
import { describeMemory, treeMemory } from "../lib/pss.ts";
import { summarize } from "../lib/stats.ts";
import { describeSubmitter, probeSubmitter, sendmailSubmitter, submitOnce, type Submitter } from "../lib/submit.ts";
import { sleepMs, waitFor } from "../lib/wait.ts";
import { buildRuntimeFloor } from "../lib/runtime-floor.ts";
import { SETTLE_MS } from "../lib/alternate.ts";

const MESSAGE_SIZE = 2048;

export const scenario: Scenario = {
  name: "sendmail-latency",
  summary: "Latency of `sendmail -i user@localhost < 2 KiB message`, spawn to exit, daemons down and up",
  defaultRuns: 200,
  run,
};

interface PhaseOutcome {
  samples: Record<Mta["name"], number[] | Unavailable>;
  /** CPU (user + system) of each successful run, ms; Postfix's includes postdrop. */
  cpu: Record<Mta["name"], number[]>;
  failures: Record<Mta["name"], string[]>;
  notes: string[];
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const msgFile = join(ctx.base, "message-2k.eml");
  const recipient = `${ctx.user.name}@localhost`;
  writeFileSync(msgFile, makeMessage(MESSAGE_SIZE, { from: `Bench <${recipient}>`, to: recipient, subject: "postern bench: sendmail latency" }));
  chmodSync(msgFile, 0o644);
  const submitters = [sendmailSubmitter(ctx, ctx.postfix, ["-i"], [recipient]), sendmailSubmitter(ctx, ctx.postern, ["-i"], [recipient])];
  const notes: string[] = [];

  const floor = harnessFloor(submitters[0]!, msgFile);
  notes.push(`harness floor (spawn to exit of /bin/true, same stdin and user): median ${floor.toFixed(2)} ms, included in every figure`);

  ctx.progress("phase 1: daemons down");
  ctx.postfix.stop();
  ctx.postern.stop();
  const down = measurePhase(ctx, submitters, msgFile, "maildrop");
  notes.push(...down.notes);

  ctx.progress("phase 2: daemons up");
  const started: Record<Mta["name"], Unavailable | undefined> = { postfix: ctx.postfix.start(), postern: ctx.postern.start() };
  if (started.postfix) throw new Error(`Postfix did not start: ${started.postfix.unavailable}`);
  sleepMs(SETTLE_MS);
  const memory = idleMemory(ctx, started);
  const up = measurePhase(ctx, submitters, msgFile, "maildir", started);
  notes.push(...up.notes);
  notes.push(...runtimeFloor(ctx, submitters[1]!, msgFile));
  ctx.postfix.stop();
  ctx.postern.stop();

  const row = (name: string, phase: PhaseOutcome): Measurement => ({
    name,
    unit: "ms",
    better: "lower",
    postfix: side(phase.samples.postfix),
    postern: side(phase.samples.postern),
    target: { ratio: 0.8, kind: "at most" },
    notes: (["postfix", "postern"] as const).flatMap((n) => (phase.failures[n].length ? [`${n}: ${phase.failures[n].length} failed runs, first: ${phase.failures[n][0]}`] : [])),
  });
  return {
    command: `${describeSubmitter(submitters[0]!, `${MESSAGE_SIZE}-byte message`)}  (MAIL_CONFIG=private instance; user ${ctx.options.asRoot ? "root" : ctx.user.name})`,
    measurements: [row("daemon down", down), row("daemon up", up), memory],
    notes,
  };
}

function side(samples: number[] | Unavailable): Side {
  return Array.isArray(samples) ? summarize(samples) : samples;
}

/** Probe, warm up, then `runs` interleaved timed runs; checks where the messages went. */
function measurePhase(ctx: BenchContext, submitters: Submitter[], msgFile: string, check: "maildrop" | "maildir", started?: Record<Mta["name"], Unavailable | undefined>): PhaseOutcome {
  const outcome: PhaseOutcome = { samples: { postfix: [], postern: [] }, cpu: { postfix: [], postern: [] }, failures: { postfix: [], postern: [] }, notes: [] };
  const active: Submitter[] = [];
  const accepted: Record<Mta["name"], number> = { postfix: 0, postern: 0 };
  const before: Record<Mta["name"], number> = { postfix: 0, postern: 0 };
  for (const s of submitters) {
    s.mta.clearMaildrop();
    before[s.mta.name] = maildirCount(s.mta.maildir(ctx.user.home));
    const daemon = started?.[s.mta.name];
    if (daemon) {
      outcome.samples[s.mta.name] = { unavailable: `not yet applicable (${daemon.unavailable})` };
      continue;
    }
    const probe = probeSubmitter(s, msgFile);
    if (probe) {
      if (s.mta.name === "postfix") throw new Error(`Postfix's sendmail fails in the private instance: ${probe.unavailable}`);
      outcome.samples[s.mta.name] = probe;
      continue;
    }
    accepted[s.mta.name]++;
    active.push(s);
  }
  for (let i = 0; i < ctx.options.warmup; i++) for (const s of active) if (submitOnce(s, msgFile).code === 0) accepted[s.mta.name]++;
  for (let i = 0; i < ctx.options.runs; i++) {
    const order = i % 2 === 0 ? active : [...active].reverse();
    for (const s of order) {
      const r = submitOnce(s, msgFile);
      if (r.code === 0) {
        (outcome.samples[s.mta.name] as number[]).push(r.ms);
        outcome.cpu[s.mta.name].push(r.cpuMs);
        accepted[s.mta.name]++;
      } else {
        outcome.failures[s.mta.name].push(`exit ${r.code}: ${r.stderr.trim().split("\n").at(-1) ?? ""}`);
      }
    }
    if ((i + 1) % 50 === 0) ctx.progress(`  ${i + 1}/${ctx.options.runs}`);
  }
  for (const s of active) {
    const name = s.mta.name;
    const cpu = outcome.cpu[name];
    if (cpu.length) outcome.notes.push(`${check === "maildrop" ? "daemons down" : "daemons up"}, ${name}: CPU per sendmail (user + system${name === "postfix" ? ", postdrop included" : ""}) median ${summarize(cpu).median.toFixed(2)} ms [p10 ${summarize(cpu).p10.toFixed(2)}, p90 ${summarize(cpu).p90.toFixed(2)}]`);
    if (check === "maildrop") {
      const queued = s.mta.maildropCount();
      outcome.notes.push(`daemons down, ${name}: ${queued} of ${accepted[name]} accepted messages are in maildrop/`);
    } else {
      const maildir = s.mta.maildir(ctx.user.home);
      const want = before[name] + accepted[name];
      waitFor(() => maildirCount(maildir) >= want, 120_000, 100);
      outcome.notes.push(`daemons up, ${name}: ${maildirCount(maildir) - before[name]} of ${accepted[name]} accepted messages delivered to ${maildir}`);
    }
    s.mta.clearMaildrop();
  }
  return outcome;
}

/** The harness's own cost: spawn to exit of /bin/true with the same stdin, environment and user. */
function harnessFloor(like: Submitter, msgFile: string): number {
  const samples: number[] = [];
  for (let i = 0; i < 60; i++) samples.push(timedRun(["/bin/true"], { stdinFile: msgFile, env: like.env, cwd: like.cwd, as: like.as }).ms);
  return summarize(samples.slice(10)).median;
}

/**
 * The runtime's floor beside postern's sendmail (issue 16): a compiled Bun program that only exits, one that
 * reads stdin and writes, fsyncs and renames a file, and a minimal sendmail (bench/lib/runtime-floor.ts);
 * interleaved with postern's sendmail, as the same user.
 */
function runtimeFloor(ctx: BenchContext, postern: Submitter, msgFile: string): string[] {
  const floor = buildRuntimeFloor(ctx.base, postern.as);
  const runs = Math.min(ctx.options.runs, 100);
  const kinds = {
    "Bun exit-only program": floor.exit,
    "Bun stdin -> write, fsync, rename program": floor.queueFile,
    "Bun minimal sendmail program (TOML configuration, argv, passwd, queue-file records)": [...floor.minimalSendmail, ...postern.argv.slice(1)],
    "postern sendmail": postern.argv,
  };
  const ms: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  for (let i = 0; i < runs + 5; i++) {
    for (const [name, argv] of Object.entries(kinds)) {
      const r = timedRun(argv, { stdinFile: msgFile, env: postern.env, cwd: postern.cwd, as: postern.as });
      if (r.code !== 0) throw new Error(`runtime floor: ${name} exited ${r.code}: ${r.stderr.trim()}`);
      if (i < 5) continue;
      (ms[name] ??= []).push(r.ms);
      (cpu[name] ??= []).push(r.cpuMs);
    }
  }
  return Object.keys(kinds).map((name) => `runtime floor, ${name} (${runs} interleaved runs, daemons up): latency median ${summarize(ms[name]!).median.toFixed(2)} ms [p10 ${summarize(ms[name]!).p10.toFixed(2)}, p90 ${summarize(ms[name]!).p90.toFixed(2)}], CPU median ${summarize(cpu[name]!).median.toFixed(2)} ms`);
}

/** PSS of every process of each running system, a moment after its start. */
function idleMemory(ctx: BenchContext, started: Record<Mta["name"], Unavailable | undefined>): Measurement {
  const notes: string[] = [];
  const sideOf = (mta: Mta): Side => {
    const daemon = started[mta.name];
    if (daemon) return { unavailable: `not yet applicable (${daemon.unavailable})` };
    const master = mta.masterPid();
    if (master === undefined) return { unavailable: `${mta.name} has no master process` };
    const memory = treeMemory(master);
    notes.push(`${mta.name}: ${describeMemory(memory)}`);
    return summarize([memory.pssKb / 1024]);
  };
  return { name: `idle memory, PSS (${SETTLE_MS / 1000} s after start)`, unit: "MB", better: "lower", postfix: sideOf(ctx.postfix), postern: sideOf(ctx.postern), notes };
}
