/**
 * What the queue manager's parts share about a message in active/: the
 * message as activated (its decoded queue file, when it was activated, how
 * many deliveries of this round are still running), the context they all
 * read (configuration, queue directory, clock), and the trace flags of
 * sendmail -bv (verify) and -v (record), after Postfix's DEL_REQ_FLAG_USR_VRFY
 * and DEL_REQ_FLAG_RECORD.
 *
 * Runs in the queue manager, as mail_owner. The attributes it reads come
 * from a queue file that has decoded.
 */
import type { Config } from "../global/config/config.ts";
import type { ExpandedResult, RecipientResult } from "../global/delivery/types.ts";
import type { Envelope, QueueEnvelope } from "../global/queue/format.ts";
import type { LogQueue } from "../global/queue/delivery-log.ts";

/** One message in active/ for one delivery round. */
export interface ActiveMessage {
  id: string;
  /** The decoded queue file without its content (read again when a notice needs it: finish.ts). */
  file: QueueEnvelope;
  /**
   * The content, when activation read the file whole (a small file: readQueueEnvelopeAndSmallContent) and
   * the queue manager's budget for held content allowed it (queue-manager.ts): the in-process agents send
   * it instead of reading the file again. Released when the round finishes.
   */
  content?: Uint8Array;
  /** When it entered active/ (ms, the queue manager's clock), for delays= in the log. */
  activatedAt: number;
  /** Deliveries of this round not yet recorded; the round finishes when it reaches 0. */
  jobsLeft: number;
  /**
   * The logs (defer/, bounce/, trace/) that may exist for it: those written
   * in this round, plus what it may have brought along. Undefined when that
   * is not known (a message from deferred/ or left in active/): then every
   * log is tried, as before. Finishing removes and reads only these.
   */
  logs?: Set<LogQueue>;
}

/** Notes that `queue`'s log of `msg` may now exist (before the write: a failed append may leave a file). */
export function noteLog(msg: ActiveMessage, queue: LogQueue): void {
  msg.logs?.add(queue);
}

/** Whether `queue`'s log of `msg` may exist. */
export function mayHaveLog(msg: ActiveMessage, queue: LogQueue): boolean {
  return msg.logs === undefined || msg.logs.has(queue);
}

/** What every part reads; `config` is the current one (a reload replaces it). */
export interface QmgrContext {
  readonly config: Config;
  readonly queueDir: string;
  /** The clock, ms since the epoch, for every time recorded or decided on. */
  now(): number;
}

/** sendmail -bv: nothing is delivered, each recipient's answer goes into the report. */
export function isVerify(file: Envelope): boolean {
  return file.attributes.verify === "yes";
}

/** sendmail -v: this attempt's outcomes also go into the report, which is sent once, after the first attempt. */
export function isRecording(file: Envelope): boolean {
  return file.attributes.record === "yes" && file.attributes.record_sent !== "yes" && !isVerify(file);
}

/** Postfix's words for an answer in verify mode, in the log and the report's Action: field. */
export function verifyStatus(status: RecipientResult["status"]): string {
  return status === "sent" ? "deliverable" : "undeliverable";
}

/** The DSN action a -v report gives a real outcome. */
export function recordAction(f: Omit<ExpandedResult, "address">, result: RecipientResult): string {
  if (f.status === "deferred") return "delayed";
  if (f.status === "bounced") return f.action ?? "failed";
  return f.action ?? result.action ?? "delivered";
}
