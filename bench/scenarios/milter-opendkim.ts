/**
 * milter-opendkim: end-to-end messages per second through each system's
 * SMTP server with one OpenDKIM signing every message as a milter (the
 * issue's benchmark: smtp-source, 20 sessions, 2,000 messages). Both
 * systems use the same OpenDKIM process (Debian's opendkim, started here as
 * root in the run directory with a key from opendkim-genkey, KeyFile so no
 * DNS, Socket inet on 127.0.0.1, stopped by its PID); smtp-source's mail
 * comes from 127.0.0.1 (InternalHosts) with From: sender@localhost, so
 * every message is signed for the domain localhost. The clock runs from the
 * start of smtp-source until the recipient's Maildir holds every message;
 * a message of the last run is checked for a DKIM-Signature: header.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../lib/context.ts";
import { alternateRuns, mtaPlan, notApplicable, startSystems } from "../lib/alternate.ts";
import type { MtaName } from "../lib/mta.ts";
import { MESSAGES_OPTION, wholeNumber } from "../lib/options.ts";
import type { Measurement, Scenario, ScenarioResult } from "../lib/scenario.ts";
import { waitFor } from "../lib/wait.ts";
import { oneRun, type RunResult } from "./smtp-throughput.ts";

const OPENDKIM = "/usr/sbin/opendkim";
const GENKEY = "/usr/sbin/opendkim-genkey";
let milterPort = 0;

export const scenario: Scenario = {
  name: "milter-opendkim",
  summary: "End-to-end messages/s of smtp-source (4 KiB, 20 sessions) into each SMTP server with OpenDKIM signing as a milter",
  defaultRuns: 3,
  options: {
    messages: MESSAGES_OPTION,
    sessions: { type: "string", description: "parallel SMTP sessions (default 20)" },
  },
  parameters() {
    milterPort = freePort();
    const milter = { smtpd_milters: `inet:127.0.0.1:${milterPort}`, milter_default_action: "tempfail" };
    return { postfix: milter, postern: milter };
  },
  run,
};

function startOpendkim(dir: string): { pid: number; stop: () => void } {
  const gen = Bun.spawnSync([GENKEY, "-D", dir, "-d", "localhost", "-s", "bench"], { stdout: "pipe", stderr: "pipe" });
  if (gen.exitCode !== 0) throw new Error(`opendkim-genkey failed: ${gen.stderr.toString()}`);
  const conf = join(dir, "opendkim.conf");
  writeFileSync(
    conf,
    ["Syslog no", "Background no", "Mode s", "Domain localhost", "Selector bench", `KeyFile ${dir}/bench.private`, `Socket inet:${milterPort}@127.0.0.1`, "InternalHosts 127.0.0.1", "RequireSafeKeys no", "Canonicalization relaxed/simple", ""].join("\n"),
  );
  const proc = Bun.spawn([OPENDKIM, "-f", "-x", conf], { stdout: "ignore", stderr: "ignore", stdin: "ignore" });
  const listening = waitFor(
    () => {
      const r = Bun.spawnSync(["ss", "-Hltn", `sport = :${milterPort}`], { stdout: "pipe" });
      return r.stdout.toString().includes(`:${milterPort}`);
    },
    30_000,
    100,
  );
  if (!listening) {
    proc.kill();
    throw new Error("opendkim did not start listening");
  }
  return { pid: proc.pid, stop: () => proc.kill("SIGTERM") };
}

function lastMessageSigned(maildir: string): boolean {
  for (const sub of ["new", "cur"]) {
    let names: string[] = [];
    try {
      names = readdirSync(join(maildir, sub));
    } catch {}
    const name = names[0];
    if (name) return /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/simple; d=localhost;/m.test(readFileSync(join(maildir, sub, name), "latin1"));
  }
  return false;
}

async function run(ctx: import("../lib/context.ts").BenchContext): Promise<ScenarioResult> {
  const messages = wholeNumber(ctx.options.extra.messages, 2000, "messages");
  const sessions = wholeNumber(ctx.options.extra.sessions, 20, "sessions");
  const opendkim = startOpendkim(ctx.base);
  try {
    const { started, active } = startSystems(ctx);
    const warmup = Math.min(messages, 200);
    for (const mta of active) {
      ctx.progress(`warm-up: ${warmup} messages through ${mta.name}`);
      const r = await oneRun(ctx, mta, warmup, sessions);
      if (r.error) throw new Error(`${mta.name}: warm-up failed: ${r.error}`);
      if (!lastMessageSigned(mta.maildir(ctx.user.home))) throw new Error(`${mta.name}: the delivered mail carries no DKIM-Signature from the milter`);
    }
    const results = await alternateRuns(mtaPlan([sessions], ctx.options.runs, active), async (mta, _, i) => {
      const r = await oneRun(ctx, mta, messages, sessions);
      if (!r.error && !lastMessageSigned(mta.maildir(ctx.user.home))) r.error = "delivered mail is not signed";
      ctx.progress(`  ${mta.name}, run ${i + 1}/${ctx.options.runs}: ${r.delivered} delivered, ${r.rate.toFixed(1)}/s end to end, ${r.smtpRate.toFixed(1)}/s over SMTP${r.error ? `; FAILED: ${r.error}` : ""}`);
      return r;
    });
    const report = results.report((r) => r.error, (name) => notApplicable(started[name]));
    const side = (name: MtaName, pick: (r: RunResult) => number) => report.side(name, sessions, pick);
    const notes = report.failures(sessions);
    const measurements: Measurement[] = [
      { name: `${sessions} sessions through OpenDKIM, end to end`, unit: "msg/s", better: "higher", postfix: side("postfix", (r) => r.rate), postern: side("postern", (r) => r.rate), target: { ratio: 2, kind: "at least" }, notes },
      { name: `${sessions} sessions through OpenDKIM, over SMTP (until smtp-source exits)`, unit: "msg/s", better: "higher", postfix: side("postfix", (r) => r.smtpRate), postern: side("postern", (r) => r.smtpRate) },
    ];
    for (const mta of active) mta.stop();
    return {
      command: `smtp-source -d -s ${sessions} -m ${messages} -l 4096 -t ${ctx.user.name}@localhost 127.0.0.1:PORT, smtpd_milters = inet:127.0.0.1:${milterPort} (OpenDKIM, signing)`,
      measurements,
      notes: [`one OpenDKIM process (pid ${opendkim.pid}) serves both systems; ${warmup} uncounted warm-up messages per side first`],
    };
  } finally {
    opendkim.stop();
  }
}
