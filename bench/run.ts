/**
 * The side-by-side benchmark harness: runs one scenario against a private
 * Postfix instance and a private postern instance on this machine and
 * prints medians, spread, the postern/Postfix ratio and a JSON line.
 *
 *     node_modules/.bin/bun bench/run.ts SCENARIO [--runs N] [--warmup N] [--tmpdir DIR] [--keep] [--as-root] [scenario options]
 *     node_modules/.bin/bun bench/run.ts --list
 *
 * Runs as root: it starts Postfix, creates the bench users and lists its
 * config directory in /etc/postfix/main.cf, and undoes all of it when it
 * ends (bench/lib/cleanup.ts). Not a test: nothing here asserts a time.
 */
import { parseArgs } from "node:util";
import { loadavg, tmpdir } from "node:os";
import { createContext } from "./lib/context.ts";
import { runCleanup } from "./lib/cleanup.ts";
import { printReport } from "./lib/report.ts";
import { SCENARIOS } from "./scenarios/index.ts";

const USAGE = "usage: bun bench/run.ts SCENARIO [--runs N] [--warmup N] [--tmpdir DIR] [--keep] [--as-root] [scenario options] | --list";

const COMMON_OPTIONS = {
  runs: { type: "string" },
  warmup: { type: "string" },
  tmpdir: { type: "string" },
  keep: { type: "boolean" },
  "as-root": { type: "boolean" },
  list: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

async function main(): Promise<number> {
  const first = parseArgs({ args: process.argv.slice(2), allowPositionals: true, strict: false, options: COMMON_OPTIONS });
  let { values, positionals } = first;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.list) {
    for (const [name, load] of Object.entries(SCENARIOS)) console.log(`${name.padEnd(20)} ${(await load()).scenario.summary}`);
    return 0;
  }
  const name = positionals[0];
  if (!name) {
    console.error(USAGE);
    return 64;
  }
  const load = SCENARIOS[name];
  if (!load) {
    console.error(`bench: unknown scenario "${name}"; --list shows them`);
    return 64;
  }
  const { scenario } = await load();
  // parse again knowing the scenario's own options, so `--name value` takes its value
  const extraOptions = Object.fromEntries(Object.entries(scenario.options ?? {}).map(([k, o]) => [k, { type: o.type }]));
  ({ values, positionals } = parseArgs({ args: process.argv.slice(2), allowPositionals: true, strict: false, options: { ...COMMON_OPTIONS, ...extraOptions } }));
  if (positionals.length > 1) {
    console.error(USAGE);
    return 64;
  }
  const known = new Set(["runs", "warmup", "tmpdir", "keep", "as-root", "list", "help", ...Object.keys(scenario.options ?? {})]);
  const unknown = Object.keys(values).filter((k) => !known.has(k));
  if (unknown.length) {
    console.error(`bench: unknown option "--${unknown[0]}" for ${name}`);
    return 64;
  }
  const count = (v: unknown, fallback: number, what: string) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${what} must be a whole number, not "${v}"`);
    return n;
  };
  const extra = Object.fromEntries(Object.keys(scenario.options ?? {}).map((k) => [k, values[k] as string | boolean | undefined]));
  const options = {
    runs: count(values.runs, scenario.defaultRuns, "runs"),
    warmup: count(values.warmup, 5, "warmup"),
    tmpdir: typeof values.tmpdir === "string" ? values.tmpdir : tmpdir(),
    keep: values.keep === true,
    asRoot: values["as-root"] === true,
    extra,
  };
  try {
    const ctx = createContext(options, scenario.parameters?.(options));
    ctx.progress(`${name}: Postfix in ${ctx.postfix.configDir}, postern in ${ctx.postern.configDir}`);
    const result = await scenario.run(ctx);
    ctx.machine.load.end = loadavg()[0]!;
    printReport({
      scenario: name,
      date: new Date().toISOString(),
      options: { runs: options.runs, warmup: options.warmup, submitter: options.asRoot ? "root" : ctx.user.name },
      machine: ctx.machine,
      result,
    });
    if (options.keep) ctx.progress(`kept ${ctx.base}`);
    return 0;
  } finally {
    runCleanup();
  }
}

try {
  process.exitCode = await main();
} catch (err) {
  console.error(`bench: fatal: ${(err as Error).message}`);
  process.exitCode = 1;
}
