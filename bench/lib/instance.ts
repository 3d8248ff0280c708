/**
 * What the private Postfix and postern instances (postfix.ts, postern.ts)
 * share: the main.cf/postern.toml settings both get, and the parts of the
 * Mta interface that only depend on the queue and config directories
 * (maildrop, the bench user's Maildir, the submit environment, stopping the
 * daemon's process tree).
 *
 * Runs as root in the harness; touches only the instance's own temp
 * directories and processes of the tree it started.
 */
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { MtaName } from "./mta.ts";
import { baseEnv } from "./proc.ts";
import { processTree } from "./pss.ts";
import { alive, waitFor } from "./wait.ts";

export interface SharedConfig {
  queueDirectory: string;
  dataDirectory: string;
  myhostname: string;
  /** Relative to the recipient's home; ends in "/" for a Maildir. */
  homeMailbox: string;
  /** Extra parameters a scenario needs (relayhost, ...), last so they win. */
  extra?: Record<string, string>;
}

/**
 * The settings of a private instance, in the order both files list them: loopback only, no DNS,
 * no aliases, local delivery to home_mailbox; `owner` (mail_owner, ...) after the directories,
 * `local` (each system's own) after the alias settings.
 */
export function sharedParameters(o: SharedConfig, owner: Record<string, string>, local: Record<string, string>): Record<string, string> {
  return {
    compatibility_level: "3.7",
    queue_directory: o.queueDirectory,
    data_directory: o.dataDirectory,
    ...owner,
    myhostname: o.myhostname,
    mydomain: o.myhostname.split(".").slice(1).join(".") || "localdomain",
    myorigin: "$myhostname",
    mydestination: "$myhostname, localhost.$mydomain, localhost",
    inet_interfaces: "loopback-only",
    inet_protocols: "ipv4",
    mynetworks_style: "host",
    relayhost: "",
    home_mailbox: o.homeMailbox,
    alias_maps: "",
    alias_database: "",
    ...local,
    disable_dns_lookups: "yes",
    smtp_host_lookup: "native",
    lmtp_host_lookup: "native",
    ...o.extra,
  };
}

/** The Mta methods that follow from the directories alone. */
export abstract class PrivateInstance {
  abstract readonly name: MtaName;
  abstract readonly configDir: string;
  abstract readonly queueDirectory: string;
  abstract readonly homeMailbox: string;
  abstract masterPid(): number | undefined;

  submitEnv(user: { name: string; home: string }): Record<string, string> {
    return baseEnv({ HOME: user.home, LOGNAME: user.name, USER: user.name, MAIL_CONFIG: this.configDir });
  }

  running(): boolean {
    return this.masterPid() !== undefined;
  }

  maildropCount(): number {
    return readdirSync(join(this.queueDirectory, "maildrop")).length;
  }

  clearMaildrop(): void {
    const dir = join(this.queueDirectory, "maildrop");
    for (const f of readdirSync(dir)) rmSync(join(dir, f), { force: true });
  }

  maildir(home: string): string {
    return join(home, this.homeMailbox);
  }

  /**
   * Stops the tree under `master`: `control("stop")`, then `control("abort")` when it has not
   * gone in 15 s, then SIGKILL for what is left, said on stderr as "<label> processes".
   */
  protected stopTree(master: number | undefined, label: string, control: (command: "stop" | "abort") => void): void {
    const tree = master === undefined ? [] : processTree(master);
    control("stop");
    if (!waitFor(() => tree.every((pid) => !alive(pid)), 15_000)) {
      control("abort");
      waitFor(() => tree.every((pid) => !alive(pid)), 5_000);
    }
    const left = tree.filter(alive);
    for (const pid of left) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    if (left.length) process.stderr.write(`bench: killed ${label} processes that did not stop: ${left.join(" ")}\n`);
  }
}
