/**
 * What starting services on demand costs the first request after idle
 * (issue 16, session 4): starts one private postern system as the tests do
 * and, RUNS times each, measures the wall time of `mailq` run by a user who
 * cannot read the queue (so it asks showq) and of one message from
 * `sendmail` to root's mbox (pickup, queue manager, local), each taken when
 * its service is down (a build that starts them on demand; with max_idle =
 * 1s, waiting for the process to be gone first) or, for an older build, with
 * them up as always. A build that starts the queue manager on demand too
 * (session 10) has it down before each message as well. Also the master's CPU time over IDLE_CPU_MS at idle
 * (its poll timer). A benchmark, not a test: `bun bench/on-demand-latency.ts`
 * as root; uses dist/ or $POSTERN_DIST.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { bin, cleanEnv } from "../test/helpers/run.ts";
import { ensureMailOwner, MailSystem, mboxMessages, message, TestUsers, waitFor } from "../test/helpers/mail-system.ts";
import { summarize } from "./lib/stats.ts";

const RUNS = Number(process.env.RUNS ?? 5);
const IDLE_CPU_MS = Number(process.env.IDLE_CPU_MS ?? 20_000);


function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(f[11]) + Number(f[12]);
}

ensureMailOwner();
const users = new TestUsers("pbo");
const sys = new MailSystem({ max_idle: "1s" });
// a build that does not act on max_idle (and so starts every service at boot) refuses the setting
const onDemand = (await sys.postern(["check"])).code === 0;
if (!onDemand) sys.writeConfig({ max_idle: undefined });
const mailqMs: number[] = [];
const deliveryMs: number[] = [];
try {
  const user = users.add("q", join(sys.dir, "home"));
  await sys.start();
  // let the services that start at boot settle
  await Bun.sleep(3000);
  const master = sys.masterPid()!;
  // a queue manager that is not running at idle is started on demand: each message waits for it too
  const qmgrOnDemand = !sys.roles().has("qmgr");
  const t0 = cpuTicks(master);
  await Bun.sleep(IDLE_CPU_MS);
  const idleCpuMs = ((cpuTicks(master) - t0) * 1000) / 100;
  for (let i = 0; i < RUNS; i++) {
    if (onDemand) await waitFor("showq to idle out", () => !sys.roles().has("showq"));
    const start = performance.now();
    const r = Bun.spawnSync(["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", bin("mailq"), "-C", sys.etc], { env: cleanEnv(), stdout: "pipe", stderr: "pipe" });
    mailqMs.push(performance.now() - start);
    if (r.exitCode !== 0) throw new Error(`mailq: exit ${r.exitCode}: ${r.stderr}`);
  }
  const mbox = join(sys.spool, "root");
  for (let i = 0; i < RUNS; i++) {
    // the queue manager keeps its connection to local 10 s; local leaves max_idle after that
    if (onDemand) await waitFor("local (and an on-demand queue manager) to idle out", () => !sys.roles().has("local") && !(qmgrOnDemand && sys.roles().has("qmgr")), 60_000);
    const subject = `latency-${i}`;
    const start = performance.now();
    await sys.send(["root"], message(subject));
    await waitFor("the delivery", () => mboxMessages(mbox).some((m) => m.includes(`Subject: ${subject}\n`)), 60_000);
    deliveryMs.push(performance.now() - start);
  }
  const f = (xs: number[]) => `median ${summarize(xs).median.toFixed(1)} ms (${xs.map((x) => x.toFixed(0)).join(", ")})`;
  console.log(`build: ${onDemand ? `showq, local${qmgrOnDemand ? ", qmgr" : ""} on demand (max_idle = 1s)` : "every service at boot"}`);
  console.log(`master CPU at idle: ${idleCpuMs} ms in ${IDLE_CPU_MS / 1000} s`);
  console.log(`first mailq after idle (as a user, through showq): ${f(mailqMs)}`);
  console.log(`first delivery after idle (sendmail -> root's mbox): ${f(deliveryMs)}`);
  console.log(`BENCH-JSON ${JSON.stringify({ scenario: "on-demand-latency", onDemand, qmgrOnDemand, idleCpuMs, mailqMs, deliveryMs })}`);
} finally {
  await sys.stop().catch(() => undefined);
  sys.killLeftovers();
  await sys.cleanup();
  users.removeAll();
}
