/**
 * The floor under the relay scenario (issue 16, relay at 1 session): the
 * relay scenario's own smtp-source load (bench/lib/smtp-source.ts: -d -s
 * SESSIONS -m MESSAGES -l 4096 -M bench.client, one recipient in a remote
 * domain) against the cheapest server that keeps postern's durability rule
 * (each message's file and its directory entry fsynced before the 250).
 * Builds bench/lib/path-floor-roles.ts with postern's compile flags and
 * bench/lib/floor-smtpd.c with cc, and times each variant on a fresh private
 * tree, one after another:
 *
 * - `bun`: the floor's Bun smtpd, and its `relay` role (queue manager and
 *   SMTP client in one process, as postern's qmgr is) delivering every
 *   message to an smtp-sink started as bench/scenarios/relay.ts starts it:
 *   the whole relay path, end to end (until the queue is empty).
 * - `bun-dsync`: as `bun`, and the relay role fsyncs each file after the
 *   sink's 250 (postern's queue manager fsyncs a delivery's `D` records;
 *   Postfix's does not): what one more fsync per message on the other core
 *   costs the session.
 * - `bun-smtp`: the same smtpd, with a relay role that only unlinks (the
 *   SMTP side alone).
 * - `c-smtp`: the C smtpd (same steps, blocking system calls, no runtime)
 *   and the unlinking relay role: the machine's floor for one session.
 *
 * Each variant first takes 200 uncounted messages over the same number of
 * sessions (the relay scenario's warm-up), then MESSAGES measured; it prints
 * the rate end to end and over SMTP (until smtp-source exits) and the CPU
 * per message of each process (/proc/PID/stat). Root only (smtp-sink drops
 * to nobody); stops its processes by PID and removes its tree.
 *   bun bench/relay-floor.ts [SESSIONS] [MESSAGES] [VARIANT,...]
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mustRun } from "./lib/proc.ts";
import { startSmtpSource } from "./lib/smtp-source.ts";
import { portAnswers } from "./lib/wait.ts";

const VARIANTS = ["bun", "bun-dsync", "bun-smtp", "c-smtp"] as const;
type Variant = (typeof VARIANTS)[number];

const sessions = Number(process.argv[2] ?? 1);
const messages = Number(process.argv[3] ?? 2000);
const variants = (process.argv[4] ?? VARIANTS.join(",")).split(",") as Variant[];
for (const v of variants) if (!VARIANTS.includes(v)) throw new Error(`relay-floor: unknown variant "${v}" (${VARIANTS.join(", ")})`);
const WARMUP = 200;
const HZ = 100;
const build = mkdtempSync(join(tmpdir(), "postern-relay-floor-"));

const ticks = (pid: number): [number, number] => {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = raw.slice(raw.lastIndexOf(")") + 2).split(" ");
    return [Number(f[11]), Number(f[12])];
  } catch {
    return [0, 0];
  }
};
const freePort = () => 20000 + Math.floor(Math.random() * 20000);

const program = join(build, "path-floor");
mustRun([process.execPath, "build", "--compile", "--minify", "--bytecode", "--format=esm", "--compile-jit-policy=100", "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig", join(import.meta.dir, "lib", "path-floor-roles.ts"), "--outfile", program], { timeoutMs: 120_000 });
const cSmtpd = join(build, "floor-smtpd");
mustRun(["cc", "-O2", "-o", cSmtpd, join(import.meta.dir, "lib", "floor-smtpd.c")], { timeoutMs: 60_000 });

async function waitUntil(ok: () => boolean | Promise<boolean>, what: string, ms = 6_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`relay-floor: ${what}`);
    await Bun.sleep(10);
  }
}

/** Sends `count` messages and waits until smtp-source exited and incoming/ is empty; times both. */
async function load(port: number, queue: string, count: number): Promise<{ smtpMs: number; allMs: number }> {
  const t0 = performance.now();
  const source = startSmtpSource({ sessions, messages: count, from: "pnbench@localhost", to: "pnbench@example.com", port });
  await source.proc.exited;
  if (source.error()) throw new Error(`relay-floor: ${source.error()}`);
  const smtpMs = performance.now() - t0;
  await waitUntil(() => readdirSync(join(queue, "incoming")).length === 0, "the queue did not empty", 300_000);
  return { smtpMs, allMs: performance.now() - t0 };
}

async function runVariant(variant: Variant): Promise<void> {
  const base = join(build, variant);
  const queue = join(base, "queue");
  for (const d of ["tmp", "incoming"]) mkdirSync(join(queue, d), { recursive: true });
  const procs: ReturnType<typeof Bun.spawn>[] = [];
  const spawn = (argv: string[]) => {
    const p = Bun.spawn(argv, { stdio: ["ignore", "ignore", "inherit"] });
    procs.push(p);
    return p;
  };
  try {
    let sinkPort = 0;
    if (variant === "bun" || variant === "bun-dsync") {
      sinkPort = freePort();
      spawn(["/usr/sbin/smtp-sink", "-c", "-u", "nobody", "-m", "1000", `127.0.0.1:${sinkPort}`, "1000"]);
      await waitUntil(() => portAnswers(sinkPort), "smtp-sink did not start");
    }
    const relay = spawn([program, "relay", queue, join(base, "qmgr.sock"), String(sinkPort), ...(variant === "bun-dsync" ? ["fsync"] : [])]);
    await waitUntil(() => readdirSync(base).includes("qmgr.sock"), "the relay role did not start");
    const port = freePort();
    const smtpd = spawn(variant === "c-smtp" ? [cSmtpd, String(port), queue, join(base, "qmgr.sock")] : [program, "smtpd", String(port), queue, join(base, "qmgr.sock")]);
    await waitUntil(() => portAnswers(port), "smtpd did not start");
    await load(port, queue, WARMUP);
    const before = [ticks(smtpd.pid), ticks(relay.pid)];
    const { smtpMs, allMs } = await load(port, queue, messages);
    const after = [ticks(smtpd.pid), ticks(relay.pid)];
    const cpu = (i: number) => {
      const u = ((after[i]![0] - before[i]![0]) / HZ / messages) * 1000;
      const s = ((after[i]![1] - before[i]![1]) / HZ / messages) * 1000;
      return `${(u + s).toFixed(2)} ms (user ${u.toFixed(2)}, system ${s.toFixed(2)})`;
    };
    console.log(
      `${variant}: ${sessions} session(s), ${messages} messages: end to end ${(messages / (allMs / 1000)).toFixed(0)} msg/s (${(allMs / messages).toFixed(3)} ms per message), ` +
        `over SMTP ${(messages / (smtpMs / 1000)).toFixed(0)} msg/s; CPU per message: smtpd ${cpu(0)}, relay ${cpu(1)}; load ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`,
    );
  } finally {
    for (const p of procs.reverse()) p.kill("SIGTERM");
    await Promise.all(procs.map((p) => p.exited));
  }
}

try {
  for (const v of variants) await runVariant(v);
} finally {
  rmSync(build, { recursive: true, force: true });
}
