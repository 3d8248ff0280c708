/**
 * A running postern for end-to-end tests: a private configuration directory,
 * queue, mail spool and log under one temporary directory; `postern start
 * -c`, polling helpers that wait for files and log lines instead of sleeping,
 * and a cleanup that always stops the system and kills, by PID, every
 * process it started that is still there (the master from its pid file, its
 * descendants from /proc, and anything whose command line names this
 * configuration directory).
 *
 * As root the daemons drop to mail_owner (the `postern` system user, created
 * here when missing) and local delivery runs as each recipient: TestUsers
 * creates users with names unique to the run and removes them afterwards.
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { getpwnam, type PasswdEntry } from "../../src/util/passwd.ts";
import { masterSingletons, startedOnDemand } from "../../src/global/system/service-table.ts";
import { requestJsonLine } from "../../src/global/ipc/json-lines.ts";
import { bin, cleanEnv, run, tempDir, type RunOptions, type RunResult } from "./run.ts";
import { waitFor } from "./wait.ts";

export { waitFor } from "./wait.ts";

export const isRoot = process.getuid?.() === 0;
export const HOST = "mail.example.test";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a system command; useradd and friends fail while another process holds /etc/passwd's lock, so retry. */
export function sh(argv: string[], attempts = 20): string {
  for (let attempt = 1; ; attempt++) {
    const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
    if (r.exitCode === 0) return r.stdout.toString();
    if (attempt >= attempts) throw new Error(`${argv.join(" ")}: exit ${r.exitCode}: ${r.stderr.toString()}`);
    Bun.sleepSync(250);
  }
}

/** The mail_owner the daemons drop to as root. */
export function ensureMailOwner(): void {
  if (!isRoot || getpwnam("postern")) return;
  sh(["useradd", "--system", "--user-group", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", "postern"]);
}

/** Users made for one test file: names unique to this run, removed by removeAll(). */
export class TestUsers {
  readonly #tag: string;
  readonly #made: string[] = [];

  constructor(prefix: string) {
    this.#tag = `${prefix}${process.pid.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
  }

  /** A user with a home directory under `homes` (created 0755 so others can traverse it). */
  add(short: string, homes: string): PasswdEntry {
    const name = `${this.#tag}${short}`;
    mkdirSync(homes, { recursive: true, mode: 0o755 });
    sh(["useradd", "--user-group", "--create-home", "--home-dir", join(homes, name), "--shell", "/bin/sh", name]);
    this.#made.push(name);
    const pw = getpwnam(name);
    if (!pw) throw new Error(`useradd made no passwd entry for "${name}"`);
    return pw;
  }

  removeAll(): void {
    for (const name of this.#made.splice(0)) {
      Bun.spawnSync(["userdel", "-f", name], { stdout: "ignore", stderr: "ignore" });
      Bun.spawnSync(["groupdel", name], { stdout: "ignore", stderr: "ignore" });
    }
  }
}

export type Params = Record<string, string | number | boolean>;

/** A TOML value as postern.toml spells it. */
export function tomlValue(v: string | number | boolean): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

interface Tracked {
  pid: number;
  start: string;
}

function procStat(pid: number): { state: string; ppid: number; start: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // after "pid (comm) ": state ppid ... starttime is field 22 overall, index 19 here
    return { state: fields[0]!, ppid: Number(fields[1]), start: fields[19]! };
  } catch {
    return undefined;
  }
}

function procCmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return [];
  }
}

function allPids(): number[] {
  return readdirSync("/proc").filter((n) => /^\d+$/.test(n)).map(Number);
}

/**
 * The processes a started system runs at idle, from the service table (smtpd only where a test enables a
 * service); the roles started on demand (showq, local, pickup) run only once work came for them.
 */
export const ROLES_UP: string[] = ["master", ...masterSingletons().filter((r) => !startedOnDemand(r))];

/** The roles the master starts only on demand, from the service table. */
export const ROLES_ON_DEMAND: string[] = masterSingletons().filter((r) => startedOnDemand(r));

/** Whether the process has a SIGTERM handler installed (bit 15 of SigCgt in /proc/PID/status). */
export function catchesSigterm(pid: number): boolean {
  try {
    const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m !== null && (BigInt(`0x${m[1]}`) & (1n << 14n)) !== 0n;
  } catch {
    return false;
  }
}

/** One postern installation under a temporary directory. */
export class MailSystem {
  readonly dir: string;
  readonly etc: string;
  readonly queue: string;
  readonly spool: string;
  readonly maillog: string;
  #params: Params;
  #tracked = new Map<number, Tracked>();

  constructor(params: Params = {}) {
    ensureMailOwner();
    this.dir = tempDir("postern-daemon-");
    // mail_owner and the recipients must reach the queue, spool and homes below
    chmodSync(this.dir, 0o755);
    this.etc = join(this.dir, "etc");
    this.queue = join(this.dir, "queue");
    this.spool = join(this.dir, "spool");
    this.maillog = join(this.dir, "maillog");
    mkdirSync(this.etc, { mode: 0o755 });
    mkdirSync(this.spool, { mode: 0o755 });
    chmodSync(this.spool, 0o1777);
    this.#params = {
      queue_directory: this.queue,
      maillog_file: this.maillog,
      mail_spool_directory: this.spool,
      myhostname: HOST,
      mydomain: "example.test",
      mydestination: `${HOST}, localhost`,
      alias_maps: "",
      alias_database: "",
      minimal_backoff_time: "1s",
      maximal_backoff_time: "2s",
      queue_run_delay: "1s",
      delay_logging_resolution_limit: 2,
      // the SMTP client must never ask the machine's resolver: a test that routes mail names its fake DNS server
      dns_servers: "127.0.0.1:9",
      dns_timeout: "1s",
      dns_attempts: 1,
      ...params,
    };
    this.writeConfig();
  }

  get params(): Params {
    return { ...this.#params };
  }

  /** Rewrites postern.toml with `changes` applied (a value of undefined removes the parameter). */
  writeConfig(changes: Record<string, string | number | boolean | undefined> = {}, extra = ""): void {
    for (const [k, v] of Object.entries(changes)) {
      if (v === undefined) delete this.#params[k];
      else this.#params[k] = v;
    }
    const text = Object.entries(this.#params).map(([k, v]) => `${k} = ${tomlValue(v)}`).join("\n");
    // smtp is on by default (port 25 of every address): a test system listens only where a test says
    const noSmtp = extra.includes("[services.smtp]") ? "" : "\n[services.smtp]\nenable = false\n";
    writeFileSync(join(this.etc, "postern.toml"), `${text}\n${extra}${noSmtp}`);
  }

  /** Writes a file under etc/ (aliases, tables) and returns its path. */
  etcFile(name: string, text: string): string {
    const path = join(this.etc, name);
    writeFileSync(path, text);
    return path;
  }

  async postern(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    const r = await run("postern", [...args.slice(0, 1), "-c", this.etc, ...args.slice(1)], opts);
    this.track();
    return r;
  }

  /**
   * Starts the queue manager, which the master runs on demand, with a flush request on public/qmgr
   * (the test runs as root or as the queue's owner, whom authorized_flush_users lets through), and
   * returns its pid once it runs. It stays for max_idle (100 s by default) once the queue is empty.
   */
  async wakeQueueManager(): Promise<number> {
    await requestJsonLine(join(this.queue, "public", "qmgr"), { command: "flush", kind: "all" });
    return waitFor("a running qmgr", () => {
      const pid = this.roles().get("qmgr");
      return pid !== undefined && catchesSigterm(pid) && pid;
    });
  }

  async start(): Promise<void> {
    const r = await this.postern(["start"]);
    if (r.code !== 0) throw new Error(`postern start: exit ${r.code}: ${r.stderr}`);
    // The master makes the services' sockets before it starts them, so a socket says nothing about
    // its service: every role is up once it catches SIGTERM (its handlers are installed).
    await waitFor("every role to be up", () => {
      const roles = this.roles();
      return ROLES_UP.every((r) => roles.has(r) && catchesSigterm(roles.get(r)!));
    });
    this.track();
  }

  async stop(): Promise<RunResult> {
    this.track();
    return this.postern(["stop"]);
  }

  masterPid(): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.queue, "pid", "master.pid"), "utf8").trim());
      return Number.isInteger(pid) && pid > 1 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** The master and all its descendants now, from /proc. */
  processTree(): number[] {
    const master = this.masterPid();
    if (master === undefined || !procStat(master)) return [];
    const children = new Map<number, number[]>();
    for (const pid of allPids()) {
      const st = procStat(pid);
      if (!st) continue;
      const list = children.get(st.ppid) ?? [];
      list.push(pid);
      children.set(st.ppid, list);
    }
    const out: number[] = [];
    const walk = (pid: number) => {
      out.push(pid);
      for (const c of children.get(pid) ?? []) walk(c);
    };
    walk(master);
    return out;
  }

  /** The running role processes by name ("qmgr", "pickup", "local", "master"). */
  roles(): Map<string, number> {
    const out = new Map<string, number>();
    // the tree is walked parent first: the first process with a role's name is that role. A child
    // caught between fork and exec still shows its parent's command line ("postern master").
    for (const pid of this.processTree()) {
      const argv = procCmdline(pid);
      if (argv[0] === "postern" && argv[1] && !out.has(argv[1])) out.set(argv[1], pid);
    }
    return out;
  }

  /**
   * Every process of this system now: the master's tree, any daemon started with `-c` and this
   * configuration directory (a role whose master died), and their descendants (local workers).
   */
  allProcesses(): number[] {
    const children = new Map<number, number[]>();
    const roots = new Set(this.processTree());
    for (const pid of allPids()) {
      const st = procStat(pid);
      if (!st || st.state === "Z") continue;
      const list = children.get(st.ppid) ?? [];
      list.push(pid);
      children.set(st.ppid, list);
      // daemons run as `postern ROLE -c ETC` (sendmail's -C is not a daemon)
      const argv = procCmdline(pid);
      if (argv[0] === "postern" && argv.some((a, i) => a === "-c" && argv[i + 1] === this.etc)) roots.add(pid);
    }
    const out = new Set<number>();
    const walk = (pid: number) => {
      if (out.has(pid)) return;
      out.add(pid);
      for (const c of children.get(pid) ?? []) walk(c);
    };
    for (const pid of roots) walk(pid);
    return [...out].filter((pid) => procStat(pid)?.state !== "Z");
  }

  /** kill -9 of every process of the system, until none is left; returns how many were killed. */
  async killAll(): Promise<number> {
    let killed = 0;
    for (let round = 0; round < 50; round++) {
      const pids = this.allProcesses();
      if (!pids.length) return killed;
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
          killed++;
        } catch {}
      }
      await sleep(20);
    }
    throw new Error(`processes of ${this.etc} survive SIGKILL: ${this.allProcesses().join(" ")}`);
  }

  /** Remembers every process of this system (pid and start time) so cleanup can kill leftovers. */
  track(): void {
    for (const pid of this.allProcesses()) {
      const st = procStat(pid);
      if (st && !this.#tracked.has(pid)) this.#tracked.set(pid, { pid, start: st.start });
    }
  }

  /** Kills (SIGKILL) every tracked process that is still the same process. */
  killLeftovers(): number[] {
    this.track();
    const killed: number[] = [];
    for (const t of this.#tracked.values()) {
      const st = procStat(t.pid);
      if (!st || st.start !== t.start) continue;
      try {
        process.kill(t.pid, "SIGKILL");
        killed.push(t.pid);
      } catch {}
    }
    this.#tracked.clear();
    return killed;
  }

  /** Stops the system if it runs, kills what is left, removes the directory. Never throws. */
  async cleanup(): Promise<void> {
    try {
      if (this.masterPid() !== undefined) await this.stop();
    } catch {}
    this.killLeftovers();
    // POSTERN_TEST_KEEP=1 keeps the directory (configuration, queue, log) for a look after a failure
    if (process.env.POSTERN_TEST_KEEP) console.log(`kept ${this.dir}`);
    else rmSync(this.dir, { recursive: true, force: true });
  }

  /** sendmail -C etc ARGS with `message` on stdin, as root or (with `user`) as that user. */
  async sendmail(args: string[], message: string, user?: PasswdEntry): Promise<RunResult> {
    if (!user) return run("sendmail", ["-C", this.etc, ...args], { stdin: message });
    const proc = Bun.spawn(["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", bin("sendmail"), "-C", this.etc, ...args], {
      env: cleanEnv({ HOME: user.home, USER: user.name, LOGNAME: user.name }),
      cwd: "/",
      stdin: new Blob([message]),
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { code, stdout, stderr };
  }

  /** Submits and expects sendmail to succeed. */
  async send(recipients: string[], message: string, opts: { sender?: string; user?: PasswdEntry; args?: string[] } = {}): Promise<void> {
    const args = ["-i", ...(opts.sender !== undefined ? ["-f", opts.sender] : []), ...(opts.args ?? []), "--", ...recipients];
    const r = await this.sendmail(args, message, opts.user);
    if (r.code !== 0) throw new Error(`sendmail ${args.join(" ")}: exit ${r.code}: ${r.stderr}`);
  }

  log(): string {
    try {
      return readFileSync(this.maillog, "utf8");
    } catch {
      return "";
    }
  }

  /** Waits for a log line matching `re`, counting only lines after `from` characters. */
  async waitForLog(re: RegExp, timeoutMs = 30_000, from = 0): Promise<RegExpExecArray> {
    return waitFor(`a log line matching ${re}`, () => re.exec(this.log().slice(from)) ?? undefined, timeoutMs);
  }

  /** Queue IDs in one queue directory. */
  queueIds(queue: string): string[] {
    try {
      return readdirSync(join(this.queue, queue)).filter((n) => /^[0-9A-F]{6,21}$/.test(n));
    } catch {
      return [];
    }
  }

  /** Waits until incoming/, active/ and deferred/ (and maildrop/) are all empty. */
  async waitForEmptyQueue(timeoutMs = 30_000): Promise<void> {
    await waitFor("an empty queue", () => ["maildrop", "incoming", "active", "deferred"].every((q) => this.queueIds(q).length === 0), timeoutMs);
  }

  /** The queue ID cleanup gave the message with this Message-Id (message() makes it from the subject). */
  async queueIdOf(subject: string, timeoutMs = 30_000): Promise<string> {
    const re = new RegExp(`: ([0-9A-F]{6,21}): message-id=<${subject.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}@test>`);
    return (await this.waitForLog(re, timeoutMs))[1]!;
  }
}

/** A message with a unique subject (one word), a Message-Id made from it, and optional extra headers. */
export function message(subject: string, body = "Hello from the test.\n", headers = ""): string {
  return `${headers}Subject: ${subject}\nMessage-Id: <${subject}@test>\n\n${body}`;
}

/** The messages of an mbox file, split at `From ` lines. */
export function mboxMessages(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, "latin1");
  } catch {
    return [];
  }
  return text
    .split(/^(?=From \S+ {1,2}\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$)/m)
    .filter((m) => m.startsWith("From "));
}

/** The messages in a Maildir's new/ (and cur/). */
export function maildirMessages(dir: string): string[] {
  const out: string[] = [];
  for (const sub of ["new", "cur"]) {
    let names: string[];
    try {
      names = readdirSync(join(dir, sub)).sort();
    } catch {
      continue;
    }
    for (const n of names) out.push(readFileSync(join(dir, sub, n), "latin1"));
  }
  return out;
}
