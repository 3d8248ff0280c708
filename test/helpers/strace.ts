/**
 * Reading what `strace -f -y -s N -o FILE` wrote, for tests that check the
 * order of system calls (the fsync audit): each call becomes one event with
 * its thread, name, argument text, result, and the line numbers where it
 * started and finished (a call other threads interrupted is printed as
 * "<unfinished ...>" and "<... resumed>"; the two halves are joined). strace
 * writes lines in the order it sees the events, so "A finished before B
 * started" is `a.exit < b.entry`.
 *
 * Threads are grouped into processes from the clone/clone3/fork/vfork calls
 * (a clone with CLONE_THREAD stays in its parent's process), and a process
 * gets the role name of its last execve of `postern ROLE ...`, so a test can
 * look at one daemon's calls whatever threads did them.
 *
 * Test code only; the trace is the test's own file.
 */

export interface SyscallEvent {
  tid: number;
  name: string;
  /** The argument text between the parentheses, as strace printed it. */
  args: string;
  /** The numeric result; NaN for "?" (the call did not return). */
  ret: number;
  entry: number;
  exit: number;
}

export interface Trace {
  events: SyscallEvent[];
  /** Thread id to the id of the process (thread group) it belongs to. */
  processOf: Map<number, number>;
  /** Process id to the role of its last `postern ROLE` execve (or the program's base name). */
  roleOf: Map<number, string>;
  /** Exit statuses of processes ("+++ exited with N +++"), by thread id. */
  exits: Map<number, number>;
}

const LINE = /^(\d+) +(?:\d\d:\d\d:\d\d\.\d+ +)?(.*)$/;
const RESULT = / += (-?\d+|0x[0-9a-f]+|\?)(?: [A-Z_]+ \(.*\))?(?: <[\d.]+>)?$/;

function result(text: string): { before: string; ret: number } | undefined {
  const m = RESULT.exec(text);
  if (!m) return undefined;
  return { before: text.slice(0, m.index), ret: m[1] === "?" ? NaN : Number(m[1]) };
}

export function parseTrace(text: string, firstPid?: number): Trace {
  const events: SyscallEvent[] = [];
  const pending = new Map<number, { name: string; args: string; entry: number }>();
  const exits = new Map<number, number>();
  const lines = text.split("\n");
  lines.forEach((raw, index) => {
    const m = LINE.exec(raw);
    if (!m) return;
    const tid = Number(m[1]);
    const body = m[2]!;
    const exited = /^\+\+\+ exited with (\d+) \+\+\+$/.exec(body);
    if (exited) {
      exits.set(tid, Number(exited[1]));
      return;
    }
    if (body.startsWith("+++") || body.startsWith("---")) return;
    const resumed = /^<\.\.\. (\w+) resumed>(.*)$/.exec(body);
    if (resumed) {
      const p = pending.get(tid);
      pending.delete(tid);
      const r = result(resumed[2]!);
      if (!p || !r) return;
      events.push({ tid, name: p.name, args: p.args + r.before.replace(/\)$/, ""), ret: r.ret, entry: p.entry, exit: index });
      return;
    }
    const call = /^(\w+)\((.*)$/.exec(body);
    if (!call) return;
    const rest = call[2]!;
    if (rest.endsWith(" <unfinished ...>")) {
      pending.set(tid, { name: call[1]!, args: rest.slice(0, -" <unfinished ...>".length), entry: index });
      return;
    }
    const r = result(rest);
    if (!r) return;
    events.push({ tid, name: call[1]!, args: r.before.replace(/\)$/, ""), ret: r.ret, entry: index, exit: index });
  });
  events.sort((a, b) => a.entry - b.entry);

  // threads into processes: a clone with CLONE_THREAD joins its parent's process, anything else starts one
  const processOf = new Map<number, number>();
  const groupOf = (tid: number) => processOf.get(tid) ?? tid;
  if (firstPid !== undefined) processOf.set(firstPid, firstPid);
  for (const e of events) {
    if (!["clone", "clone3", "fork", "vfork"].includes(e.name) || !(e.ret > 0)) continue;
    processOf.set(e.ret, e.args.includes("CLONE_THREAD") ? groupOf(e.tid) : e.ret);
  }
  const roleOf = new Map<number, string>();
  for (const e of events) {
    if (e.name !== "execve" || e.ret !== 0) continue;
    const argv = /^"[^"]*", \[((?:"(?:[^"\\]|\\.)*"(?:, )?)*)/.exec(e.args);
    const words = argv ? [...argv[1]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((w) => w[1]!) : [];
    const program = (words[0] ?? "").split("/").at(-1)!;
    roleOf.set(groupOf(e.tid), program === "postern" && words[1] ? words[1] : program);
  }
  return { events, processOf: new Map([...processOf].map(([t]) => [t, groupOf(t)])), roleOf, exits };
}

/** The process a thread belongs to. */
export function processOfThread(trace: Trace, tid: number): number {
  return trace.processOf.get(tid) ?? tid;
}

/** The quoted strings among a call's arguments (rename's paths), unescaped only as far as tests need. */
export function quotedArgs(args: string): string[] {
  return [...args.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
}

/** The path strace -y printed for the first file descriptor argument ("23</a/b>" gives "/a/b"). */
export function fdPath(args: string): string | undefined {
  return /^\d+<([^>]*)>/.exec(args)?.[1];
}
