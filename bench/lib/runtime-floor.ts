/**
 * The Bun runtime's own floor under sendmail (issue 16): two compiled Bun
 * programs built with postern's build flags, timed the way sendmail is.
 *
 * - `exit`: a program that does nothing; what starting the runtime costs.
 * - `queue-file`: reads stdin, writes it to a new file in a directory,
 *   fsyncs it, renames it and fsyncs the directory: the least a durable
 *   local submission can do in this runtime.
 *
 * Bench-only; the programs run as the bench user, in a directory of the
 * bench's own temporary tree.
 */
import { chmodSync, chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mustRun } from "./proc.ts";

const QUEUE_FILE_PROGRAM = `
import { closeSync, fsyncSync, openSync, readSync, renameSync, writeSync, constants as C } from "node:fs";
const dir = process.argv[2];
const chunks = [];
const buf = Buffer.allocUnsafe(65536);
for (;;) { const n = readSync(0, buf, 0, buf.length, null); if (n <= 0) break; chunks.push(Buffer.from(buf.subarray(0, n))); }
const data = Buffer.concat(chunks);
const tmp = dir + "/t." + process.pid;
const fd = openSync(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o600);
for (let off = 0; off < data.length; ) off += writeSync(fd, data, off);
fsyncSync(fd);
closeSync(fd);
renameSync(tmp, dir + "/q." + process.pid + "." + Date.now());
const d = openSync(dir, C.O_RDONLY);
fsyncSync(d);
closeSync(d);
`;

export interface RuntimeFloor {
  /** argv of the do-nothing program. */
  exit: string[];
  /** argv of the stdin -> durable file program. */
  queueFile: string[];
  /** Where queue-file writes (empty it between runs if needed). */
  spool: string;
}

/** Compiles both programs into `base/runtime-floor` with `bun` (postern's build flags, minus splitting). */
export function buildRuntimeFloor(base: string, owner?: { uid: number; gid: number }): RuntimeFloor {
  const dir = join(base, "runtime-floor");
  const spool = join(dir, "spool");
  mkdirSync(spool, { recursive: true });
  chmodSync(dir, 0o755);
  if (owner) chownSync(spool, owner.uid, owner.gid);
  writeFileSync(join(dir, "exit.ts"), "export {};\n");
  writeFileSync(join(dir, "queue-file.ts"), QUEUE_FILE_PROGRAM);
  for (const name of ["exit", "queue-file"]) {
    mustRun([process.execPath, "build", "--compile", "--minify", "--bytecode", "--format=esm", "--compile-jit-policy=100", "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig", join(dir, `${name}.ts`), "--outfile", join(dir, name)], { timeoutMs: 120_000 });
  }
  return { exit: [join(dir, "exit")], queueFile: [join(dir, "queue-file"), spool], spool };
}
