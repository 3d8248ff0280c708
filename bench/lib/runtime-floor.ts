/**
 * The Bun runtime's own floor under sendmail (issue 16): two compiled Bun
 * programs built with postern's build flags, timed the way sendmail is.
 *
 * - `exit`: a program that does nothing; what starting the runtime costs.
 * - `queue-file`: reads stdin, writes it to a new file in a directory,
 *   fsyncs it, renames it and fsyncs the directory: the least a durable
 *   local submission can do in this runtime.
 * - `minimal-sendmail`: the least a sendmail must do beyond that, written
 *   as one small module with no shared code: read and parse postern.toml
 *   ($MAIL_CONFIG) with smol-toml, the configuration format the project
 *   mandates; take `-f` and the recipients from argv; find the submitter in
 *   /etc/passwd; refuse an empty recipient list; write postern's queue-file
 *   records (magic, T, S, A uid/login, R per recipient, M, the content with
 *   CRLF made LF, E) and commit it as `queue-file` does. No checks,
 *   no logging, no header parsing: a lower bound for any sendmail that reads
 *   its configuration in this runtime.
 *
 * Bench-only; the programs run as the bench user, in a directory of the
 * bench's own temporary tree.
 */
import { chmodSync, chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { mustRun } from "./proc.ts";

/** The programs' shared part: standard input into the array chunks (declared before it, with buf). */
const READ_STDIN = `for (;;) { const n = readSync(0, buf, 0, buf.length, null); if (n <= 0) break; chunks.push(Buffer.from(buf.subarray(0, n))); }
`;

/** The programs' shared part: the bytes in data committed durably into dir. */
const COMMIT_DATA = `const tmp = dir + "/t." + process.pid;
const fd = openSync(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o600);
for (let off = 0; off < data.length; ) off += writeSync(fd, data, off);
fsyncSync(fd);
closeSync(fd);
renameSync(tmp, dir + "/q." + process.pid + "." + Date.now());
const d = openSync(dir, C.O_RDONLY);
fsyncSync(d);
closeSync(d);
`;

const QUEUE_FILE_PROGRAM = `
import { closeSync, fsyncSync, openSync, readSync, renameSync, writeSync, constants as C } from "node:fs";
const dir = process.argv[2];
const chunks = [];
const buf = Buffer.allocUnsafe(65536);
${READ_STDIN}const data = Buffer.concat(chunks);
${COMMIT_DATA}`;

const MINIMAL_SENDMAIL_PROGRAM = `
import { closeSync, fsyncSync, openSync, readFileSync, readSync, renameSync, writeSync, constants as C } from "node:fs";
import { parse } from "SMOL_TOML";
const config = parse(readFileSync((process.env.MAIL_CONFIG ?? "/etc/postern") + "/postern.toml", "utf8"));
if (typeof config.queue_directory !== "string") process.exit(78);
const dir = process.argv[2];
let sender = "";
const rcpts = [];
for (let i = 3; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === "-f") sender = process.argv[++i] ?? "";
  else if (a.startsWith("-f")) sender = a.slice(2);
  else if (!a.startsWith("-")) rcpts.push(a);
}
if (rcpts.length === 0) process.exit(64);
const uid = process.getuid();
let login = String(uid);
for (const line of readFileSync("/etc/passwd", "latin1").split("\\n")) {
  const f = line.split(":");
  if (f.length >= 7 && Number(f[2]) === uid) { login = f[0]; break; }
}
const esc = (v) => v.replace(/[%\\x00-\\x20\\x7f]/g, (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0"));
const chunks = [];
const buf = Buffer.allocUnsafe(65536);
${READ_STDIN}const body = Buffer.concat(chunks).toString("latin1").replace(/\\r\\n/g, "\\n");
let head = "postern-queue 1\\nT " + Date.now() + "\\nS " + esc(sender || login) + "\\nA uid " + uid + "\\nA login " + esc(login) + "\\n";
for (const r of rcpts) head += "R " + esc(r) + "\\n";
const data = Buffer.from(head + "M " + body.length + "\\n" + body + "\\nE\\n", "latin1");
${COMMIT_DATA}`;

/** smol-toml's module entry in the project's node_modules (the programs are built in a temporary directory). */
const SMOL_TOML = resolve(import.meta.dir, "../../node_modules/smol-toml/dist/index.js");

export interface RuntimeFloor {
  /** argv of the do-nothing program. */
  exit: string[];
  /** argv of the stdin -> durable file program. */
  queueFile: string[];
  /** argv (before the sendmail arguments) of the minimal sendmail; it reads $MAIL_CONFIG/postern.toml. */
  minimalSendmail: string[];
  /** Where queue-file and minimal-sendmail write (empty it between runs if needed). */
  spool: string;
}

/** Compiles the three programs into `base/runtime-floor` with `bun` (postern's build flags, minus splitting). */
export function buildRuntimeFloor(base: string, owner?: { uid: number; gid: number }): RuntimeFloor {
  const dir = join(base, "runtime-floor");
  const spool = join(dir, "spool");
  mkdirSync(spool, { recursive: true });
  chmodSync(dir, 0o755);
  if (owner) chownSync(spool, owner.uid, owner.gid);
  writeFileSync(join(dir, "exit.ts"), "export {};\n");
  writeFileSync(join(dir, "queue-file.ts"), QUEUE_FILE_PROGRAM);
  writeFileSync(join(dir, "minimal-sendmail.ts"), MINIMAL_SENDMAIL_PROGRAM.replace("SMOL_TOML", SMOL_TOML));
  for (const name of ["exit", "queue-file", "minimal-sendmail"]) {
    mustRun([process.execPath, "build", "--compile", "--minify", "--bytecode", "--format=esm", "--compile-jit-policy=100", "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig", join(dir, `${name}.ts`), "--outfile", join(dir, name)], { timeoutMs: 120_000 });
  }
  return { exit: [join(dir, "exit")], queueFile: [join(dir, "queue-file"), spool], minimalSendmail: [join(dir, "minimal-sendmail"), spool], spool };
}
