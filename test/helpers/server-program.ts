/**
 * Whether a server program a test needs (mariadbd, postgres, slapd) is
 * installed, and the life of a private server process (serverProcess: start,
 * wait until it answers, stop by its own PID). Outside CI a missing program skips the test with the reason;
 * with CI=true it is a failure that names the Debian package to install, so
 * CI never passes by skipping. Runs in the test process; reads nothing but
 * the file system.
 */
import { existsSync } from "node:fs";
import type { Subprocess } from "bun";
import { waitFor } from "./wait.ts";

/** Undefined when `program` exists; otherwise the reason to skip (throws in CI). */
export function missingServer(program: string | undefined, what: string, debianPackage: string): string | undefined {
  if (program && existsSync(program)) return undefined;
  const reason = `${what} is not installed (Debian package ${debianPackage})`;
  if (process.env.CI === "true") throw new Error(`${reason}: CI must install it (.ci/run)`);
  return reason;
}

/** A server a test starts, stops and may start again on the same data, always by its own PID. */
export interface ServerProcess {
  /** Spawns the server and waits (60 s at most) until `ready` says it answers; fails if it exits first. */
  start(): Promise<void>;
  /** Sends `stopSignal`, then SIGKILL after 10 s, and waits until the process is gone. */
  stop(): Promise<void>;
  /** The running server's PID, undefined while stopped. */
  pid(): number | undefined;
}

export function serverProcess(o: {
  what: string;
  argv: string[];
  cwd?: string;
  stopSignal: NodeJS.Signals;
  /** Whether the server answers yet (polled every 25 ms until it does). */
  ready(): Promise<boolean> | boolean;
  /** Why it ended, for the error when it exits before it answers. */
  exitReason?(code: number | null): string;
}): ServerProcess {
  let proc: Subprocess | undefined;
  return {
    async start() {
      const p = Bun.spawn(o.argv, { stdout: "ignore", stderr: "ignore", ...(o.cwd ? { cwd: o.cwd } : {}) });
      proc = p;
      await waitFor(`${o.what} to accept connections`, async () => {
        if (p.exitCode !== null) throw new Error(o.exitReason?.(p.exitCode) ?? `${o.what} exited with ${p.exitCode}`);
        return o.ready();
      }, 60_000);
    },
    async stop() {
      const p = proc;
      if (!p) return;
      proc = undefined;
      p.kill(o.stopSignal);
      const killer = setTimeout(() => p.kill("SIGKILL"), 10_000);
      await p.exited;
      clearTimeout(killer);
    },
    pid: () => proc?.pid,
  };
}
