/**
 * The leaf operations of local delivery, as plain data: the agent decides
 * what to do and with whose rights, and a performer runs the job either in
 * the agent's own process (unprivileged mode, or root's own deliveries) or
 * in a worker that has become the recipient (performer.ts). Jobs and
 * results cross a pipe as JSON; the message travels beside them as bytes.
 */
import type { Envelope } from "../../global/queue/format.ts";

/** Whose rights a job runs with: uid, gid, and the name whose supplementary groups apply. */
export interface Identity {
  uid: number;
  gid: number;
  /** initgroups(3) name; without one the process keeps only `gid`. */
  user?: string;
}

export interface LockPlan {
  dotlock: boolean;
  fcntl: boolean;
  flock: boolean;
  /** A dotlock that cannot be created for another reason than "exists" only warns (file delivery). */
  dotlockMayFail: boolean;
  attempts: number;
  delayMs: number;
  staleSeconds: number;
}

/** Append to an mbox-style file: lock, open safely, write, fsync, truncate back on failure. */
export interface MboxJob {
  type: "mbox";
  path: string;
  /** Envelope lines before the message (From_, Return-Path:, ...). */
  prefix: string;
  quote: boolean;
  blank: boolean;
  lock: LockPlan;
  /** Bytes the file may reach; 0 is no limit (mailbox_size_limit). */
  sizeLimit: number;
  /** chown a newly created file (root delivering into a spool only root can write). */
  chown?: { uid: number; gid: number };
  /** Status used for errors without a better one: 5.2.0 */
  defaultDsn: string;
  /** Mailbox checks: not a regular file, or owned by someone else (strict_mailbox_ownership). */
  mailbox?: { ownerUid?: number };
  /** File delivery refuses executable files. */
  refuseExecutable?: boolean;
  /** A mailbox: the directory the file must lie in (the spool directory or the home); the writer checks. */
  within?: string;
}

export interface MaildirJob {
  type: "maildir";
  /** The maildir, ending in "/". */
  dir: string;
  prefix: string;
  sizeLimit: number;
  hostname: string;
  /** A mailbox: the directory the maildir must lie in (the spool directory or the home); the writer checks. */
  within?: string;
  /** Status for errors without a better one: 5.2.0 for local(8), 4.2.0 for virtual(8) (it defers). */
  defaultDsn?: string;
}

export interface CommandJob {
  type: "command";
  command: string;
  /** The complete environment. */
  env: Record<string, string>;
  cwd?: string;
  /** local_command_shell, split into words; empty runs the command directly where possible. */
  shell: string[];
  timeLimitMs: number;
  prefix: string;
  /** pipe(8): the argument vector, run as it is (no shell); `command` is then only its name in reports. */
  argv?: string[];
  /** pipe(8) flag `>`: ">From " quoting of lines that start with "From ". */
  quote?: boolean;
  /** pipe(8) flag `.`: lines that start with "." get one more. */
  dot?: boolean;
  /** pipe(8) flag `B`: a blank line after the message. */
  blank?: boolean;
  /** pipe(8) eol=: each "\n" written becomes this (default "\n"). */
  eol?: string;
}

/** stat or lstat a path with the job's rights. */
export interface StatJob {
  type: "stat";
  path: string;
  follow: boolean;
}

/**
 * The .forward search and the mailbox delivery in one round trip: lstat
 * each path in turn; the first that exists ends the job with its status.
 * When none does, `otherwise` runs (the mailbox delivery the agent decided on
 * beforehand, with the same rights and the payload) and its result comes
 * back with the answer.
 */
export interface ForwardSearchJob {
  type: "forward-search";
  paths: string[];
  otherwise?: MaildirJob | MboxJob;
}

/** Read a small file (.forward, :include:) with the job's rights. */
export interface ReadJob {
  type: "read";
  path: string;
  maxBytes: number;
}

/**
 * Forwarded mail: run it through cleanup's rewrites (forward-commit.ts) with the configuration
 * `configText`, then commit a new queue file into `dir`; the payload is the message being delivered.
 */
export interface ForwardJob {
  type: "forward";
  dir: string;
  /** The local service's configuration file text and directory (cleanup's settings come from it). */
  configText: string;
  configDirectory: string;
  /** The forwarding envelope as local(8) made it, before cleanup. */
  envelope: Envelope;
  /** The queue ID of the message being delivered (log lines; a Message-Id cleanup would add). */
  queueId: string;
  /** Header lines put before the cleaned message; "%QUEUE_ID%" becomes the new queue ID. */
  headerTemplate: string;
}

/** One leaf operation of local delivery, run by a performer with the rights of an Identity. */
export type WorkerJob = MboxJob | MaildirJob | CommandJob | StatJob | ReadJob | ForwardJob | ForwardSearchJob;

export interface FileStatus {
  isFile: boolean;
  isDirectory: boolean;
  isSymbolicLink: boolean;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
}

/** A failure with the enhanced status it maps to and the text for the reason. */
export interface JobFailure {
  ok: false;
  dsn: string;
  text: string;
  /** errno name (EACCES, ENOENT, ...) when the failure came from the system. */
  code?: string;
}

export type JobResult =
  | ({ ok: true; warnings?: string[] } & (
      | { type: "mbox" | "maildir" }
      | { type: "command"; end: import("../command-status.ts").CommandEnd; output: string }
      | { type: "stat"; status: FileStatus }
      /** `index` of the first path that exists and its status, or -1 and the result of `otherwise` when it ran. */
      | { type: "forward-search"; index: number; status?: FileStatus; otherwise?: JobResult }
      | { type: "read"; text: string; status: FileStatus }
      | { type: "commit"; queueId: string }
    ))
  | (JobFailure & { warnings?: string[] });
