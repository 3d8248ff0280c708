/**
 * relay: end-to-end messages per second relayed through each system's SMTP
 * client. Postfix's smtp-source sends 4 KiB messages for a remote domain
 * (example.com) into each system's SMTP server on 127.0.0.1 over 1, 20 and
 * 100 parallel sessions, plus a run with 10 recipients per message; each
 * system relays them through `relayhost = [127.0.0.1]:PORT` to its own
 * Postfix smtp-sink, started and stopped here. The clock runs from the start
 * of smtp-source until the sink has counted every message (its `-c`
 * counters, read from its stdout) and the system's queue is empty (so with
 * several recipients every one of them was accepted by the sink, however
 * the system split the transactions).
 *
 * Both daemons run throughout; runs alternate between the systems, and
 * each starts with an empty queue. Both commit every message with fsync
 * before their 250 reply; the sinks keep nothing. Nothing leaves
 * 127.0.0.1: the relayhost is a bracketed address (no MX or host lookup)
 * and DNS is off on both sides.
 *
 * Runs as root (smtp-sink drops to `nobody` with -u). Distrusts nothing:
 * every peer is local and started by the harness. Limits: the sink answers
 * at once and discards the message, so the figures are the relaying MTA's
 * cost alone; smtp-sink counts transactions, not recipients.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { freePort, type BenchContext } from "../lib/context.ts";
import type { Mta, MtaName, Unavailable } from "../lib/mta.ts";
import type { Measurement, Scenario, ScenarioResult, Side } from "../lib/scenario.ts";
import { onCleanup } from "../lib/cleanup.ts";
import { TreeCpuTracker, type CpuByRole } from "../lib/cpu.ts";
import { clearMaildir, maildirCount } from "../lib/maildir.ts";
import { treeMemory } from "../lib/pss.ts";
import { queuedCount } from "../lib/queue.ts";
import { summarize } from "../lib/stats.ts";
import { alive, sleepMs, waitFor } from "../lib/wait.ts";

const MESSAGE_SIZE = 4096;
const SETTLE_MS = 2000;
const POLL_MS = 20;
const PSS_SAMPLE_MS = 500;
const CPU_SAMPLE_MS = 250;
/** A run gives up when the sink sees no new message for this long. */
const STALL_MS = 60_000;
const SMTP_SOURCE = "/usr/sbin/smtp-source";
const SMTP_SINK = "/usr/sbin/smtp-sink";
const REMOTE_DOMAIN = "example.com";

/** The sinks' ports, picked by parameters() before the instances are written. */
const sinkPorts: Record<MtaName, number> = { postfix: 0, postern: 0 };

export const scenario: Scenario = {
  name: "relay",
  summary: "End-to-end messages/s of smtp-source (4 KiB, 1/20/100 sessions, and 10 recipients) relayed by each system through relayhost to an smtp-sink",
  defaultRuns: 3,
  options: {
    messages: { type: "string", description: "messages per run (default 2000)" },
    sessions: { type: "string", description: "comma-separated numbers of parallel SMTP sessions (default 1,20,100)" },
    recipients: { type: "string", description: "recipients per message of the extra run (default 10; 1 leaves it out)" },
    "recipients-sessions": { type: "string", description: "sessions of the run with several recipients (default 20)" },
  },
  parameters() {
    sinkPorts.postfix = freePort();
    sinkPorts.postern = freePort();
    return {
      postfix: { relayhost: `[127.0.0.1]:${sinkPorts.postfix}` },
      postern: { relayhost: `[127.0.0.1]:${sinkPorts.postern}` },
    };
  },
  run,
};

/** One smtp-sink with -c: its running message count, parsed from "sess=N quit=N mesg=N\r" lines. */
class Sink {
  readonly port: number;
  readonly pid: number;
  messages = 0;
  #exited = false;
  #stderr = "";

  constructor(port: number) {
    this.port = port;
    const proc = Bun.spawn([SMTP_SINK, "-c", "-u", "nobody", "-m", "1000", `127.0.0.1:${port}`, "1000"], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    this.pid = proc.pid;
    onCleanup(`stop smtp-sink ${proc.pid}`, () => this.stop());
    void proc.exited.then(() => (this.#exited = true));
    void this.#read(proc.stdout);
    void new Response(proc.stderr).text().then((t) => (this.#stderr = t));
  }

  async #read(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of stream) {
      pending += decoder.decode(chunk, { stream: true });
      const parts = pending.split(/[\r\n]/);
      pending = parts.pop() ?? "";
      for (let i = parts.length - 1; i >= 0; i--) {
        const m = /mesg=(\d+)/.exec(parts[i]!);
        if (m) {
          this.messages = Math.max(this.messages, Number(m[1]));
          break;
        }
      }
    }
  }

  /** Waits until the sink accepts connections. */
  async ready(): Promise<void> {
    const end = Date.now() + 10_000;
    while (Date.now() < end) {
      if (this.#exited) throw new Error(`smtp-sink on port ${this.port} exited: ${this.#stderr.trim()}`);
      try {
        const socket = await Bun.connect({ hostname: "127.0.0.1", port: this.port, socket: { data() {} } });
        socket.end();
        // the probe is a session without a message; it does not change mesg=
        return;
      } catch {
        await Bun.sleep(50);
      }
    }
    throw new Error(`smtp-sink on port ${this.port} did not start`);
  }

  stop(): void {
    if (this.#exited || !alive(this.pid)) return;
    try {
      process.kill(this.pid, "SIGTERM");
    } catch {}
    if (!waitFor(() => !alive(this.pid), 5_000)) {
      try {
        process.kill(this.pid, "SIGKILL");
      } catch {}
      waitFor(() => !alive(this.pid), 5_000);
    }
  }
}

interface RunResult {
  /** Transactions the sink counted during the run. */
  transactions: number;
  rate: number;
  smtpRate: number;
  seconds: number;
  pssPeakKb: number;
  cpu: CpuByRole;
  error?: string;
}

function wholeNumber(v: unknown, fallback: number, what: string): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${what} must be a whole number of at least 1, not "${v}"`);
  return n;
}

function deferredCount(queueDirectory: string): number {
  let n = 0;
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) (e.isDirectory() ? walk(join(dir, e.name)) : n++);
  };
  walk(join(queueDirectory, "deferred"));
  return n;
}

async function oneRun(ctx: BenchContext, mta: Mta, sink: Sink, messages: number, sessions: number, recipients: number): Promise<RunResult> {
  if (!waitFor(() => queuedCount(mta.queueDirectory) === 0, 120_000, 100)) throw new Error(`${mta.name}: the queue did not empty before a run (${queuedCount(mta.queueDirectory)} files)`);
  const maildir = mta.maildir(ctx.user.home);
  clearMaildir(maildir);
  sleepMs(500);
  const master = mta.masterPid();
  if (master === undefined) throw new Error(`${mta.name} is not running`);
  const tracker = new TreeCpuTracker(master);
  const base = sink.messages;
  const argv = [SMTP_SOURCE, "-d", "-s", String(sessions), "-m", String(messages), "-l", String(MESSAGE_SIZE), "-M", "bench.client", "-f", `${ctx.user.name}@localhost`, "-t", `${ctx.user.name}@${REMOTE_DOMAIN}`];
  if (recipients > 1) argv.push("-r", String(recipients));
  argv.push(`127.0.0.1:${mta.smtpPort}`);
  const t0 = performance.now();
  const proc = Bun.spawn(argv, { stdout: "ignore", stderr: "pipe", stdin: "ignore" });
  let tSent = 0;
  let sourceError: string | undefined;
  void proc.exited.then(async (code) => {
    tSent = performance.now();
    if (code !== 0) sourceError = `smtp-source exit ${code}: ${(await new Response(proc.stderr).text()).trim().split("\n").at(-1) ?? ""}`;
  });
  let seen = 0;
  let lastProgress = t0;
  let lastPss = 0;
  let lastCpu = t0;
  let pssPeakKb = 0;
  let error: string | undefined;
  for (;;) {
    await Bun.sleep(POLL_MS);
    const now = performance.now();
    const count = sink.messages - base;
    if (count > seen) {
      seen = count;
      lastProgress = now;
    }
    if (now - lastCpu >= CPU_SAMPLE_MS) {
      tracker.sample();
      lastCpu = now;
    }
    if (now - lastPss >= PSS_SAMPLE_MS) {
      pssPeakKb = Math.max(pssPeakKb, treeMemory(master).pssKb);
      lastPss = now;
    }
    // everything reached the sink once it has counted every message and nothing is left queued
    if (tSent && !sourceError && seen >= messages && queuedCount(mta.queueDirectory) === 0) break;
    if (tSent && sourceError) {
      error = sourceError;
      break;
    }
    if (now - lastProgress > STALL_MS) {
      error = `the sink saw ${seen} of ${messages} messages after ${((now - t0) / 1000).toFixed(0)} s; ${queuedCount(mta.queueDirectory)} files queued, ${deferredCount(mta.queueDirectory)} deferred`;
      proc.kill();
      break;
    }
  }
  const tEnd = performance.now();
  await proc.exited;
  const cpu = tracker.result();
  const seconds = (tEnd - t0) / 1000;
  // a bounce to the sender lands in its Maildir: a run with one is not a clean relay run
  const bounces = maildirCount(maildir);
  if (!error && bounces) error = `${bounces} bounce(s) or notices in the sender's Maildir`;
  return {
    transactions: sink.messages - base,
    rate: messages / seconds,
    smtpRate: tSent ? messages / ((tSent - t0) / 1000) : 0,
    seconds,
    pssPeakKb,
    cpu,
    ...(error ? { error } : {}),
  };
}

interface Level {
  sessions: number;
  recipients: number;
}

const levelKey = (l: Level) => `${l.sessions}/${l.recipients}`;
const levelLabel = (l: Level) => `${l.sessions} session${l.sessions === 1 ? "" : "s"}${l.recipients > 1 ? `, ${l.recipients} recipients per message` : ""}`;

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const messages = wholeNumber(ctx.options.extra.messages, 2000, "messages");
  const sessionList = String(ctx.options.extra.sessions ?? "1,20,100")
    .split(",")
    .map((v) => wholeNumber(v.trim(), 1, "sessions"));
  const recipients = wholeNumber(ctx.options.extra.recipients, 10, "recipients");
  const recipientsSessions = wholeNumber(ctx.options.extra["recipients-sessions"], 20, "recipients-sessions");
  const levels: Level[] = sessionList.map((s) => ({ sessions: s, recipients: 1 }));
  if (recipients > 1) levels.push({ sessions: recipientsSessions, recipients });

  const sinks: Record<MtaName, Sink> = { postfix: new Sink(sinkPorts.postfix), postern: new Sink(sinkPorts.postern) };
  await sinks.postfix.ready();
  await sinks.postern.ready();

  const started: Record<MtaName, Unavailable | undefined> = { postfix: ctx.postfix.start(), postern: ctx.postern.start() };
  if (started.postfix) throw new Error(`Postfix did not start: ${started.postfix.unavailable}`);
  sleepMs(SETTLE_MS);
  const active = [ctx.postfix, ctx.postern].filter((m) => !started[m.name]);

  const warmup = Math.min(messages, 200);
  for (const mta of active) {
    ctx.progress(`warm-up: ${warmup} messages relayed by ${mta.name}`);
    const r = await oneRun(ctx, mta, sinks[mta.name], warmup, Math.min(20, Math.max(...sessionList)), 1);
    if (r.error) throw new Error(`${mta.name}: warm-up failed: ${r.error}`);
  }

  const results = new Map<string, RunResult[]>();
  const key = (name: MtaName, l: Level) => `${name}/${levelKey(l)}`;
  for (const l of levels) {
    for (let i = 0; i < ctx.options.runs; i++) {
      const order = i % 2 === 0 ? active : [...active].reverse();
      for (const mta of order) {
        const r = await oneRun(ctx, mta, sinks[mta.name], messages, l.sessions, l.recipients);
        ctx.progress(
          `  ${mta.name}, ${levelLabel(l)}, run ${i + 1}/${ctx.options.runs}: ${r.rate.toFixed(1)}/s end to end, ${r.smtpRate.toFixed(1)}/s over SMTP, ` +
            `${r.transactions} transactions at the sink, daemon CPU ${(r.cpu.totalMs / messages).toFixed(2)} ms/msg${r.error ? `; FAILED: ${r.error}` : ""}`,
        );
        const list = results.get(key(mta.name, l)) ?? [];
        list.push(r);
        results.set(key(mta.name, l), list);
      }
    }
  }

  const side = (name: MtaName, l: Level, pick: (r: RunResult) => number): Side => {
    if (started[name]) return { unavailable: `not yet applicable (${started[name]!.unavailable})` };
    const ok = (results.get(key(name, l)) ?? []).filter((r) => !r.error);
    return ok.length ? summarize(ok.map(pick)) : { unavailable: "every run failed" };
  };
  const failures = (l: Level) =>
    (["postfix", "postern"] as const).flatMap((n) => (results.get(key(n, l)) ?? []).filter((r) => r.error).map((r) => `${n}: ${r.error}`));
  const measurements: Measurement[] = [];
  for (const l of levels) {
    const label = levelLabel(l);
    measurements.push({ name: `${label}, end to end`, unit: "msg/s", better: "higher", postfix: side("postfix", l, (r) => r.rate), postern: side("postern", l, (r) => r.rate), target: { ratio: 2, kind: "at least" }, notes: failures(l) });
    measurements.push({ name: `${label}, into the SMTP server (until smtp-source exits)`, unit: "msg/s", better: "higher", postfix: side("postfix", l, (r) => r.smtpRate), postern: side("postern", l, (r) => r.smtpRate) });
  }
  const top: Level = { sessions: Math.max(...sessionList), recipients: 1 };
  measurements.push({
    name: `peak memory with ${top.sessions} sessions, PSS of the whole system`,
    unit: "MB",
    better: "lower",
    postfix: side("postfix", top, (r) => r.pssPeakKb / 1024),
    postern: side("postern", top, (r) => r.pssPeakKb / 1024),
  });
  for (const mta of active) mta.stop();
  sinks.postfix.stop();
  sinks.postern.stop();

  const notes = [
    `each system relays through relayhost = [127.0.0.1]:PORT to its own smtp-sink (-c counters); the clock stops when the sink has counted every message and the system's queue is empty`,
    `each run starts with an empty queue; ${warmup} uncounted warm-up messages per side first (20 sessions); memory sampled every ${PSS_SAMPLE_MS} ms`,
  ];
  for (const l of levels) for (const mta of active) notes.push(detailNote(mta.name, l, messages, results.get(key(mta.name, l)) ?? []));
  return {
    command:
      `smtp-source -d -s N -m ${messages} -l ${MESSAGE_SIZE} -f ${ctx.user.name}@localhost -t ${ctx.user.name}@${REMOTE_DOMAIN} 127.0.0.1:PORT  (N = ${sessionList.join(", ")})` +
      (recipients > 1 ? `; and -s ${recipientsSessions} -r ${recipients}` : "") +
      `; relayhost = [127.0.0.1]:SINKPORT, smtp-sink -c -u nobody 127.0.0.1:SINKPORT 1000`,
    measurements,
    notes,
  };
}

/** "postern, 20 sessions: 1.00 sink transactions per message; daemon CPU per message 2.10 ms (postern qmgr 0.9, ...)". */
function detailNote(name: MtaName, l: Level, messages: number, runs: RunResult[]): string {
  const done = runs.filter((r) => !r.error);
  if (!done.length) return `${name}, ${levelLabel(l)}: no completed run`;
  const total = messages * done.length;
  const per = (ms: number) => (ms / total).toFixed(2);
  const roles = new Map<string, number>();
  let daemon = 0;
  let between = 0;
  for (const r of done) {
    daemon += r.cpu.totalMs;
    between += r.cpu.betweenSamplesMs;
    for (const [role, v] of r.cpu.roles) roles.set(role, (roles.get(role) ?? 0) + v.ms);
  }
  const parts = [...roles.entries()].filter(([, ms]) => ms > 0).sort((a, b) => b[1] - a[1]).map(([role, ms]) => `${role} ${per(ms)}`);
  if (between > 0) parts.push(`processes gone between samples ${per(between)}`);
  const wall = done.reduce((s, r) => s + r.seconds, 0);
  const transactions = done.reduce((s, r) => s + r.transactions, 0) / total;
  return (
    `${name}, ${levelLabel(l)}: ${transactions.toFixed(2)} sink transactions per message; daemon CPU per message ${per(daemon)} ms (${parts.join(", ")}), ` +
    `${((daemon / (wall * 1000)) * 100).toFixed(0)}% of one core over ${done.length} runs`
  );
}
