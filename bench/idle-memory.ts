/**
 * Idle memory of a running postern system: starts a private instance (as
 * the tests do, under a temporary directory), waits until every service that
 * runs at idle is up (the ones started on demand are not asked for) and the
 * system has been idle a few seconds, and prints the PSS of each
 * process and the total. A benchmark, not a test: `bun bench/idle-memory.ts`
 * (as root; uses dist/ or $POSTERN_DIST). IMPORT_ENV="NAME=VALUE ..." adds to
 * the daemons' environment (bench/lib/import-env.ts). IDLE_SMTPD=1: the
 * system also has an SMTP service listening on 127.0.0.1 (a mail server's
 * idle, not only a sender's). IDLE_MAX_IDLE=2s: max_idle, so that the
 * services started on demand by the start-up's own checks (smtpd, for its
 * greeting) have left before the measurement (100 s by default).
 */
import { describeMemory, treeMemory } from "./lib/pss.ts";
import { importEnvChanges } from "./lib/import-env.ts";
import { MailSystem } from "../test/helpers/mail-system.ts";
import { SmtpdSystem } from "../test/helpers/smtpd-system.ts";

const sys = process.env.IDLE_SMTPD === "1" ? new SmtpdSystem() : new MailSystem();
try {
  sys.writeConfig({ ...importEnvChanges(), ...(process.env.IDLE_MAX_IDLE ? { max_idle: process.env.IDLE_MAX_IDLE } : {}) });
  await sys.start();
  // the services start on their own schedule; let them settle
  await Bun.sleep(Number(process.env.IDLE_SETTLE_MS ?? 5000));
  const pid = sys.masterPid();
  if (pid === undefined) throw new Error("no master");
  const m = treeMemory(pid);
  console.log(describeMemory(m));
  for (const p of m.processes) console.log(`  ${p.pid} ${p.name}: PSS ${(p.pssKb / 1024).toFixed(1)} MB, USS ${(p.ussKb / 1024).toFixed(1)} MB, RSS ${(p.rssKb / 1024).toFixed(1)} MB`);
  console.log(`BENCH-JSON ${JSON.stringify({ scenario: "idle-memory", pssKb: m.pssKb, ussKb: m.ussKb, processes: m.processes.length })}`);
} finally {
  await sys.stop().catch(() => undefined);
  sys.killLeftovers();
  await sys.cleanup();
}
