/**
 * postsuper's message operations: delete (-d), hold (-h), release (-H),
 * requeue (-r) and forced expiry (-e, -f), on named queue IDs or on ALL
 * messages of the chosen queues.
 *
 * Safe while the mail system runs: every move is one rename within the
 * queue file system, a file that vanished between listing and acting (the
 * queue manager delivered or moved it) is skipped silently, and expiry is an
 * appended record, never a rewrite. Runs as root (dropped to the queue's
 * owner by main.ts) or as the owner of an unprivileged queue. Queue IDs from
 * the command line or standard input are checked before they are used in a
 * path.
 *
 * Per-message lines (`ID: removed`, ...) are logged for operations on named
 * IDs only, as Postfix does; ALL operations report their counts.
 */
import { lstatSync, renameSync, unlinkSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { log } from "../../util/log.ts";
import { fsyncDirectory } from "../../util/durable-file.ts";
import { isQueueId, type MessageQueue } from "../../global/queue/names.ts";
import { listQueue } from "../../global/queue/store.ts";
import { forceExpire } from "../../global/queue/expire.ts";

export type Action = "requeue" | "delete" | "expire" | "expire-release" | "hold" | "release";

export interface Counts {
  requeued: number;
  deleted: number;
  expired: number;
  held: number;
  released: number;
}

export interface OperationContext {
  queueDirectory: string;
  verbose: boolean;
  counts: Counts;
}

/** Queues an action looks in when none are named (Postfix's defaults). */
export const DEFAULT_QUEUES: Record<Action, MessageQueue[]> = {
  delete: ["hold", "incoming", "active", "deferred"],
  hold: ["incoming", "active", "deferred"],
  release: ["hold"],
  requeue: ["hold", "incoming", "active", "deferred"],
  expire: ["hold", "incoming", "active", "deferred"],
  "expire-release": ["hold", "incoming", "active", "deferred"],
};

/** `-d ALL` without queue names also empties maildrop/, as Postfix's does. */
export const DELETE_ALL_QUEUES: MessageQueue[] = ["maildrop", "incoming", "active", "deferred", "hold"];

/** The queues an action may take a message from, out of those named (mail in maildrop/ is not sanitized yet). */
export function sourceQueues(action: Action, queues: readonly MessageQueue[]): MessageQueue[] {
  switch (action) {
    case "delete":
      return [...queues];
    case "hold":
      return queues.filter((q) => q !== "maildrop" && q !== "hold");
    case "release":
      return queues.filter((q) => q === "hold");
    default:
      return queues.filter((q) => q !== "maildrop");
  }
}

function isRegularFile(path: string): boolean {
  try {
    return lstatSync(path).isFile();
  } catch {
    return false;
  }
}

function removeFile(ctx: OperationContext, path: string): boolean {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
  if (ctx.verbose) log.info(`removed file ${path}`);
  return true;
}

/** One rename; false when the file is gone (someone else took it). */
function moveFile(ctx: OperationContext, from: MessageQueue, to: MessageQueue, id: string): boolean {
  const source = join(ctx.queueDirectory, from, id);
  const target = join(ctx.queueDirectory, to, id);
  if (!isRegularFile(source)) return false;
  try {
    renameSync(source, target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
  fsyncDirectory(join(ctx.queueDirectory, to));
  if (ctx.verbose) log.info(`renamed file ${source} as ${target}`);
  return true;
}

function deleteIn(ctx: OperationContext, queue: MessageQueue, id: string): boolean {
  const path = join(ctx.queueDirectory, queue, id);
  if (!isRegularFile(path)) return false;
  // the logs first, and only when the message exists, as Postfix does
  for (const logQueue of ["defer", "bounce", "trace"]) removeFile(ctx, join(ctx.queueDirectory, logQueue, id));
  return removeFile(ctx, path);
}

function requeueFrom(ctx: OperationContext, queue: MessageQueue, id: string): boolean {
  // deferred mail carries its next retry time as mtime: reset it before the move, because
  // pickup may take the file from maildrop/ the moment it arrives there
  const now = new Date();
  try {
    utimesSync(join(ctx.queueDirectory, queue, id), now, now);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    log.warn(`${id}: cannot reset the time stamps: ${(err as Error).message}`);
  }
  return moveFile(ctx, queue, "maildrop", id);
}

/** Forced expiry, and for -f release from hold; false when the message is not in `queue`. */
function expireIn(ctx: OperationContext, queue: MessageQueue, id: string, release: boolean, announce: boolean): boolean {
  let outcome;
  try {
    outcome = forceExpire(join(ctx.queueDirectory, queue, id));
  } catch (err) {
    log.warn(`${id}: cannot mark ${queue}/${id} for expiry: ${(err as Error).message}`);
    return false;
  }
  if (outcome === "gone") return false;
  if (outcome === "expired") {
    ctx.counts.expired++;
    if (announce) log.info(`${id}: expired`);
  }
  if (release && queue === "hold" && moveFile(ctx, "hold", "deferred", id)) {
    ctx.counts.released++;
    if (announce) log.info(`${id}: released from hold`);
  }
  return true;
}

/** Applies `action` to one message in the first of `queues` that holds it. */
function applyOne(ctx: OperationContext, action: Action, queues: readonly MessageQueue[], id: string, announce: boolean): void {
  for (const queue of sourceQueues(action, queues)) {
    switch (action) {
      case "delete":
        if (deleteIn(ctx, queue, id)) {
          ctx.counts.deleted++;
          if (announce) log.info(`${id}: removed`);
          return;
        }
        break;
      case "hold":
        if (moveFile(ctx, queue, "hold", id)) {
          ctx.counts.held++;
          if (announce) log.info(`${id}: placed on hold`);
          return;
        }
        break;
      case "release":
        if (moveFile(ctx, queue, "deferred", id)) {
          ctx.counts.released++;
          if (announce) log.info(`${id}: released from hold`);
          return;
        }
        break;
      case "requeue":
        if (requeueFrom(ctx, queue, id)) {
          ctx.counts.requeued++;
          if (announce) log.info(`${id}: requeued`);
          return;
        }
        break;
      case "expire":
      case "expire-release":
        if (expireIn(ctx, queue, id, action === "expire-release", announce)) return;
        break;
    }
  }
}

/** The action on each named queue ID; invalid IDs are warned about and skipped. */
export function applyToIds(ctx: OperationContext, action: Action, queues: readonly MessageQueue[], ids: readonly string[]): void {
  for (const id of ids) {
    if (!isQueueId(id)) {
      log.warn(`invalid mail queue ID "${id}"`);
      continue;
    }
    applyOne(ctx, action, queues, id, true);
  }
}

/** The action on every message in `queues`. */
export function applyToAll(ctx: OperationContext, action: Action, queues: readonly MessageQueue[]): void {
  for (const queue of sourceQueues(action, queues)) {
    for (const id of listQueue(ctx.queueDirectory, queue)) applyOne(ctx, action, [queue], id, false);
  }
}

function plural(n: number): string {
  return `${n} message${n === 1 ? "" : "s"}`;
}

/** The closing counts in Postfix's order and words, for the actions that were asked for. */
export function reportCounts(counts: Counts, asked: ReadonlySet<Action>): void {
  if (asked.has("requeue")) log.info(`Requeued: ${plural(counts.requeued)}`);
  if (asked.has("delete")) log.info(`Deleted: ${plural(counts.deleted)}`);
  if (asked.has("expire") || asked.has("expire-release")) log.info(`Force-expired: ${plural(counts.expired)}`);
  if (asked.has("hold")) log.info(`Placed on hold: ${plural(counts.held)}`);
  if (asked.has("release") || asked.has("expire-release")) log.info(`Released from hold: ${plural(counts.released)}`);
}
