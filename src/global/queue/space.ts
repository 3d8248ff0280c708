/**
 * Is there room in the queue file system for one more message? Postfix's
 * rule (smtpd_check_queue): refuse when the free blocks do not exceed
 * queue_minfree, or do not exceed 1.5 times message_size_limit. With
 * message_size_limit = 0 (no limit) the message's own size stands in for it
 * when it is known (SMTP SIZE, or the file sendmail is about to write).
 *
 * smtpd asks at MAIL FROM (`452 4.3.1 Insufficient system storage`),
 * sendmail before it writes into maildrop/ (exit 75), pickup before it takes
 * a file out of maildrop/ (the file stays for a later pass). The check is an
 * early, polite refusal; the commit itself still fails cleanly when the disk
 * fills up meanwhile (global/queue/commit.ts).
 *
 * Runs in each of those roles, as whatever user runs them; it reads only
 * statfs(2) of the queue directory.
 */
// fs.promises is loaded on first use only: sendmail asks synchronously and never pays for it
import * as nodeFs from "node:fs";
import type { Config } from "../config/config.ts";

/** Postfix's multiplier of message_size_limit (smtpd_space_multf). */
export const SPACE_MULTIPLIER = 1.5;

export interface SpaceRule {
  /** queue_minfree, bytes. */
  minfree: number;
  /** message_size_limit, bytes; 0: no limit. */
  sizeLimit: number;
}

/** The rule from queue_minfree and message_size_limit. */
export function queueSpaceRule(config: Config): SpaceRule {
  return { minfree: config.int("queue_minfree"), sizeLimit: config.int("message_size_limit") };
}

export interface SpaceShortage {
  /** Free bytes for unprivileged users. */
  free: number;
  /** Postfix's warning text. */
  warning: string;
}

interface BlockCounts {
  bsize: number | bigint;
  bavail: number | bigint;
}

/** The verdict for a statfs result; `size` is the message's size when known (0: unknown). */
export function spaceShortage(fs: BlockCounts, rule: SpaceRule, size = 0): SpaceShortage | undefined {
  const bsize = Number(fs.bsize) || 1;
  const avail = Number(fs.bavail);
  const blocks = (bytes: number) => Math.floor(bytes / bsize);
  const need = rule.sizeLimit > 0 ? rule.sizeLimit : size;
  if (blocks(rule.minfree) < avail && blocks(need) < avail / SPACE_MULTIPLIER) return undefined;
  const free = avail * bsize;
  const warning =
    blocks(rule.minfree) >= avail
      ? `not enough free space in mail queue: ${free} bytes < queue_minfree ${rule.minfree}`
      : `not enough free space in mail queue: ${free} bytes < ${SPACE_MULTIPLIER}*message size limit (${need})`;
  return { free, warning };
}

/** The verdict for the file system of `dir`; throws when statfs(2) fails. */
export async function queueSpaceShortage(dir: string, rule: SpaceRule, size = 0): Promise<SpaceShortage | undefined> {
  return spaceShortage(await nodeFs.promises.statfs(dir), rule, size);
}

export function queueSpaceShortageSync(dir: string, rule: SpaceRule, size = 0): SpaceShortage | undefined {
  return spaceShortage(nodeFs.statfsSync(dir), rule, size);
}
