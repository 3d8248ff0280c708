/**
 * Running commands for the harness: setup commands that must succeed
 * (mustRun), and the timed invocation a latency scenario measures
 * (timedRun: spawn to exit, synchronous so no event-loop work of the
 * harness lands inside the measured interval).
 *
 * Runs as root; a timed command can be run as another user (uid/gid).
 */

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunAs {
  uid: number;
  gid: number;
}

/** Runs a setup command; throws with its output when it exits non-zero. */
export function mustRun(argv: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): CommandResult {
  const r = runCommand(argv, opts);
  if (r.code !== 0) {
    const detail = (r.stderr || r.stdout).trim().split("\n").slice(-5).join("\n");
    throw new Error(`Command "${argv.join(" ")}" failed with status ${r.code}${detail ? `:\n${detail}` : ""}`);
  }
  return r;
}

export function runCommand(argv: string[], opts: { env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {}): CommandResult {
  const r = Bun.spawnSync(argv, {
    env: opts.env ?? baseEnv(),
    cwd: opts.cwd,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: opts.timeoutMs ?? 60_000,
  });
  return { code: r.exitCode ?? 128 + 9, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** A minimal environment: no BUN_* variable leaks into a compiled postern binary. */
export function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C", TZ: "UTC", HOME: "/root", ...extra };
}

export interface TimedResult {
  code: number;
  stderr: string;
  ms: number;
  /** User + system CPU of the process and the children it reaped (wait4's rusage), ms. */
  cpuMs: number;
}

/** Runs one command with stdin from a file and returns its wall time from spawn to exit. */
export function timedRun(argv: string[], opts: { stdinFile: string; env: Record<string, string>; cwd: string; as?: RunAs }): TimedResult {
  const stdin = Bun.file(opts.stdinFile);
  const t0 = Bun.nanoseconds();
  const r = Bun.spawnSync(argv, {
    env: opts.env,
    cwd: opts.cwd,
    stdin,
    stdout: "ignore",
    stderr: "pipe",
    timeout: 60_000,
    ...(opts.as ? { uid: opts.as.uid, gid: opts.as.gid } : {}),
  } as Parameters<typeof Bun.spawnSync>[1]);
  const ms = (Bun.nanoseconds() - t0) / 1e6;
  const cpuMs = Number(r.resourceUsage?.cpuTime.total ?? 0n) / 1000;
  return { code: r.exitCode ?? 128 + 9, stderr: r.stderr?.toString() ?? "", ms, cpuMs };
}
