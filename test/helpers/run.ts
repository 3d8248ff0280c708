/**
 * Test helpers that drive the built executable as a user would: through
 * its command links in dist/, with a clean environment, a private config
 * directory and stdin/stdout/stderr captured. `npm test` builds dist/ first;
 * running `bun test` by hand needs `npm run build` before.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");
/** POSTERN_DIST points the tests at another build (parallel work); dist/ by default. */
export const DIST = process.env.POSTERN_DIST ? resolve(process.env.POSTERN_DIST) : join(ROOT, "dist");

export function bin(name = "postern"): string {
  const path = join(DIST, name);
  if (!existsSync(path)) throw new Error(`${path} is missing: run "npm run build" first`);
  return path;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  stdin?: string | Uint8Array;
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Extra environment is added to this minimal one; BUN_* variables are never passed. */
  timeoutMs?: number;
}

/** The environment every spawned postern gets: no BUN_BE_BUN, BUN_OPTIONS or MAIL_CONFIG leaking in. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", LANG: "C", TZ: "UTC" };
  if (process.env.USER) env.USER = process.env.USER;
  if (process.env.LOGNAME) env.LOGNAME = process.env.LOGNAME;
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** Runs dist/NAME (a command link) with arguments. */
export async function run(name: string, args: string[] = [], opts: RunOptions = {}): Promise<RunResult> {
  const proc = Bun.spawn([bin(name), ...args], {
    cwd: opts.cwd ?? ROOT,
    env: cleanEnv(opts.env),
    stdin: opts.stdin === undefined ? "ignore" : new Blob([opts.stdin]),
    stdout: "pipe",
    stderr: "pipe",
    argv0: bin(name),
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** A private directory removed after the test file (call in the file's scope). */
export function tempDir(prefix = "postern-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A config directory holding postern.toml with `text`. */
export function configDir(text = ""): string {
  const dir = tempDir("postern-conf-");
  writeFileSync(join(dir, "postern.toml"), text);
  return dir;
}
