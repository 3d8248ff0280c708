/**
 * The Bun runtime's memory floor under postern's daemons (issue 16's closing
 * arithmetic): the total PSS and Pss_Anon of N = 1..MAX idle copies of one
 * compiled Bun program, all started from the same file, as postern's roles
 * run from one executable. Two programs, built with postern's build flags:
 *
 * - `sleep`: imports nothing and waits;
 * - `modules`: imports what every postern daemon loads (node:net, node:fs,
 *   node:path, bun:sqlite, bun:ffi), touches each, and waits.
 *
 * Both run one full collection 2 s after start, as postern's daemons do
 * (src/util/start-gc.ts). Each executable is written out and read back the
 * same way before its runs (sync, drop from the page cache with dd's
 * `iflag=nocache`, one sequential read), because the file-backed part of the
 * PSS depends on how the page cache holds it (bench/README.md, session 5's
 * "Measuring PSS"); the anonymous part does not.
 *
 * A benchmark, not a test; needs no root. Runs only programs it compiles into
 * its own temporary directory and stops them by PID.
 *   bun bench/memory-floor.ts [MAX=5] [ROUNDS=3] [SETTLE_MS=4000]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { processMemory } from "./lib/pss.ts";

const max = Number(process.argv[2] ?? 5);
const rounds = Number(process.argv[3] ?? 3);
const settleMs = Number(process.argv[4] ?? 4000);

const WAIT = "setTimeout(() => Bun.gc(true), 2000); setInterval(() => {}, 1 << 30);\n";
const PROGRAMS: Record<string, string> = {
  sleep: WAIT,
  modules: `import * as net from "node:net"; import * as fs from "node:fs"; import * as path from "node:path";
import { Database } from "bun:sqlite"; import { dlopen } from "bun:ffi";
globalThis.keep = [net.createServer, fs.statSync, path.join, Database, dlopen];
${WAIT}`,
};

const dir = mkdtempSync(join(tmpdir(), "memory-floor-"));
const run = (argv: string[]) => {
  const p = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${p.stderr.toString()}`);
};
const build = (name: string): string => {
  const src = join(dir, `${name}.ts`);
  const out = join(dir, name);
  writeFileSync(src, PROGRAMS[name]!);
  run([process.execPath, "build", "--compile", "--minify", "--bytecode", "--format=esm", "--compile-jit-policy=100",
    "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig", src, "--outfile", out]);
  return out;
};
const recache = (file: string) => {
  run(["sync", file]);
  run(["dd", `if=${file}`, "iflag=nocache", "count=0", "status=none"]);
  run(["dd", `if=${file}`, "of=/dev/null", "bs=1M", "status=none"]);
};
const mb = (kb: number) => (kb / 1024).toFixed(1);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  const exe = Object.fromEntries(Object.keys(PROGRAMS).map((name) => [name, build(name)]));
  // results[program][n] = [{pss, anon}] over the rounds
  const results = new Map<string, { pss: number; anon: number }[][]>();
  for (let round = 0; round < rounds; round++) {
    for (const name of Object.keys(PROGRAMS)) {
      recache(exe[name]!);
      for (let n = 1; n <= max; n++) {
        const procs = Array.from({ length: n }, () => Bun.spawn([exe[name]!], { stdout: "ignore", stderr: "ignore" }));
        try {
          await Bun.sleep(settleMs);
          let pss = 0;
          let anon = 0;
          for (const p of procs) {
            const m = processMemory(p.pid);
            if (m === undefined) throw new Error(`${name}: copy ${p.pid} is gone`);
            pss += m.pssKb;
            anon += m.pssAnonKb;
          }
          const byN = results.get(name) ?? [];
          (byN[n] ??= []).push({ pss, anon });
          results.set(name, byN);
        } finally {
          for (const p of procs) p.kill("SIGKILL");
          await Promise.all(procs.map((p) => p.exited));
        }
      }
    }
  }
  console.log(`copies | ${Object.keys(PROGRAMS).map((n) => `${n}: PSS total, median (range) | Pss_Anon`).join(" | ")}`);
  for (let n = 1; n <= max; n++) {
    const cells = Object.keys(PROGRAMS).map((name) => {
      const rs = results.get(name)![n]!;
      const pss = rs.map((r) => r.pss);
      const anon = rs.map((r) => r.anon);
      return `${mb(median(pss))} (${mb(Math.min(...pss))}-${mb(Math.max(...pss))}) MB | ${mb(median(anon))} (${mb(Math.min(...anon))}-${mb(Math.max(...anon))}) MB`;
    });
    console.log(`${n} | ${cells.join(" | ")}`);
  }
  console.log(`BENCH-JSON ${JSON.stringify({ scenario: "memory-floor", results: Object.fromEntries(results) })}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
