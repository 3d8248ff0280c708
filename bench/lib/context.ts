/**
 * Everything a scenario runs against, prepared once per run: a lock (one
 * harness at a time), a temp directory on a real disk, the bench users,
 * the private Postfix and postern instances (configured, queues created,
 * daemons down), and facts about the machine for the report.
 *
 * Runs as root. Undo actions for each step are registered as it happens
 * (lib/cleanup.ts), so a failure at any point leaves the machine as it was.
 */
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { join } from "node:path";
import { onCleanup } from "./cleanup.ts";
import { PostfixInstance } from "./postfix.ts";
import { PosternInstance, ROOT } from "./postern.ts";
import { runCommand, baseEnv } from "./proc.ts";
import { createUser, type BenchUser } from "./users.ts";
import { alive } from "./wait.ts";
import type { InstanceParameters } from "./scenario.ts";

export const MYHOSTNAME = "bench.localdomain";
const LOCK = join(tmpdir(), "postern-bench.lock");

export interface MachineFacts {
  cores: number;
  cpu: string;
  kernel: string;
  filesystem: string;
  postfixVersion: string;
  posternVersion: string;
  commit: string;
  /** The postern executable measured and when it was built (it may predate the checkout's HEAD). */
  posternBinary: string;
  posternBuilt: string;
  /** 1-minute load average when the run started and when it ended: other work on the machine skews the figures. */
  load: { start: number; end?: number };
}

export interface RunOptions {
  runs: number;
  warmup: number;
  tmpdir: string;
  keep: boolean;
  /** Submit as root instead of the unprivileged bench user. */
  asRoot: boolean;
  /** Scenario-specific options, by name. */
  extra: Record<string, string | boolean | undefined>;
}

export interface BenchContext {
  options: RunOptions;
  base: string;
  user: BenchUser;
  postfix: PostfixInstance;
  postern: PosternInstance;
  machine: MachineFacts;
  /** Prints a progress line on stderr (stdout carries the results). */
  progress(text: string): void;
}

export function createContext(options: RunOptions, parameters: InstanceParameters = {}): BenchContext {
  if (process.getuid?.() !== 0) throw new Error("The benchmark harness must run as root (it starts Postfix and creates users)");
  takeLock();
  const base = mkdtempSync(join(options.tmpdir, "postern-bench-"));
  // Postfix's and postern's unprivileged processes must reach the queues and the home below
  chmodSync(base, 0o755);
  if (!options.keep) onCleanup(`remove ${base}`, () => rmSync(base, { recursive: true, force: true }));
  const filesystem = runCommand(["findmnt", "-n", "-o", "FSTYPE", "--target", base]).stdout.trim() || "unknown";
  const progress = (text: string) => process.stderr.write(`bench: ${text}\n`);
  if (filesystem === "tmpfs" || filesystem === "ramfs") {
    progress(`warning: ${base} is on ${filesystem}, where fsync costs nothing; use --tmpdir on a disk for real figures`);
  }
  const user = createUser("pnbench", { home: join(base, "home", "pnbench") });
  const mailOwner = createUser("pnbenchq", { system: true });
  const [postfixPort, posternPort] = [freePort(), freePort()];
  const postfix = new PostfixInstance(base, { myhostname: MYHOSTNAME, smtpPort: postfixPort, extra: parameters.postfix });
  const postern = new PosternInstance(base, { myhostname: MYHOSTNAME, smtpPort: posternPort, mailOwner: mailOwner.name, extra: parameters.postern });
  return { options, base, user, postfix, postern, machine: machineFacts(filesystem, postern), progress };
}

/** A TCP port on 127.0.0.1 that is free right now. */
export function freePort(): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

function takeLock(): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(LOCK, "wx", 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      onCleanup(`remove ${LOCK}`, () => rmSync(LOCK, { force: true }));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = Number(readFileSync(LOCK, "utf8").trim());
      if (holder && alive(holder)) throw new Error(`Another benchmark run (pid ${holder}) holds ${LOCK}`);
      process.stderr.write(`bench: removing the stale lock of pid ${holder}; a killed run may have left a postern-bench-* directory, users pnbench/pnbenchq and a line in /etc/postfix/main.cf\n`);
      rmSync(LOCK, { force: true });
    }
  }
  throw new Error(`Cannot take ${LOCK}`);
}

function machineFacts(filesystem: string, postern: PosternInstance): MachineFacts {
  const cpuInfo = cpus();
  const git = runCommand(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]);
  const dirty = runCommand(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"]).stdout.trim() ? "+changes" : "";
  return {
    cores: cpuInfo.length,
    cpu: cpuInfo[0]?.model ?? "unknown",
    kernel: release(),
    filesystem,
    postfixVersion: runCommand(["/usr/sbin/postconf", "-dh", "mail_version"]).stdout.trim(),
    posternVersion: runCommand([postern.binary, "--version"], { env: baseEnv() }).stdout.trim().replace(/^postern /, ""),
    commit: git.code === 0 ? git.stdout.trim() + dirty : "unknown",
    posternBinary: postern.binary,
    posternBuilt: statSync(postern.binary).mtime.toISOString(),
    load: { start: loadavg()[0]! },
  };
}
