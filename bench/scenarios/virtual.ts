/**
 * virtual: end-to-end messages per second of smtp-source into virtual
 * mailboxes (issue 12's benchmark): a hosted domain (virtual_mailbox_domains)
 * whose one mailbox is a Maildir below virtual_mailbox_base, written as a
 * vmail uid (static: uid/gid maps) that no passwd entry names, through
 * Postfix's virtual(8) on one side and postern's virtual agent on the other.
 * Each side has its own base directory (made here, owned by the vmail uid);
 * 4 KiB messages, 20 sessions by default, the clock from the start of
 * smtp-source until the Maildir holds every message. Runs alternate between
 * the systems, as smtp-throughput's do, whose run loop this reuses.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MtaName, Unavailable } from "../lib/mta.ts";
import type { Measurement, Scenario, ScenarioResult, Side } from "../lib/scenario.ts";
import { summarize } from "../lib/stats.ts";
import { sleepMs } from "../lib/wait.ts";
import { oneRun, type RunResult } from "./smtp-throughput.ts";

const DOMAIN = "virtual.bench";
const VMAIL_ID = 5000;
const SETTLE_MS = 2000;
const bases: Record<MtaName, string> = { postfix: "", postern: "" };

function wholeNumber(v: unknown, fallback: number, what: string): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${what} must be a whole number of at least 1, not "${v}"`);
  return n;
}

export const scenario: Scenario = {
  name: "virtual",
  summary: "End-to-end messages/s of smtp-source (4 KiB, 20 sessions) into a virtual mailbox (virtual_mailbox_maps, static uid/gid)",
  defaultRuns: 3,
  options: {
    messages: { type: "string", description: "messages per run (default 2000)" },
    sessions: { type: "string", description: "parallel SMTP sessions (default 20)" },
  },
  parameters(options) {
    const dir = mkdtempSync(join(options.tmpdir, "postern-bench-vmail-"));
    // the delivery agents write as the vmail uid, which must reach the base directories
    chmodSync(dir, 0o755);
    const params = (name: MtaName): Record<string, string> => {
      const base = join(dir, name);
      mkdirSync(base, { recursive: true, mode: 0o755 });
      chownSync(base, VMAIL_ID, VMAIL_ID);
      bases[name] = base;
      const map = join(dir, `${name}-mailboxes`);
      writeFileSync(map, `user@${DOMAIN} ${DOMAIN}/user/\n`);
      return {
        virtual_mailbox_domains: DOMAIN,
        virtual_mailbox_base: base,
        virtual_mailbox_maps: `texthash:${map}`,
        virtual_uid_maps: `static:${VMAIL_ID}`,
        virtual_gid_maps: `static:${VMAIL_ID}`,
        virtual_minimum_uid: "100",
      };
    };
    return { postfix: params("postfix"), postern: params("postern") };
  },
  run,
};

async function run(ctx: Parameters<Scenario["run"]>[0]): Promise<ScenarioResult> {
  const messages = wholeNumber(ctx.options.extra.messages, 2000, "messages");
  const sessions = wholeNumber(ctx.options.extra.sessions, 20, "sessions");
  const started: Record<MtaName, Unavailable | undefined> = { postfix: ctx.postfix.start(), postern: ctx.postern.start() };
  if (started.postfix) throw new Error(`Postfix did not start: ${started.postfix.unavailable}`);
  sleepMs(SETTLE_MS);
  const active = [ctx.postfix, ctx.postern].filter((m) => !started[m.name]);
  const target = (name: MtaName) => ({ recipient: `user@${DOMAIN}`, maildir: join(bases[name], DOMAIN, "user") });

  const warmup = Math.min(messages, 200);
  for (const mta of active) {
    ctx.progress(`warm-up: ${warmup} messages through ${mta.name}`);
    const r = await oneRun(ctx, mta, warmup, sessions, target(mta.name));
    if (r.error) throw new Error(`${mta.name}: warm-up failed: ${r.error}`);
  }
  const results = new Map<MtaName, RunResult[]>();
  for (let i = 0; i < ctx.options.runs; i++) {
    const order = i % 2 === 0 ? active : [...active].reverse();
    for (const mta of order) {
      const r = await oneRun(ctx, mta, messages, sessions, target(mta.name));
      ctx.progress(`  ${mta.name}, run ${i + 1}/${ctx.options.runs}: ${r.delivered} delivered, ${r.rate.toFixed(1)}/s end to end${r.error ? `; FAILED: ${r.error}` : ""}`);
      results.set(mta.name, [...(results.get(mta.name) ?? []), r]);
    }
  }
  const side = (name: MtaName, pick: (r: RunResult) => number): Side => {
    if (started[name]) return { unavailable: `not yet applicable (${started[name]!.unavailable})` };
    const ok = (results.get(name) ?? []).filter((r) => !r.error);
    return ok.length ? summarize(ok.map(pick)) : { unavailable: "every run failed" };
  };
  const measurements: Measurement[] = [
    { name: `${sessions} sessions into a virtual mailbox, end to end`, unit: "msg/s", better: "higher", postfix: side("postfix", (r) => r.rate), postern: side("postern", (r) => r.rate), target: { ratio: 2, kind: "at least" } },
    { name: "peak memory, PSS of the whole system", unit: "MB", better: "lower", postfix: side("postfix", (r) => r.pssPeakKb / 1024), postern: side("postern", (r) => r.pssPeakKb / 1024) },
  ];
  for (const mta of active) mta.stop();
  return {
    command: `smtp-source -d -s ${sessions} -m ${messages} -l 4096 -t user@${DOMAIN} 127.0.0.1:PORT`,
    measurements,
    notes: [`virtual_mailbox_maps texthash:, static uid/gid ${VMAIL_ID}; ${warmup} uncounted warm-up messages per side`],
  };
}
