/**
 * A private postern instance for side-by-side runs: a temp config directory
 * with postern.toml, queue and data directories in the run's temp
 * directory, loopback only, and the same local-delivery settings as the
 * private Postfix (a Maildir in the bench user's home). `postern check`
 * creates the queue. The binary comes from $POSTERN_DIST or dist/.
 *
 * Runs as root. postern's commands that have not landed exit 69; the
 * instance reports them as unavailable instead of failing the run
 * (probeSendmail, start). Parameters postern does not know yet (for
 * example the DNS switches before its resolver exists) are left out rather
 * than warned about on every command.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Mta, Unavailable } from "./mta.ts";
import { onCleanup } from "./cleanup.ts";
import { PrivateInstance, sharedParameters, type SharedConfig } from "./instance.ts";
import { baseEnv, mustRun, runCommand } from "./proc.ts";
import { processTree } from "./pss.ts";
import { alive, waitFor } from "./wait.ts";

export const ROOT = resolve(import.meta.dir, "../..");

/** The directory holding the postern executable and its command links. */
export function posternDist(): string {
  return process.env.POSTERN_DIST ? resolve(process.env.POSTERN_DIST) : join(ROOT, "dist");
}

/** Whether the postern build in `dist` knows a parameter (its postconf -d warns about unknown names). */
export function posternKnowsParameter(dist: string, name: string): boolean {
  const r = runCommand([join(dist, "postconf"), "-d", name], { env: baseEnv() });
  return r.code === 0 && !r.stderr.includes("unknown parameter");
}

export interface PosternConfigOptions extends SharedConfig {
  mailOwner: string;
  smtpPort: number;
  maillogFile: string;
}

/** postern.toml for a private instance: the same settings as the private Postfix's main.cf. */
export function posternToml(o: PosternConfigOptions, known: (name: string) => boolean = () => true): string {
  const params = sharedParameters(o, { mail_owner: o.mailOwner }, { maillog_file: o.maillogFile });
  const lines = ["# Private postern instance of the bench/ harness (generated)."];
  for (const [k, v] of Object.entries(params)) if (known(k)) lines.push(`${k} = ${JSON.stringify(v)}`);
  lines.push("", "[services.smtp]", `listen = ${JSON.stringify(`127.0.0.1:${o.smtpPort}`)}`);
  return lines.join("\n") + "\n";
}

export class PosternInstance extends PrivateInstance implements Mta {
  readonly name = "postern" as const;
  readonly dist = posternDist();
  readonly binary: string;
  readonly sendmail: string;
  readonly configDir: string;
  readonly queueDirectory: string;
  readonly smtpPort: number;
  readonly homeMailbox = "Maildir.postern/";
  readonly maillogFile: string;
  #started = false;

  constructor(base: string, opts: { myhostname: string; smtpPort: number; mailOwner: string; extra?: Record<string, string> }) {
    super();
    this.binary = join(this.dist, "postern");
    this.sendmail = join(this.dist, "sendmail");
    if (!existsSync(this.binary) || !existsSync(this.sendmail)) {
      throw new Error(`${this.binary} is missing: build it first (POSTERN_DIST=${this.dist} node_modules/.bin/bun scripts/build.ts)`);
    }
    this.configDir = join(base, "postern", "conf");
    this.queueDirectory = join(base, "postern", "queue");
    this.smtpPort = opts.smtpPort;
    this.maillogFile = join(base, "postern", "maillog");
    mkdirSync(this.configDir, { recursive: true, mode: 0o755 });
    // any user's sendmail appends to the log, as it would send to syslog
    closeSync(openSync(this.maillogFile, "a"));
    chmodSync(this.maillogFile, 0o666);
    const text = posternToml(
      { queueDirectory: this.queueDirectory, dataDirectory: join(base, "postern", "data"), mailOwner: opts.mailOwner, myhostname: opts.myhostname, homeMailbox: this.homeMailbox, smtpPort: opts.smtpPort, maillogFile: this.maillogFile, extra: opts.extra },
      (name) => posternKnowsParameter(this.dist, name),
    );
    writeFileSync(join(this.configDir, "postern.toml"), text);
    mustRun([this.binary, "check", "-c", this.configDir], { env: baseEnv() });
    onCleanup("stop postern", () => this.stop());
  }

  start(): Unavailable | undefined {
    if (this.running()) return undefined;
    const r = runCommand([this.binary, "start", "-c", this.configDir], { env: baseEnv() });
    if (r.code !== 0) return { unavailable: `postern start exited ${r.code}: ${lastLine(r.stderr)}` };
    this.#started = true;
    if (!waitFor(() => this.running(), 10_000)) throw new Error(`postern start returned 0 but no master process of ${this.configDir} runs`);
    return undefined;
  }

  stop(): void {
    if (!this.#started && !this.running()) return;
    this.stopTree(this.masterPid(), "postern", (command) => runCommand([this.binary, command, "-c", this.configDir], { env: baseEnv() }));
    this.#started = false;
  }

  /**
   * The master: from the pid file in queue_directory/pid/ when there is one, else the
   * oldest process of this binary whose command line names this config directory.
   */
  masterPid(): number | undefined {
    const pidFile = join(this.queueDirectory, "pid", "master.pid");
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, "utf8").trim());
      if (pid && alive(pid)) return pid;
    }
    const exe = realpathSync(this.binary);
    const ours: number[] = [];
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readlinkSync(`/proc/${entry}/exe`) !== exe) continue;
        const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
        const environ = readFileSync(`/proc/${entry}/environ`, "utf8");
        if (cmdline.includes(this.configDir) || environ.includes(`MAIL_CONFIG=${this.configDir}\0`)) ours.push(Number(entry));
      } catch {}
    }
    const roots = ours.filter((pid) => alive(pid) && !ours.some((other) => other !== pid && processTree(other).includes(pid)));
    return roots.sort((a, b) => a - b)[0];
  }
}

function lastLine(text: string): string {
  return text.trim().split("\n").at(-1) ?? "";
}
