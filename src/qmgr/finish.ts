/**
 * Finishing a delivery round (Postfix's qmgr_active_done and what follows
 * it): when every delivery of the round is recorded, a message past its
 * lifetime (or marked by postsuper -e) expires, its still-deferred
 * recipients failing with their latest reason; the failure and success
 * notices, the -bv/-v report and, once, the delay notice go to the sender;
 * then the message is removed when every recipient is done, or moved to
 * deferred/ with its next retry time (the backoff) as its mtime. A message
 * postsuper moved away during the round is left where it went.
 *
 * Runs in the queue manager, as mail_owner. It reads and removes the
 * message's own logs (defer/, bounce/, trace/), written by record.ts, only
 * those that may exist (ActiveMessage.logs); the notices are
 * built by src/bounce and committed into incoming/ (notify.ts).
 */
import { existsSync, renameSync, unlinkSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { log } from "../util/log.ts";
import { workDone } from "../util/young-garbage.ts";
import { backoffSeconds } from "../global/delivery/delays.ts";
import { appendDeliveryLog, readDeliveryLog } from "../global/queue/delivery-log.ts";
import { encodeDelayWarnedRecord, encodeRecordSentRecord, type QueueFile } from "../global/queue/format.ts";
import { MESSAGE_QUEUES } from "../global/queue/names.ts";
import { appendStateRecord, findQueueFile, queueFilePath, readQueueFile } from "../global/queue/store.ts";
import { type ActiveMessage, isRecording, isVerify, mayHaveLog, noteLog, type QmgrContext } from "./message.ts";
import { type OriginalMessage, returnToSender, sendNotices } from "./notify.ts";
import { writeDoneRecord } from "./record.ts";

/** What a notice returns when the queue file is gone (Postfix's bounce daemon writes the same place holder). */
const ORIGINAL_UNAVAILABLE = Buffer.from("\t--- Undelivered message unavailable ---\n");

/**
 * `msg` as its notices return it: the envelope as this round knows it, with the content read again from the
 * queue file, in active/ or wherever postsuper moved it during the round. When the file is gone (removed, or
 * requeued and picked up under a new ID meanwhile) the notice still goes out, with a place holder for the
 * message, as Postfix's bounce daemon does when it cannot open the original.
 */
function originalOf(ctx: QmgrContext, msg: ActiveMessage): OriginalMessage {
  return (): QueueFile => {
    const { size: _size, ...envelope } = msg.file;
    // twice: a file moved between the search and the read is searched for again
    for (let attempt = 0; attempt < 2; attempt++) {
      const queue = findQueueFile(ctx.queueDir, msg.id, MESSAGE_QUEUES);
      if (queue === undefined) break;
      try {
        return { ...envelope, content: readQueueFile(queueFilePath(ctx.queueDir, queue, msg.id)).content };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    }
    return { ...envelope, content: ORIGINAL_UNAVAILABLE };
  };
}

/**
 * All deliveries of this round are recorded: expire, notify, then remove or
 * defer the message. True when active/ has room again for incoming mail
 * (false when a notice could not be made and the message was deferred to
 * try again).
 */
export function finishRound(ctx: QmgrContext, msg: ActiveMessage): boolean {
  workDone();
  const path = queueFilePath(ctx.queueDir, "active", msg.id);
  const now = ctx.now();
  // The common end: every recipient done, no log to read or remove, no report. Removing the file is the
  // test that it is still in active/ (the general path below asks first, then removes).
  if (msg.logs?.size === 0 && !isVerify(msg.file) && !isRecording(msg.file) && msg.file.recipients.every((r) => r.done)) {
    try {
      unlinkSync(path);
      log.info(`${msg.id}: removed`);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") log.error(`${msg.id}: cannot remove the queue file: ${(err as Error).message}`);
      else return movedAway(ctx, msg, now);
    }
  }
  if (!existsSync(path)) return movedAway(ctx, msg, now);
  const open = msg.file.recipients.filter((r) => !r.done);
  const lifetime = (msg.file.sender === "" ? ctx.config.time("bounce_queue_lifetime") : ctx.config.time("maximal_queue_lifetime")) * 1000;
  const forcedExpire = msg.file.attributes.expire === "yes";
  if (open.length && (forcedExpire || now - msg.file.arrivalTime >= lifetime)) expire(ctx, msg, path, now, forcedExpire);
  try {
    if (mayHaveLog(msg, "bounce")) returnToSender(ctx.config, msg.id, originalOf(ctx, msg), now);
  } catch (err) {
    log.error(`${msg.id}: cannot create the delivery status notification: ${(err as Error).message}; will retry`);
    // keep the bounce log; the message stays queued so the notice is not lost
    deferMessage(ctx, msg, path, now);
    return false;
  }
  if (!sendTraceReport(ctx, msg, path, now)) {
    deferMessage(ctx, msg, path, now);
    return false;
  }
  if (!msg.file.recipients.every((r) => r.done)) warnDelay(ctx, msg, path, now);
  if (msg.file.recipients.every((r) => r.done)) {
    // the logs first, the file last: a crash between leaves the message, never its logs alone
    for (const q of ["defer", "bounce", "trace"] as const) {
      if (!mayHaveLog(msg, q)) continue;
      try {
        unlinkSync(join(ctx.queueDir, q, msg.id));
      } catch {}
    }
    try {
      unlinkSync(path);
    } catch {}
    log.info(`${msg.id}: removed`);
  } else {
    deferMessage(ctx, msg, path, now);
  }
  return true;
}

/**
 * postsuper moved (hold, requeue) or removed the message during the round; the outcomes are in the file
 * wherever it went. Reports for what bounced go out now, not again when it is released.
 */
function movedAway(ctx: QmgrContext, msg: ActiveMessage, now: number): boolean {
  try {
    returnToSender(ctx.config, msg.id, originalOf(ctx, msg), now);
  } catch (err) {
    log.error(`${msg.id}: cannot create the delivery status notification: ${(err as Error).message}`);
  }
  return true;
}

/**
 * sendmail -bv and -v: the "Mail Delivery Status Report" from trace/ID
 * (Postfix's trace_flush), after the bounce notices of the round. A verify
 * report waits until every recipient has its answer; a record report goes
 * after the first attempt, and a V record keeps later attempts from
 * sending another. False when it could not be sent: the message stays
 * queued with its trace log, and the next attempt tries again.
 */
function sendTraceReport(ctx: QmgrContext, msg: ActiveMessage, path: string, now: number): boolean {
  const verify = isVerify(msg.file);
  if (!verify && !isRecording(msg.file)) return true;
  const finished = msg.file.recipients.every((r) => r.done);
  if (verify && !finished) return true;
  try {
    const entries = readDeliveryLog(ctx.queueDir, "trace", msg.id);
    if (entries.length) sendNotices(ctx.config, msg.id, originalOf(ctx, msg), verify ? "verify" : "record", entries, now);
    if (!finished) appendStateRecord(path, encodeRecordSentRecord(now));
    msg.file.attributes.record_sent = "yes";
  } catch (err) {
    log.error(`${msg.id}: cannot send the delivery status report: ${(err as Error).message}; will retry`);
    return false;
  }
  try {
    unlinkSync(join(ctx.queueDir, "trace", msg.id));
    msg.logs?.delete("trace");
  } catch {}
  return true;
}

/** Once per message, after delay_warning_time: the delay notice from the current defer/ID reasons. */
function warnDelay(ctx: QmgrContext, msg: ActiveMessage, path: string, now: number): void {
  const after = ctx.config.time("delay_warning_time") * 1000;
  if (after <= 0 || msg.file.attributes.delay_warned === "yes" || now - msg.file.arrivalTime < after) return;
  const entries = readDeliveryLog(ctx.queueDir, "defer", msg.id);
  if (!entries.length) return;
  try {
    sendNotices(ctx.config, msg.id, originalOf(ctx, msg), "delay", entries, now);
    appendStateRecord(path, encodeDelayWarnedRecord(now));
    msg.file.attributes.delay_warned = "yes";
  } catch (err) {
    log.error(`${msg.id}: cannot send the delay notice: ${(err as Error).message}; will retry`);
  }
}

/** Moves the message to deferred/ with its next retry time as mtime: now plus its age, between minimal_backoff_time and maximal_backoff_time. */
function deferMessage(ctx: QmgrContext, msg: ActiveMessage, path: string, now: number): void {
  const age = (now - msg.file.arrivalTime) / 1000;
  const wait = backoffSeconds(age, ctx.config.time("minimal_backoff_time"), ctx.config.time("maximal_backoff_time"));
  const next = new Date(now + wait * 1000);
  try {
    utimesSync(path, next, next);
    renameSync(path, queueFilePath(ctx.queueDir, "deferred", msg.id));
  } catch (err) {
    if (existsSync(path)) log.error(`${msg.id}: cannot move to deferred/: ${(err as Error).message}`);
  }
}

/** Expiry: the still-deferred recipients fail with their latest reason, each with its bounce entry and D record. */
function expire(ctx: QmgrContext, msg: ActiveMessage, path: string, now: number, forcedExpire: boolean): void {
  const latest = new Map(readDeliveryLog(ctx.queueDir, "defer", msg.id).map((e) => [e.recipient, e]));
  for (const [index, r] of msg.file.recipients.entries()) {
    if (r.done) continue;
    const last = latest.get(r.address);
    try {
      noteLog(msg, "bounce");
      appendDeliveryLog(ctx.queueDir, "bounce", msg.id, [
        { recipient: r.address, ...(r.orcpt ? { orcpt: r.orcpt } : {}), status: last?.status ?? "4.7.0", action: "failed", time: now, reason: last?.reason ?? (forcedExpire ? "message is administratively expired" : "message expired") },
      ]);
      writeDoneRecord({ path }, index, now);
      r.done = true;
    } catch (err) {
      log.error(`${msg.id}: cannot record the expiry of <${r.address}>: ${(err as Error).message}`);
    }
  }
  log.info(`${msg.id}: from=<${msg.file.sender}>, status=expired, returned to sender`);
}
