/**
 * Memory of a running mail system: the proportional set size (PSS) of every
 * process in a daemon's process tree, from /proc/PID/smaps_rollup. PSS
 * splits shared pages (the binary, libraries) among the processes that map
 * them, so the sum over a tree is the memory the system really costs; RSS
 * would count the shared 110 MB postern binary once per process. USS (pages
 * only this process maps) and RSS are given beside it as lower and upper bounds.
 *
 * Reads /proc only (root sees every process). Limits: a process that exits
 * while being read is skipped; pages shared with processes outside the tree
 * (another program using the same libc, another Postfix instance on the
 * machine) are split with them too, which lowers the tree's PSS.
 */
import { readdirSync, readFileSync } from "node:fs";

export interface ProcessMemory {
  pid: number;
  name: string;
  pssKb: number;
  rssKb: number;
  /** Unique set size: pages no other process maps (Private_Clean + Private_Dirty). */
  ussKb: number;
  /** The anonymous part of the PSS (heap, stacks, JIT code): independent of how the page cache holds the executable. */
  pssAnonKb: number;
}

export interface TreeMemory {
  processes: ProcessMemory[];
  pssKb: number;
  rssKb: number;
  ussKb: number;
}

/** The PSS and RSS of one process, or undefined when it is gone. */
export function processMemory(pid: number): ProcessMemory | undefined {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(rollup)?.[1] ?? 0);
    return { pid, name: processName(pid), pssKb: field("Pss"), rssKb: field("Rss"), ussKb: field("Private_Clean") + field("Private_Dirty"), pssAnonKb: field("Pss_Anon") };
  } catch {
    return undefined;
  }
}

/** `root` and all its descendants (by parent pid), read from /proc. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const ppid = parentPid(Number(entry));
    if (ppid === undefined) continue;
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const tree: number[] = [];
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop()!;
    tree.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** Sums the memory of `root`'s process tree. */
export function treeMemory(root: number): TreeMemory {
  const processes = processTree(root)
    .map(processMemory)
    .filter((m): m is ProcessMemory => m !== undefined);
  return {
    processes,
    pssKb: processes.reduce((s, p) => s + p.pssKb, 0),
    rssKb: processes.reduce((s, p) => s + p.rssKb, 0),
    ussKb: processes.reduce((s, p) => s + p.ussKb, 0),
  };
}

/** "3.1 MB PSS in 3 processes (master 0.9, pickup 1.0, qmgr 1.2); USS 1.9 MB, RSS 21.0 MB". */
export function describeMemory(m: TreeMemory): string {
  const mb = (kb: number) => (kb / 1024).toFixed(1);
  const parts = m.processes.map((p) => `${p.name} ${mb(p.pssKb)}`).join(", ");
  return `${mb(m.pssKb)} MB PSS in ${m.processes.length} processes (${parts}); USS ${mb(m.ussKb)} MB, RSS ${mb(m.rssKb)} MB`;
}

/** The command name, with the role word for one executable serving many roles ("postern pickup"). */
export function processName(pid: number): string {
  const comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  const role = args[1];
  return args[0]?.split("/").at(-1) === comm && role && /^[a-z][a-z0-9-]*$/.test(role) ? `${comm} ${role}` : comm;
}

export function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // the command name in parentheses may hold spaces and parentheses: split after the last ")"
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(rest[1]);
  } catch {
    return undefined;
  }
}
