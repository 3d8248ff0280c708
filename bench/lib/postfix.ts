/**
 * A private Postfix instance (Debian's package) for side-by-side runs: its
 * own main.cf and master.cf in a temp config directory, queue and data
 * directories in the run's temp directory, loopback only, no DNS, local
 * delivery into a Maildir in the bench user's home, and the SMTP listener
 * moved to 127.0.0.1 on a high port. Every service runs without chroot so
 * nothing has to be copied into the queue directory.
 *
 * Runs as root (postfix start). Sends no packet off the machine: DNS is
 * off, relayhost is empty, inet_interfaces is loopback-only. Limits: the
 * instance logs through syslog(3) like a stock install; when the machine
 * has no syslog daemon those lines are dropped.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Mta, Unavailable } from "./mta.ts";
import { allowAlternateConfigDirectory } from "./etc-postfix.ts";
import { onCleanup } from "./cleanup.ts";
import { PrivateInstance, sharedParameters, type SharedConfig } from "./instance.ts";
import { runCommand } from "./proc.ts";
import { alive, waitFor } from "./wait.ts";

export const POSTFIX_SENDMAIL = "/usr/sbin/sendmail";
export const POSTFIX_COMMAND = "/usr/sbin/postfix";

export interface PostfixConfigOptions extends SharedConfig {
  smtpPort: number;
}

/** The main.cf text for a private instance. */
export function postfixMainCf(o: PostfixConfigOptions): string {
  const params = sharedParameters(o, { mail_owner: "postfix", setgid_group: "postdrop" }, { biff: "no" });
  const lines = ["# Private Postfix instance of postern's bench/ harness (generated)."];
  for (const [k, v] of Object.entries(params)) lines.push(`${k} = ${v}`);
  return lines.join("\n") + "\n";
}

/** The master.cf text: Debian's services without chroot, smtpd on 127.0.0.1:PORT. */
export function postfixMasterCf(o: { smtpPort: number }): string {
  const rows = [
    [`127.0.0.1:${o.smtpPort}`, "inet", "n", "-", "n", "-", "-", "smtpd"],
    ["pickup", "unix", "n", "-", "n", "60", "1", "pickup"],
    ["cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"],
    ["qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"],
    ["tlsmgr", "unix", "-", "-", "n", "1000?", "1", "tlsmgr"],
    ["rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"],
    ["bounce", "unix", "-", "-", "n", "-", "0", "bounce"],
    ["defer", "unix", "-", "-", "n", "-", "0", "bounce"],
    ["trace", "unix", "-", "-", "n", "-", "0", "bounce"],
    ["verify", "unix", "-", "-", "n", "-", "1", "verify"],
    ["flush", "unix", "n", "-", "n", "1000?", "0", "flush"],
    ["proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"],
    ["proxywrite", "unix", "-", "-", "n", "-", "1", "proxymap"],
    ["smtp", "unix", "-", "-", "n", "-", "-", "smtp"],
    ["relay", "unix", "-", "-", "n", "-", "-", "smtp"],
    ["showq", "unix", "n", "-", "n", "-", "-", "showq"],
    ["error", "unix", "-", "-", "n", "-", "-", "error"],
    ["retry", "unix", "-", "-", "n", "-", "-", "error"],
    ["discard", "unix", "-", "-", "n", "-", "-", "discard"],
    ["local", "unix", "-", "n", "n", "-", "-", "local"],
    ["virtual", "unix", "-", "n", "n", "-", "-", "virtual"],
    ["lmtp", "unix", "-", "-", "n", "-", "-", "lmtp"],
    ["anvil", "unix", "-", "-", "n", "-", "1", "anvil"],
    ["scache", "unix", "-", "-", "n", "-", "1", "scache"],
    ["postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"],
  ];
  const header = "# Private Postfix instance of postern's bench/ harness (generated).\n";
  return header + rows.map((r) => r.map((c, i) => (i < 7 ? c.padEnd(i === 0 ? 16 : 6) : c)).join(" ")).join("\n") + "\n";
}

export class PostfixInstance extends PrivateInstance implements Mta {
  readonly name = "postfix" as const;
  readonly sendmail = POSTFIX_SENDMAIL;
  readonly configDir: string;
  readonly queueDirectory: string;
  readonly dataDirectory: string;
  readonly smtpPort: number;
  readonly homeMailbox = "Maildir.postfix/";

  constructor(base: string, opts: { myhostname: string; smtpPort: number; extra?: Record<string, string> }) {
    super();
    this.configDir = join(base, "postfix", "conf");
    this.queueDirectory = join(base, "postfix", "queue");
    this.dataDirectory = join(base, "postfix", "data");
    this.smtpPort = opts.smtpPort;
    mkdirSync(this.configDir, { recursive: true, mode: 0o755 });
    // postfix check creates what is below the queue directory, not the directory itself
    mkdirSync(this.queueDirectory, { recursive: true, mode: 0o755 });
    const cfg = { queueDirectory: this.queueDirectory, dataDirectory: this.dataDirectory, myhostname: opts.myhostname, homeMailbox: this.homeMailbox, smtpPort: opts.smtpPort, extra: opts.extra };
    writeFileSync(join(this.configDir, "main.cf"), postfixMainCf(cfg));
    writeFileSync(join(this.configDir, "master.cf"), postfixMasterCf(cfg));
    allowAlternateConfigDirectory(this.configDir);
    // `postfix check` creates the queue directories with Postfix's owners and modes
    this.#control("check");
    onCleanup("stop Postfix", () => this.stop());
  }

  /**
   * Runs `postfix -c DIR COMMAND`. The postfix command writes its messages to stderr only
   * when stderr is a terminal, so on failure `postfix check` is run again under script(1)
   * to say why.
   */
  #control(command: string): void {
    const r = runCommand([POSTFIX_COMMAND, "-c", this.configDir, command]);
    if (r.code === 0) return;
    const check = runCommand(["script", "-qec", `${POSTFIX_COMMAND} -c ${this.configDir} check`, "/dev/null"]);
    const why = (r.stderr + r.stdout + check.stdout).trim().replace(/\r/g, "");
    throw new Error(`postfix -c ${this.configDir} ${command} failed with status ${r.code}${why ? `:\n${why}` : ""}`);
  }

  start(): Unavailable | undefined {
    if (this.running()) return undefined;
    this.#control("start");
    if (!waitFor(() => this.running(), 10_000)) throw new Error(`Postfix in ${this.configDir} did not start`);
    return undefined;
  }

  stop(): void {
    const master = this.masterPid();
    if (master === undefined) return;
    this.stopTree(master, "Postfix", (command) => runCommand([POSTFIX_COMMAND, "-c", this.configDir, command]));
  }

  masterPid(): number | undefined {
    const file = join(this.queueDirectory, "pid", "master.pid");
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, "utf8").trim());
    if (!pid || !alive(pid)) return undefined;
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "master") return undefined;
    } catch {
      return undefined;
    }
    return pid;
  }
}
