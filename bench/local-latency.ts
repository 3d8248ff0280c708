/**
 * Latency of one local delivery, the local agent alone (issue 16, session 4):
 * a user of its own (useradd, removed afterwards) with home_mailbox =
 * Maildir/, N queued 4 KiB messages delivered through createLocalAgent with
 * real `postern local-worker` children, 2 at a time (Postfix's
 * local_destination_concurrency_limit), each deliver() timed after 50
 * uncounted ones. No queue manager, smtpd or sockets: what one delivery costs
 * the local service and its worker. Root only; it trusts its own files.
 * TREE is the checkout whose src/ is measured (another one for an A/B),
 * POSTERN the binary whose `local-worker` runs the jobs:
 *   bun bench/local-latency.ts [TREE] [POSTERN] [N]
 */
import { chmodSync, readFileSync } from "node:fs";
import { join } from "node:path";
const [root = join(import.meta.dir, ".."), postern = join(root, "dist", "postern"), nText = "1000"] = process.argv.slice(2);
const n = Number(nText);
const { createLocalAgent } = await import(`${root}/src/local/agent.ts`);
const { queueMessage, testSite } = await import(`${root}/test/helpers/local-delivery.ts`);
const { removeDir } = await import(`${root}/test/helpers/run.ts`);
const user = `plat${process.pid.toString(36)}`;
const site = testSite({ home_mailbox: "Maildir/" });
chmodSync(site.dir, 0o755);
Bun.spawnSync(["useradd", "--no-user-group", "--gid", "nogroup", "--create-home", "--home-dir", join(site.dir, "home", user), "--shell", "/bin/sh", user]);
chmodSync(join(site.dir, "home"), 0o755);
const agent = createLocalAgent(site.config, { workerCommand: [postern, "local-worker"], workerIdleMs: 5000 });
try {
  const body = `Subject: lat\n\n${"x".repeat(75)}\n`.repeat(52);
  const reqs: unknown[] = [];
  for (let i = 0; i < n + 50; i++) reqs.push(await queueMessage(site, { recipients: [`${user}@localhost`], content: body }));
  const times: number[] = [];
  let next = 0;
  const cpu0 = process.cpuUsage();
  let t0 = 0;
  const lane = async () => {
    for (;;) {
      const i = next++;
      if (i >= reqs.length) return;
      if (i === 50) t0 = performance.now();
      const s = performance.now();
      const r = await agent.deliver(reqs[i]);
      if (r[0].status !== "sent") throw new Error(JSON.stringify(r));
      if (i >= 50) times.push(performance.now() - s);
    }
  };
  await Promise.all([lane(), lane()]);
  const total = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.floor(times.length * p)]!.toFixed(2);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  console.log(`${n} deliveries, 2 at a time: ${(n / (total / 1000)).toFixed(0)}/s; one delivery mean ${mean.toFixed(2)} ms, median ${q(0.5)}, p10 ${q(0.1)}, p90 ${q(0.9)}; agent CPU ${((cpu.user + cpu.system) / 1000 / (n + 50)).toFixed(3)} ms per delivery; load ${readFileSync("/proc/loadavg", "utf8").trim()}`);
} finally {
  await agent.close();
  Bun.spawnSync(["userdel", "-f", "-r", user], { stdout: "ignore", stderr: "ignore" });
  removeDir(site.dir);
}
