/**
 * Recording outcomes (what Postfix's delivery agents do through sent(),
 * defer_append() and bounce_append(), and qmgr_deliver.c on their status):
 * each recipient's result goes durably to the logs of the message (defer/,
 * bounce/, trace/) and, when it is final, into the queue file as a D record,
 * before the queue manager takes the next step; then it is logged as the
 * delivery agent's line. writeDoneRecord is the one writer of D records.
 *
 * Runs in the queue manager, as mail_owner. The results come from the
 * delivery agents (in-process, or the local service over private/local);
 * the index of a result names a recipient of the request it answers.
 */
import { fsyncSync } from "node:fs";
import { appendFully } from "../util/durable-file.ts";
import { log } from "../util/log.ts";
import { delayFields } from "../global/delivery/delays.ts";
import type { ExpandedResult, RecipientResult } from "../global/delivery/types.ts";
import { appendDeliveryLog, type DeliveryLogEntry } from "../global/queue/delivery-log.ts";
import { encodeDoneRecord } from "../global/queue/format.ts";
import { appendStateRecord, queueFilePath } from "../global/queue/store.ts";
import { type ActiveMessage, isRecording, isVerify, noteLog, type QmgrContext, recordAction, verifyStatus } from "./message.ts";

/**
 * Appends the D record of recipient `index`: through the descriptor a
 * delivery holds open (fsynced now, or with the delivery's other records
 * when `syncLater`), or by path, fsynced (expiry).
 */
export function writeDoneRecord(where: { fd: number; syncLater: boolean } | { path: string }, index: number, now: number): void {
  const record = encodeDoneRecord(index, now);
  if ("path" in where) {
    appendStateRecord(where.path, record);
    return;
  }
  appendFully(where.fd, record);
  if (!where.syncLater) fsyncSync(where.fd);
}

/**
 * Records one recipient's outcome durably, then logs it as the delivery
 * agent's lines: one per final delivery when the agent expanded the
 * recipient (aliases, .forward), as Postfix's local(8) logs them.
 */
export function recordOutcome(ctx: QmgrContext, msg: ActiveMessage, result: RecipientResult, transport: string, started: number, queueFd?: number, syncLater = false): void {
  const rcpt = msg.file.recipients[result.index]!;
  const path = queueFilePath(ctx.queueDir, "active", msg.id);
  const finals: ExpandedResult[] = result.expanded?.length
    ? result.expanded
    : [{ address: rcpt.address, status: result.status, dsn: result.dsn, reason: result.reason, action: result.action }];
  const now = ctx.now();
  const entry = (address: string, status: string, reason: string, action: string) => ({
    recipient: address, ...(rcpt.orcpt ? { orcpt: rcpt.orcpt } : {}), status, action, time: now, reason,
  });
  const original = rcpt.original ?? rcpt.address;
  // trace/ID: what the -bv and -v reports list, each final address with the relay and the address as received
  const traceEntry = (f: (typeof finals)[number], action: string): DeliveryLogEntry => ({ ...entry(f.address, f.dsn, f.reason, action), original, relay: f.relay ?? result.relay });
  const verify = isVerify(msg.file);
  try {
    if (verify) {
      // an answer, whatever it is, is final: no bounce, no retry, nothing but the report
      noteLog(msg, "trace");
      appendDeliveryLog(ctx.queueDir, "trace", msg.id, finals.map((f) => traceEntry(f, verifyStatus(f.status))));
      writeDoneRecord(queueFd === undefined ? { path } : { fd: queueFd, syncLater }, result.index, now);
      rcpt.done = true;
    } else if (result.status === "deferred") {
      if (isRecording(msg.file)) {
        noteLog(msg, "trace");
        appendDeliveryLog(ctx.queueDir, "trace", msg.id, finals.map((f) => traceEntry(f, recordAction(f, result))));
      }
      noteLog(msg, "defer");
      appendDeliveryLog(ctx.queueDir, "defer", msg.id, [entry(rcpt.address, result.dsn, result.reason, "delayed")]);
    } else {
      // a next hop that took NOTIFY=SUCCESS sends the success notice itself; Postfix then sends none
      const wantsSuccess = (f: (typeof finals)[number]) => f.status === "sent" && !!rcpt.notify?.includes("SUCCESS") && !result.dsnPassedOn;
      const recording = isRecording(msg.file);
      if (recording) {
        // with sendmail -v, Postfix puts a success notice into the -v report: the entry a second time, no separate notice
        const traced = finals.flatMap((f) => {
          const e = traceEntry(f, recordAction(f, result));
          return wantsSuccess(f) ? [e, e] : [e];
        });
        noteLog(msg, "trace");
        appendDeliveryLog(ctx.queueDir, "trace", msg.id, traced);
      }
      // original= and relay= let the report say "(expanded from <alias>)" and "delivery via RELAY:", as Postfix's do
      const reports = finals
        .filter((f) => f.status === "bounced" || (wantsSuccess(f) && !recording))
        .map((f) => ({ ...entry(f.address, f.dsn, f.reason, f.status === "bounced" ? f.action ?? "failed" : f.action ?? result.action ?? "delivered"), original, relay: f.relay ?? result.relay }));
      if (reports.length) {
        noteLog(msg, "bounce");
        appendDeliveryLog(ctx.queueDir, "bounce", msg.id, reports);
      }
      writeDoneRecord(queueFd === undefined ? { path } : { fd: queueFd, syncLater }, result.index, now);
      rcpt.done = true;
    }
  } catch (err) {
    log.error(`${msg.id}: cannot record the outcome for <${rcpt.address}>: ${(err as Error).message}`);
  }
  const times = delayFields({ arrival: msg.file.arrivalTime, activated: msg.activatedAt, started, finished: now }, ctx.config.int("delay_logging_resolution_limit"));
  for (const f of finals) {
    const orig = original !== f.address ? `, orig_to=<${original}>` : "";
    const status = verify ? verifyStatus(f.status) : f.status;
    // a passed-on address is logged by the transport that delivered it, with its relay (Postfix's lmtp line)
    const tag = `${ctx.config.str("syslog_name")}/${f.transport ?? transport}`;
    log.write("info", `${msg.id}: to=<${f.address}>${orig}, relay=${f.relay ?? result.relay}, ${times}, dsn=${f.dsn}, status=${status} (${f.reason})`, tag);
  }
}
