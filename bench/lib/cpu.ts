/**
 * CPU time a mail system spends, by role: user plus system time of every
 * process in a daemon's tree, from /proc/PID/stat, sampled while a
 * scenario runs so short-lived processes (Postfix's cleanup and local exit
 * after 100 uses) are seen before they go. The tree's total also counts
 * what its processes reaped (the `cutime`/`cstime` fields), so CPU of a
 * process that came and went between two samples is not lost: it shows up
 * as "between samples". The CPU of the harness's own children (every
 * sendmail and what it runs, such as Postfix's postdrop) comes from the
 * harness's own cutime/cstime.
 *
 * Reads /proc only (root sees every process). Limits: clock-tick
 * resolution (10 ms); a process whose parent is outside the tree is not
 * counted.
 */
import { readFileSync } from "node:fs";
import { processName, processTree } from "./pss.ts";

const TICK_MS = 10;

interface ProcCpu {
  name: string;
  /** utime + stime, ms. */
  self: number;
  /** cutime + cstime (reaped children), ms. */
  children: number;
  /** stime + cstime: the kernel's share of self + children, ms. */
  system: number;
}

function readStat(pid: number | "self"): (ProcCpu & { start: string }) | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // rest[0] is field 3 (state): utime 14, stime 15, cutime 16, cstime 17, starttime 22
    const f = (field: number) => Number(rest[field - 3]);
    return { name: pid === "self" ? "self" : processName(pid), self: (f(14) + f(15)) * TICK_MS, children: (f(16) + f(17)) * TICK_MS, system: (f(15) + f(17)) * TICK_MS, start: rest[22 - 3]! };
  } catch {
    return undefined;
  }
}

/** CPU ms of the harness's reaped children (every sendmail it ran) and of itself. */
export function harnessCpu(): { children: number; self: number } {
  const s = readStat("self")!;
  return { children: s.children, self: s.self };
}

export interface CpuByRole {
  /** Role name ("postern qmgr", "cleanup", ...) -> CPU ms during the interval, and how many processes of it were seen. */
  roles: Map<string, { ms: number; processes: number }>;
  /** CPU ms of the whole tree during the interval (including processes that came and went unseen). */
  totalMs: number;
  /** totalMs minus what the samples attribute to a role. */
  betweenSamplesMs: number;
  /** The kernel's share of totalMs (system time), ms. */
  systemMs: number;
}

/** Follows one process tree: call sample() now and then, and result() at the end. */
export class TreeCpuTracker {
  readonly #root: number;
  readonly #first = new Map<string, ProcCpu>();
  readonly #last = new Map<string, ProcCpu>();
  readonly #startTotal: number;
  readonly #startSystem: number;
  #lastTotal: number;
  #lastSystem: number;

  constructor(root: number) {
    this.#root = root;
    [this.#startTotal, this.#startSystem] = this.#observe(true);
    this.#lastTotal = this.#startTotal;
    this.#lastSystem = this.#startSystem;
  }

  sample(): void {
    const [total, system] = this.#observe(false);
    if (total > 0) {
      this.#lastTotal = total;
      this.#lastSystem = system;
    }
  }

  /** Samples once more and sums by role. */
  result(): CpuByRole {
    this.sample();
    const roles = new Map<string, { ms: number; processes: number }>();
    let attributed = 0;
    for (const [key, last] of this.#last) {
      const ms = last.self - (this.#first.get(key)?.self ?? 0);
      attributed += ms;
      const r = roles.get(last.name) ?? { ms: 0, processes: 0 };
      r.ms += ms;
      r.processes++;
      roles.set(last.name, r);
    }
    const totalMs = this.#lastTotal - this.#startTotal;
    return { roles, totalMs, betweenSamplesMs: Math.max(0, totalMs - attributed), systemMs: this.#lastSystem - this.#startSystem };
  }

  /** Records every process of the tree; returns the tree's total (self + reaped) CPU ms and its system part. */
  #observe(first: boolean): [number, number] {
    let total = 0;
    let system = 0;
    for (const pid of processTree(this.#root)) {
      const s = readStat(pid);
      if (!s) continue;
      const key = `${pid}/${s.start}`;
      const cpu = { name: s.name, self: s.self, children: s.children, system: s.system };
      if (first) this.#first.set(key, cpu);
      this.#last.set(key, cpu);
      total += s.self + s.children;
      system += s.system;
    }
    return [total, system];
  }
}

/** Several runs' CPU summed: the tree's total and kernel share, and each role's, largest first. */
export interface CpuSum {
  totalMs: number;
  systemMs: number;
  /** [role, ms] with ms > 0, largest first; "processes gone between samples" last when there were any. */
  roles: [string, number][];
}

export function sumCpu(runs: readonly CpuByRole[]): CpuSum {
  const roles = new Map<string, number>();
  let totalMs = 0;
  let systemMs = 0;
  let between = 0;
  for (const cpu of runs) {
    totalMs += cpu.totalMs;
    systemMs += cpu.systemMs;
    between += cpu.betweenSamplesMs;
    for (const [role, v] of cpu.roles) roles.set(role, (roles.get(role) ?? 0) + v.ms);
  }
  const sorted = [...roles.entries()].filter(([, ms]) => ms > 0).sort((a, b) => b[1] - a[1]);
  if (between > 0) sorted.push(["processes gone between samples", between]);
  return { totalMs, systemMs, roles: sorted };
}

/** "postern smtpd 2.10, cleanup 0.40, ...": each role's ms divided by `per`, two decimals. */
export function describeRoles(sum: CpuSum, per: number): string {
  return sum.roles.map(([role, ms]) => `${role} ${(ms / per).toFixed(2)}`).join(", ");
}
