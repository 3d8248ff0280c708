/**
 * CPU time of a process by thread name, from /proc/PID/task/TID/stat (user +
 * system clock ticks, 10 ms each): the JS thread ("postern"), Bun's thread
 * pool ("Bun Pool N", summed), the JIT compiler ("JITWorker"), the
 * allocator's "mi-scavenger", the GC's helpers, fs.watch's thread. Used by
 * bench/profile-local.ts and bench/sendmail-cpu.ts (issue 16). A thread
 * that ended (JSC ends idle JIT threads) leaves /proc/PID/task with its
 * time, which the process's own /proc/PID/stat keeps: the total and user /
 * system come from there, and what ended threads used shows as "ended".
 * Reads only /proc; a process that is gone reads as nothing.
 */
import { readdirSync, readFileSync } from "node:fs";

/** Ticks per live thread name, plus "user" and "system" of the whole process (ended threads included). */
export function threadTicks(pid: number): Map<string, number> {
  const m = new Map<string, number>();
  let tids: string[];
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = raw.slice(raw.lastIndexOf(")") + 2).split(" ");
    m.set("user", Number(f[11]));
    m.set("system", Number(f[12]));
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return new Map();
  }
  for (const tid of tids) {
    try {
      const raw = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = raw.slice(raw.indexOf("(") + 1, raw.lastIndexOf(")")).replace(/\s*#?\d+$/, "");
      const f = raw.slice(raw.lastIndexOf(")") + 2).split(" ");
      const user = Number(f[11]);
      const system = Number(f[12]);
      if (name === "user" || name === "system") continue;
      m.set(name, (m.get(name) ?? 0) + user + system);
    } catch {
      // the thread ended meanwhile
    }
  }
  return m;
}

/** "total (user u, system s; thread=ms ...)" in ms per message between two readings. */
export function describeThreads(before: Map<string, number> | undefined, after: Map<string, number>, messages: number): string {
  const per = (ticks: number) => ((ticks * 10) / messages).toFixed(2);
  const diff = (k: string) => (after.get(k) ?? 0) - (before?.get(k) ?? 0);
  const threads = [...after.keys()].filter((k) => k !== "user" && k !== "system").map((k) => [k, diff(k)] as const).filter(([, t]) => t > 0);
  const total = diff("user") + diff("system");
  const ended = total - threads.reduce((s, [, t]) => s + t, 0);
  if (ended > 0) threads.push(["ended", ended]);
  threads.sort((a, b) => b[1] - a[1]);
  return `${per(total)} ms (user ${per(diff("user"))}, system ${per(diff("system"))}; ${threads.map(([k, t]) => `${k}=${per(t)}`).join(" ")})`;
}
