/**
 * The runtime's floor under the SMTP -> local Maildir path (issue 16):
 * builds bench/lib/path-floor-roles.ts with postern's compile flags, starts
 * its four roles (smtpd, qmgr, local and two workers) on a private tree,
 * runs Debian's smtp-source into it as bench/profile-local.ts does (-s
 * SESSIONS -m MESSAGES -l 4096, one message per connection), waits for every
 * message in the Maildir and prints the rate and the CPU per message of each
 * role (from /proc/PID/stat) and the peak PSS of its processes (sampled every
 * 250 ms). The same hops and fsyncs as postern's daemons,
 * with none of their checks: what the process model costs in Bun before
 * postern's own work. Root only; stops its processes by PID.
 *   bun bench/path-floor.ts [SESSIONS] [MESSAGES]
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mustRun } from "./lib/proc.ts";
import { processMemory } from "./lib/pss.ts";
import { portAnswers } from "./lib/wait.ts";

const sessions = Number(process.argv[2] ?? 20);
const messages = Number(process.argv[3] ?? 2000);
const base = mkdtempSync(join(tmpdir(), "postern-path-floor-"));
const port = 20000 + Math.floor(Math.random() * 20000);
const HZ = 100;

/** User and system clock ticks of a process. */
const ticks = (pid: number): [number, number] => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return [Number(f[11]), Number(f[12])];
  } catch {
    return [0, 0];
  }
};
const sum = (pids: number[]): [number, number] => pids.map(ticks).reduce((a, t) => [a[0] + t[0], a[1] + t[1]], [0, 0]);
const children = (pid: number): number[] => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

const program = join(base, "path-floor");
mustRun([process.execPath, "build", "--compile", "--minify", "--bytecode", "--format=esm", "--compile-jit-policy=100", "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig", join(import.meta.dir, "lib", "path-floor-roles.ts"), "--outfile", program], { timeoutMs: 120_000 });
for (const d of ["queue/tmp", "queue/incoming", "maildir/tmp", "maildir/new", "maildir/cur"]) mkdirSync(join(base, d), { recursive: true });
const procs: ReturnType<typeof Bun.spawn>[] = [];
const waitFor = async (ok: () => boolean | Promise<boolean>, what: string) => {
  for (let i = 0; i < 300; i++) {
    if (await ok()) return;
    await Bun.sleep(20);
  }
  throw new Error(`path-floor: ${what} did not come up`);
};
try {
  const exists = (p: string) => () => readdirSync(base).includes(p);
  procs.push(Bun.spawn([program, "local", join(base, "local.sock"), join(base, "maildir")], { stdio: ["ignore", "inherit", "inherit"] }));
  await waitFor(exists("local.sock"), "local");
  procs.push(Bun.spawn([program, "qmgr", join(base, "queue"), join(base, "qmgr.sock"), join(base, "local.sock")], { stdio: ["ignore", "inherit", "inherit"] }));
  await waitFor(exists("qmgr.sock"), "qmgr");
  procs.push(Bun.spawn([program, "smtpd", String(port), join(base, "queue"), join(base, "qmgr.sock")], { stdio: ["ignore", "inherit", "inherit"] }));
  await waitFor(() => portAnswers(port), "smtpd");
  const local = procs[0]!.pid;
  const roles = new Map<string, number[]>([
    ["smtpd", [procs[2]!.pid]],
    ["qmgr", [procs[1]!.pid]],
    ["local", [local]],
    ["worker", children(local)],
  ]);
  const before = new Map([...roles].map(([r, pids]) => [r, sum(pids)]));
  const delivered = () => readdirSync(join(base, "maildir", "new")).length;
  const t0 = performance.now();
  // the floor's peak PSS (all its processes), sampled as the scenarios sample postern's
  let pssPeakKb = 0;
  const floorPids = () => [...procs.map((p) => p.pid), ...children(local)];
  const samplePss = () => {
    pssPeakKb = Math.max(pssPeakKb, floorPids().reduce((a, pid) => a + (processMemory(pid)?.pssKb ?? 0), 0));
  };
  const sampler = setInterval(samplePss, 250);
  const src = Bun.spawn(["smtp-source", "-d", "-s", String(sessions), "-m", String(messages), "-l", "4096", "-f", "sender@localhost", "-t", "u@localhost", `127.0.0.1:${port}`], { stdout: "inherit", stderr: "inherit" });
  await src.exited;
  const tSmtp = performance.now() - t0;
  const deadline = Date.now() + 300_000;
  while (delivered() < messages && Date.now() < deadline) await Bun.sleep(20);
  const tAll = performance.now() - t0;
  clearInterval(sampler);
  samplePss();
  console.log(`floor: delivered ${delivered()}/${messages}; smtp ${(messages / (tSmtp / 1000)).toFixed(0)} msg/s, end to end ${(messages / (tAll / 1000)).toFixed(0)} msg/s; load ${readFileSync("/proc/loadavg", "utf8").trim()}`);
  const perMessage = (t: number) => ((t / HZ) * 1000) / messages;
  const total = [0, 0];
  for (const [role, pids] of roles) {
    const [u, s] = sum(pids);
    const [u0, s0] = before.get(role)!;
    total[0]! += u - u0;
    total[1]! += s - s0;
    console.log(`  ${role}: ${perMessage(u - u0 + s - s0).toFixed(2)} ms CPU per message (user ${perMessage(u - u0).toFixed(2)}, system ${perMessage(s - s0).toFixed(2)})`);
  }
  console.log(`  all roles: ${perMessage(total[0]! + total[1]!).toFixed(2)} ms CPU per message (user ${perMessage(total[0]!).toFixed(2)}, system ${perMessage(total[1]!).toFixed(2)})`);
  console.log(`  peak PSS of the floor's ${floorPids().length} processes: ${(pssPeakKb / 1024).toFixed(1)} MB (sampled every 250 ms)`);
} finally {
  for (const p of procs) for (const c of children(p.pid)) process.kill(c, "SIGTERM");
  for (const p of procs) p.kill("SIGTERM");
  await Promise.all(procs.map((p) => p.exited));
  rmSync(base, { recursive: true, force: true });
}
