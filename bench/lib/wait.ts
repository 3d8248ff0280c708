/**
 * Waiting for processes and files: a process counts as gone when /proc has
 * no entry for it or it is a zombie (the init of a container may reap late).
 */
import { readFileSync } from "node:fs";

export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Polls `done` every `stepMs` until it is true or `timeoutMs` passes; returns the last answer. */
export function waitFor(done: () => boolean, timeoutMs: number, stepMs = 20): boolean {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > end) return false;
    Bun.sleepSync(stepMs);
  }
  return true;
}

export function sleepMs(ms: number): void {
  Bun.sleepSync(ms);
}

/** True when something accepts a TCP connection on 127.0.0.1:`port` (the probe connects and closes at once). */
export async function portAnswers(port: number): Promise<boolean> {
  try {
    const c = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    c.end();
    return true;
  } catch {
    return false;
  }
}
