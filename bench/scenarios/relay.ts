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
import { alternateRuns, mtaPlan, notApplicable, startSystems } from "../lib/alternate.ts";
import { freePort, type BenchContext } from "../lib/context.ts";
import type { Mta, MtaName } from "../lib/mta.ts";
import type { Measurement, Scenario, ScenarioResult } from "../lib/scenario.ts";
import { onCleanup } from "../lib/cleanup.ts";
import { describeRoles, sumCpu, TreeCpuTracker, type CpuByRole } from "../lib/cpu.ts";
import { clearMaildir, maildirCount } from "../lib/maildir.ts";
import { MESSAGES_OPTION, numberList, wholeNumber } from "../lib/options.ts";
import { queuedCount, queuedIn } from "../lib/queue.ts";
import { watchRun } from "../lib/run-watch.ts";
import { SMTP_SOURCE_MESSAGE_SIZE as MESSAGE_SIZE, startSmtpSource } from "../lib/smtp-source.ts";
import { alive, sleepMs, waitFor } from "../lib/wait.ts";

const PSS_SAMPLE_MS = 500;
const SMTP_SINK = "/usr/sbin/smtp-sink";
const REMOTE_DOMAIN = "example.com";

/** The sinks' ports, picked by parameters() before the instances are written. */
const sinkPorts: Record<MtaName, number> = { postfix: 0, postern: 0 };

export const scenario: Scenario = {
  name: "relay",
  summary: "End-to-end messages/s of smtp-source (4 KiB, 1/20/100 sessions, and 10 recipients) relayed by each system through relayhost to an smtp-sink",
  defaultRuns: 3,
  options: {
    messages: MESSAGES_OPTION,
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

async function oneRun(ctx: BenchContext, mta: Mta, sink: Sink, messages: number, sessions: number, recipients: number): Promise<RunResult> {
  if (!waitFor(() => queuedCount(mta.queueDirectory) === 0, 120_000, 100)) throw new Error(`${mta.name}: the queue did not empty before a run (${queuedCount(mta.queueDirectory)} files)`);
  const maildir = mta.maildir(ctx.user.home);
  clearMaildir(maildir);
  sleepMs(500);
  const master = mta.masterPid();
  if (master === undefined) throw new Error(`${mta.name} is not running`);
  const tracker = new TreeCpuTracker(master);
  const base = sink.messages;
  const t0 = performance.now();
  const source = startSmtpSource({ sessions, messages, from: `${ctx.user.name}@localhost`, to: `${ctx.user.name}@${REMOTE_DOMAIN}`, recipients, port: mta.smtpPort });
  const watched = await watchRun({
    master,
    tracker,
    t0,
    pssSampleMs: PSS_SAMPLE_MS,
    count: () => sink.messages - base,
    // everything reached the sink once it has counted every message and nothing is left queued
    done: (seen) => source.sentAt() > 0 && !source.error() && seen >= messages && queuedCount(mta.queueDirectory) === 0,
    failed: () => (source.sentAt() ? source.error() : undefined),
    stalled: (seen, seconds) =>
      `the sink saw ${seen} of ${messages} messages after ${seconds.toFixed(0)} s; ${queuedCount(mta.queueDirectory)} files queued, ${queuedIn(mta.queueDirectory, ["deferred"])} deferred`,
    onStall: () => source.proc.kill(),
  });
  await source.proc.exited;
  const cpu = tracker.result();
  const seconds = (watched.tEnd - t0) / 1000;
  const tSent = source.sentAt();
  let error = watched.error;
  // a bounce to the sender lands in its Maildir: a run with one is not a clean relay run
  const bounces = maildirCount(maildir);
  if (!error && bounces) error = `${bounces} bounce(s) or notices in the sender's Maildir`;
  return {
    transactions: sink.messages - base,
    rate: messages / seconds,
    smtpRate: tSent ? messages / ((tSent - t0) / 1000) : 0,
    seconds,
    pssPeakKb: watched.pssPeakKb,
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
  const sessionList = numberList(ctx.options.extra.sessions, "1,20,100", "sessions");
  const recipients = wholeNumber(ctx.options.extra.recipients, 10, "recipients");
  const recipientsSessions = wholeNumber(ctx.options.extra["recipients-sessions"], 20, "recipients-sessions");
  const levels: Level[] = sessionList.map((s) => ({ sessions: s, recipients: 1 }));
  if (recipients > 1) levels.push({ sessions: recipientsSessions, recipients });

  const sinks: Record<MtaName, Sink> = { postfix: new Sink(sinkPorts.postfix), postern: new Sink(sinkPorts.postern) };
  await sinks.postfix.ready();
  await sinks.postern.ready();

  const { started, active } = startSystems(ctx);

  const warmup = Math.min(messages, 200);
  const warmupSessions = Math.min(20, Math.max(...sessionList));
  for (const mta of active) {
    ctx.progress(`warm-up: ${warmup} messages relayed by ${mta.name}`);
    const r = await oneRun(ctx, mta, sinks[mta.name], warmup, warmupSessions, 1);
    if (r.error) throw new Error(`${mta.name}: warm-up failed: ${r.error}`);
  }

  const results = await alternateRuns(mtaPlan(levels, ctx.options.runs, active, levelKey), async (mta, l, i) => {
    const r = await oneRun(ctx, mta, sinks[mta.name], messages, l.sessions, l.recipients);
    ctx.progress(
      `  ${mta.name}, ${levelLabel(l)}, run ${i + 1}/${ctx.options.runs}: ${r.rate.toFixed(1)}/s end to end, ${r.smtpRate.toFixed(1)}/s over SMTP, ` +
        `${r.transactions} transactions at the sink, daemon CPU ${(r.cpu.totalMs / messages).toFixed(2)} ms/msg${r.error ? `; FAILED: ${r.error}` : ""}`,
    );
    return r;
  });

  const { side, failures } = results.report((r) => r.error, (name) => notApplicable(started[name]));
  const measurements: Measurement[] = [];
  for (const l of levels) {
    const label = levelLabel(l);
    measurements.push({ name: `${label}, end to end`, unit: "msg/s", better: "higher", postfix: side("postfix", l, (r) => r.rate), postern: side("postern", l, (r) => r.rate), target: { ratio: 2, kind: "at least" }, notes: failures(l) });
    measurements.push({ name: `${label}, into the SMTP server (until smtp-source exits)`, unit: "msg/s", better: "higher", postfix: side("postfix", l, (r) => r.smtpRate), postern: side("postern", l, (r) => r.smtpRate) });
  }
  // issue 16: at most 2 x Postfix's peak in every scenario
  for (const l of levels) {
    measurements.push({
      name: `peak memory, ${levelLabel(l)}, PSS of the whole system`,
      unit: "MB",
      better: "lower",
      postfix: side("postfix", l, (r) => r.pssPeakKb / 1024),
      postern: side("postern", l, (r) => r.pssPeakKb / 1024),
      target: { ratio: 2, kind: "at most" },
    });
  }
  for (const mta of active) mta.stop();
  sinks.postfix.stop();
  sinks.postern.stop();

  const notes = [
    `each system relays through relayhost = [127.0.0.1]:PORT to its own smtp-sink (-c counters); the clock stops when the sink has counted every message and the system's queue is empty`,
    `each run starts with an empty queue; ${warmup} uncounted warm-up messages per side first (${warmupSessions} session${warmupSessions === 1 ? "" : "s"}); memory sampled every ${PSS_SAMPLE_MS} ms`,
  ];
  for (const l of levels) for (const mta of active) notes.push(detailNote(mta.name, l, messages, results.runs(mta.name, l)));
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
  const sum = sumCpu(done.map((r) => r.cpu));
  const wall = done.reduce((s, r) => s + r.seconds, 0);
  const transactions = done.reduce((s, r) => s + r.transactions, 0) / total;
  return (
    `${name}, ${levelLabel(l)}: ${transactions.toFixed(2)} sink transactions per message; daemon CPU per message ${(sum.totalMs / total).toFixed(2)} ms (${describeRoles(sum, total)}), ` +
    `${((sum.totalMs / (wall * 1000)) * 100).toFixed(0)}% of one core over ${done.length} runs`
  );
}
