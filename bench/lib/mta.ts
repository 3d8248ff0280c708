/**
 * What a scenario needs from either mail system, so the same scenario code
 * drives Postfix and postern side by side: its sendmail, the environment
 * that points sendmail at the private instance, daemon start/stop, its
 * queue and the bench user's mailbox, and the root of its process tree for
 * memory figures.
 */

export type MtaName = "postfix" | "postern";

/** Why one side cannot run (a step: "sendmail", "daemon"), said in the report instead of failing. */
export interface Unavailable {
  unavailable: string;
}

export interface Mta {
  readonly name: MtaName;
  readonly configDir: string;
  readonly queueDirectory: string;
  /** Absolute path of this system's sendmail. */
  readonly sendmail: string;
  /** TCP port of the SMTP listener on 127.0.0.1 (for SMTP scenarios). */
  readonly smtpPort: number;
  /** The environment a submitting user's sendmail runs with. */
  submitEnv(user: { name: string; home: string }): Record<string, string>;
  /** Starts the daemon; resolves to Unavailable when this system has no daemon yet. */
  start(): Unavailable | undefined;
  /** Stops the daemon and waits until every process of it has exited; a no-op when down. */
  stop(): void;
  running(): boolean;
  /** The master process, when running. */
  masterPid(): number | undefined;
  /** Number of files waiting in maildrop/. */
  maildropCount(): number;
  /** Removes every file in maildrop/ (between phases of a scenario). */
  clearMaildrop(): void;
  /** The Maildir of `home`'s owner for this system (systems deliver into different Maildirs). */
  maildir(home: string): string;
}
