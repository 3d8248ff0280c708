/**
 * The disk's floor under one SMTP session (issue 16, relay and local at 1
 * session): one session waits for each message's 250, and a durable 250
 * waits for the disk. This times, one after another, the least each
 * durability model can do per message on this machine's disk:
 *
 * - `one fsync` (Postfix's cleanup): create the queue file under its final
 *   name, write it, fsync it. On ext4 the fsync's journal commit also carries
 *   the directory entry made before it, which Postfix relies on.
 * - `file + directory fsync` (postern's commit, docs/queue-file.md): write a
 *   temporary file, fsync it, rename it into place, fsync the directory.
 *
 * Prints the median, the 90th percentile and the mean of each, and the
 * message rate one session could reach if it did nothing else (1 / mean). Bench-only, any user; it
 * writes only below a temporary directory of its own and removes it.
 *   bun bench/fsync-floor.ts [ITERATIONS] [SIZE] [DIR]
 */
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, unlinkSync, writeSync, constants as C } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const iterations = Number(process.argv[2] ?? 1000);
const size = Number(process.argv[3] ?? 4096);
const base = mkdtempSync(join(process.argv[4] ?? tmpdir(), "postern-fsync-floor-"));
const data = Buffer.alloc(size, "x");

function writeAll(fd: number): void {
  for (let off = 0; off < data.length; ) {
    const n = writeSync(fd, data, off);
    if (n <= 0) throw new Error("short write");
    off += n;
  }
}

/** Postfix's model: one fsync per message. */
function oneFsync(dir: string, i: number): void {
  const fd = openSync(join(dir, `q${i}`), C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o600);
  writeAll(fd);
  fsyncSync(fd);
  closeSync(fd);
}

/** postern's model: the file, then its directory entry. */
function fileAndDirectory(dir: string, i: number): void {
  const tmp = join(dir, "..", "tmp", `t${i}`);
  const fd = openSync(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o600);
  writeAll(fd);
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, join(dir, `q${i}`));
  const d = openSync(dir, C.O_RDONLY);
  fsyncSync(d);
  closeSync(d);
}

const models: [string, (dir: string, i: number) => void][] = [
  ["one fsync (Postfix)", oneFsync],
  ["file + directory fsync (postern)", fileAndDirectory],
];
const times = new Map<string, number[]>(models.map(([name]) => [name, []]));
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
try {
  for (const [name] of models) {
    mkdirSync(join(base, name.split(" ")[0]!, "incoming"), { recursive: true });
    mkdirSync(join(base, name.split(" ")[0]!, "tmp"), { recursive: true });
  }
  // Alternate the models so that the disk's mood counts for both alike.
  for (let i = 0; i < iterations; i++) {
    for (const [name, run] of models) {
      const dir = join(base, name.split(" ")[0]!, "incoming");
      const t0 = Bun.nanoseconds();
      run(dir, i);
      times.get(name)!.push((Bun.nanoseconds() - t0) / 1e6);
      if (i % 200 === 199) for (let j = i - 199; j <= i; j++) unlinkSync(join(dir, `q${j}`));
    }
  }
  console.log(`${iterations} messages of ${size} bytes each, alternating, in ${base}`);
  for (const [name] of models) {
    const xs = times.get(name)!;
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(`${name}: median ${quantile(xs, 0.5).toFixed(3)} ms, p90 ${quantile(xs, 0.9).toFixed(3)} ms, mean ${mean.toFixed(3)} ms: at most ${Math.round(1000 / mean)} msg/s for one session`);
  }
} finally {
  rmSync(base, { recursive: true, force: true });
}
