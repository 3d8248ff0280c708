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
import { alternateRuns, mtaPlan, notApplicable, startSystems } from "../lib/alternate.ts";
import type { MtaName } from "../lib/mta.ts";
import { MESSAGES_OPTION, wholeNumber } from "../lib/options.ts";
import type { Measurement, Scenario, ScenarioResult } from "../lib/scenario.ts";
import { oneRun, type RunResult } from "./smtp-throughput.ts";

const DOMAIN = "virtual.bench";
const VMAIL_ID = 5000;
const bases: Record<MtaName, string> = { postfix: "", postern: "" };

export const scenario: Scenario = {
  name: "virtual",
  summary: "End-to-end messages/s of smtp-source (4 KiB, 20 sessions) into a virtual mailbox (virtual_mailbox_maps, static uid/gid)",
  defaultRuns: 3,
  options: {
    messages: MESSAGES_OPTION,
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
  const { started, active } = startSystems(ctx);
  const target = (name: MtaName) => ({ recipient: `user@${DOMAIN}`, maildir: join(bases[name], DOMAIN, "user") });

  const warmup = Math.min(messages, 200);
  for (const mta of active) {
    ctx.progress(`warm-up: ${warmup} messages through ${mta.name}`);
    const r = await oneRun(ctx, mta, warmup, sessions, target(mta.name));
    if (r.error) throw new Error(`${mta.name}: warm-up failed: ${r.error}`);
  }
  const results = await alternateRuns(mtaPlan([sessions], ctx.options.runs, active), async (mta, _, i) => {
    const r = await oneRun(ctx, mta, messages, sessions, target(mta.name));
    ctx.progress(`  ${mta.name}, run ${i + 1}/${ctx.options.runs}: ${r.delivered} delivered, ${r.rate.toFixed(1)}/s end to end${r.error ? `; FAILED: ${r.error}` : ""}`);
    return r;
  });
  const report = results.report((r) => r.error, (name) => notApplicable(started[name]));
  const side = (name: MtaName, pick: (r: RunResult) => number) => report.side(name, sessions, pick);
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
