/**
 * Handing back the executable's pages (src/util/exe-trim.ts, issue 16:
 * idle memory): which mappings may go (read-only, of the executable, with
 * no page of the process's own), that dropping them leaves the process
 * working, and when a daemon does it (shortly after start, and once work
 * has stopped for max_idle).
 */
import { expect, test } from "bun:test";
import { readFileSync, realpathSync } from "node:fs";
import { IdleTrimmer, parseSmaps, trimExecutablePages, trimmable } from "../../../src/util/exe-trim.ts";

const EXE = "/usr/sbin/postern";
const SMAPS = `55d000000000-55d000400000 r--p 00000000 fd:00 123 ${EXE}
Size:               4096 kB
Rss:                2048 kB
Anonymous:             0 kB
55d000400000-55d001000000 r-xp 00400000 fd:00 123 ${EXE}
Size:              12288 kB
Rss:                9000 kB
Anonymous:             0 kB
55d001000000-55d001100000 r--p 01000000 fd:00 123 ${EXE}
Size:               1024 kB
Rss:                 512 kB
Anonymous:           256 kB
55d001100000-55d001200000 rw-p 01100000 fd:00 123 ${EXE}
Size:               1024 kB
Rss:                1024 kB
Anonymous:            64 kB
55d001200000-55d001300000 r--p 01200000 fd:00 123 ${EXE}
Size:               1024 kB
Rss:                   0 kB
Anonymous:             0 kB
7f0000000000-7f0000100000 r-xp 00000000 fd:00 456 /usr/lib/x86_64-linux-gnu/libc.so.6
Size:               1024 kB
Rss:                 800 kB
Anonymous:             0 kB
7f0000200000-7f0000300000 rw-p 00000000 00:00 0
Rss:                 900 kB
Anonymous:           900 kB
`;

test("only the executable's read-only mappings without a page of the process's own are trimmed", () => {
  const maps = parseSmaps(SMAPS);
  expect(maps.map((m) => [m.perms, m.rssKb, m.anonymousKb])).toEqual([
    ["r--p", 2048, 0],
    ["r-xp", 9000, 0],
    ["r--p", 512, 256],
    ["rw-p", 1024, 64],
    ["r--p", 0, 0],
    ["r-xp", 800, 0],
    ["rw-p", 900, 900],
  ]);
  // the relocated read-only data (copy-on-write pages), the writable segment, an empty mapping and libc stay
  expect(trimmable(maps, EXE).map((m) => [m.start.toString(16), m.end.toString(16)])).toEqual([
    ["55d000000000", "55d000400000"],
    ["55d000400000", "55d001000000"],
  ]);
  expect(trimmable(maps, "/usr/sbin/other")).toEqual([]);
});

/** The resident kB of this process's read-only, unmodified mappings of its executable. */
function exeResidentKb(): number {
  const exe = realpathSync("/proc/self/exe");
  return trimmable(parseSmaps(readFileSync("/proc/self/smaps", "latin1")), exe).reduce((n, m) => n + m.rssKb, 0);
}

test("the pages go from the process, and what it runs next comes back from the page cache", () => {
  const before = exeResidentKb();
  expect(before).toBeGreaterThan(1024);
  const dropped = trimExecutablePages();
  expect(dropped).toBeGreaterThan(0);
  // reading smaps and parsing it touches some code again, but nothing like what was there
  expect(exeResidentKb()).toBeLessThan(before * 0.75);
  // and the runtime works on: code, JSON, regular expressions, a hash
  const text = JSON.stringify({ a: [1, 2, 3], b: "x".repeat(100) });
  expect(/"b":"(x+)"/.exec(text)?.[1]?.length).toBe(100);
  expect(new Bun.CryptoHasher("sha256").update(text).digest("hex")).toHaveLength(64);
});

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (ok()) return;
    await Bun.sleep(5);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test("a daemon trims once its work has stopped for the idle time, not while work goes on", async () => {
  let clock = 0;
  let clockReads = 0;
  let trims = 0;
  const readClock = () => {
    clockReads++;
    return clock;
  };
  const t = new IdleTrimmer(() => trims++, () => 20, readClock);
  expect(t.pending).toBe(false);
  t.workDone();
  expect(t.pending).toBe(true);
  // more work at the same moment: the timer fires, finds the last work 0 ms old and waits again
  t.workDone();
  await until("the first check", () => clockReads >= 3);
  expect(trims).toBe(0);
  expect(t.pending).toBe(true);
  // the clock moves past the idle time with no work: the next check trims, once
  clock = 1000;
  await until("the trim", () => trims > 0);
  expect(trims).toBe(1);
  expect(t.pending).toBe(false);
  // new work arms it again
  t.workDone();
  clock = 2000;
  await until("the second trim", () => trims > 1);
  expect(trims).toBe(2);
});
