/**
 * Hands back the executable's pages an idle daemon no longer uses. A
 * process maps the pages of dist/postern it runs (the runtime's machine
 * code, the bytecode of the roles); once mapped they stay in its memory
 * figures (RSS, and PSS, shared with the other postern processes) for good,
 * although most of them served only the start-up: about 16-22 MB of the
 * executable per daemon at idle, against 5-6 MB of the daemon's own
 * (anonymous) memory (bench/README.md, issue 16 session 9). madvise
 * MADV_DONTNEED on the read-only mappings of the executable drops them from
 * the process; they stay in the page cache, and what the process touches
 * again comes back with a minor page fault.
 *
 * Only mappings of the executable that are read-only (r--p, r-xp) and hold
 * no page of the process's own (no copy-on-write page: "Anonymous: 0 kB" in
 * smaps) are trimmed, so nothing the process wrote can be lost; the
 * relocated read-only data and the writable segments are left alone.
 *
 * Runs in the daemons, as whatever user runs them; reads /proc/self/smaps
 * (the kernel's) and nothing else.
 */
import { dlopen, FFIType } from "bun:ffi";
import { readFileSync, realpathSync } from "node:fs";

const MADV_DONTNEED = 4;

export interface Mapping {
  start: bigint;
  end: bigint;
  perms: string;
  path: string;
  anonymousKb: number;
  rssKb: number;
}

/** The mappings of an smaps text, with their Anonymous and Rss sizes. */
export function parseSmaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      out.push({ start: BigInt(`0x${head[1]}`), end: BigInt(`0x${head[2]}`), perms: head[3]!, path: head[4] ?? "", anonymousKb: 0, rssKb: 0 });
      continue;
    }
    const field = /^(Anonymous|Rss):\s+(\d+) kB/.exec(line);
    const cur = out[out.length - 1];
    if (!field || !cur) continue;
    if (field[1] === "Anonymous") cur.anonymousKb += Number(field[2]);
    else cur.rssKb += Number(field[2]);
  }
  return out;
}

/** The mappings that may be dropped: `exe`'s read-only ones without a page of the process's own. */
export function trimmable(maps: readonly Mapping[], exe: string): Mapping[] {
  return maps.filter((m) => m.path === exe && (m.perms === "r--p" || m.perms === "r-xp") && m.anonymousKb === 0 && m.rssKb > 0);
}

let madvise: ((addr: bigint, length: bigint, advice: number) => number) | undefined;

function lib(): (addr: bigint, length: bigint, advice: number) => number {
  if (madvise) return madvise;
  const l = dlopen("libc.so.6", { madvise: { args: [FFIType.u64, FFIType.u64, FFIType.i32], returns: FFIType.i32 } });
  madvise = (addr, length, advice) => l.symbols.madvise(addr, length, advice) as number;
  return madvise;
}

/**
 * Drops the executable's read-only pages from this process; returns the kB they held (0 when there was
 * nothing to drop or this system cannot say). Never throws: a process that cannot trim keeps its pages.
 */
export function trimExecutablePages(): number {
  try {
    const exe = realpathSync("/proc/self/exe");
    const targets = trimmable(parseSmaps(readFileSync("/proc/self/smaps", "latin1")), exe);
    if (targets.length === 0) return 0;
    const advise = lib();
    let kb = 0;
    for (const m of targets) if (advise(m.start, m.end - m.start, MADV_DONTNEED) === 0) kb += m.rssKb;
    return kb;
  } catch {
    return 0;
  }
}

/** A daemon trims this long after its last unit of work, until its configuration says (Postfix's max_idle default). */
export const IDLE_TRIM_MS = 100_000;

/**
 * When to trim: once shortly after start (the pages that only the start-up used: collectStartGarbageLater)
 * and once each time work has stopped for max_idle, the time after which Postfix's own daemons exit and
 * give everything back (src/daemon/skeleton.ts sets it from the configuration). Work only notes the time;
 * a single unref'd timer per burst does the rest, so a busy daemon pays a clock read per unit of work and
 * never trims, and a daemon with a message every few seconds never faults the pages in again.
 */
export class IdleTrimmer {
  #lastWork = 0;
  #pending = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #idleMs: () => number;

  constructor(
    private readonly trim: () => unknown = trimExecutablePages,
    idleMs: () => number = () => IDLE_TRIM_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.#idleMs = idleMs;
  }

  /** The idle time, read each time the countdown starts (so a reload's value applies to the next one). */
  setIdleTime(idleMs: () => number): void {
    this.#idleMs = idleMs;
  }

  /** One unit of work was done: trim once it has been idle for the idle time. */
  workDone(): void {
    this.#lastWork = this.now();
    this.#pending = true;
    if (this.#timer === undefined) this.#arm(this.#idleMs());
  }

  /** Whether a trim is waiting for the work to stop (for tests). */
  get pending(): boolean {
    return this.#pending;
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => this.#check(), ms);
    this.#timer.unref?.();
  }

  #check(): void {
    this.#timer = undefined;
    const idleMs = this.#idleMs();
    const idle = this.now() - this.#lastWork;
    if (idle < idleMs) {
      this.#arm(idleMs - idle);
      return;
    }
    this.#pending = false;
    this.trim();
  }
}

/** The process's trimmer (smtpd, the queue manager, local and its workers note their work here). */
export const idleTrimmer = new IdleTrimmer();
