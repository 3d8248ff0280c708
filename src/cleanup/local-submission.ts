/**
 * Cleanup for local submissions: turns a maildrop file (what sendmail
 * wrote, or a message postsuper -r requeued) into the queue file for
 * incoming/, as Postfix's cleanup does for mail that pickup hands it.
 *
 * - A Received: header first, in Postfix's shape:
 *   `Received: by HOST (postern, from userid UID)\n\tid QUEUEID; DATE`
 *   with the date the file was written.
 * - Headers cleaned (headers.ts), envelope cleaned (envelope.ts).
 * - The body follows the headers unchanged; when the headers ended at a
 *   line that is not a header, an empty line goes before it.
 * - A DKIM signature on top when the submission asks for one
 *   (dkim-signing.ts), after every rewrite.
 * - Too many Received: headers (hopcount_limit), a message larger than
 *   message_size_limit, or one a non_smtpd_milters milter refused with a
 *   5xx reply is not delivered: the message is returned to the
 *   sender, as Postfix's cleanup bounces it. Every recipient is recorded as
 *   failed (a bounce/ID line, a D record); the queue manager then sends
 *   the notification from those records. Only the headers are kept.
 *
 * Runs in pickup as mail_owner. The maildrop file is untrusted, except what
 * the file's owner (from fstat) says about who submitted it.
 */
import { splitMessage } from "../global/message/header-split.ts";
import type { QueueFile, Recipient } from "../global/queue/format.ts";
import { mailDate } from "../global/message/mail-date.ts";
import { cleanAttributes, cleanRecipients, cleanSender, type Submitter } from "./envelope.ts";
import { cleanHeaders, toLatin1 } from "./headers.ts";
import type { CleanupSettings } from "./settings.ts";
import { replaceStrayCr } from "./stray-cr-lf.ts";
import type { PreparedRewrites } from "./address-rewrites.ts";
import type { CleanupChecksOutcome } from "./header-body-checks.ts";
import type { DkimRequest } from "./dkim-signing.ts";

export interface LocalSubmission {
  file: QueueFile;
  submitter: Submitter;
  /** When the maildrop file was written (its mtime): the Received: date. */
  submittedAt: Date;
  /** The table-driven rewrites, done beforehand (address-rewrites.ts); without them the envelope is only cleaned here. */
  rewrites?: PreparedRewrites;
  /** What header_checks and body_checks decided (header-body-checks.ts); the content is already theirs. */
  checks?: CleanupChecksOutcome;
  /** The lines that header_checks made of the Received: header (latin1), when they ran. */
  receivedLines?: (queueId: string) => string[];
  /** A refusal decided before cleanup (a non_smtpd_milters 5xx): the message goes back to the sender. */
  rejection?: Rejection;
  /** DKIM signing with the signers looked up beforehand (dkim-signing.ts); absent: not signed. */
  dkim?: DkimRequest;
}

export interface Rejection {
  /** Enhanced status code and text, as Postfix's cleanup reports them. */
  status: string;
  reason: string;
  /** The warning logged for the message (none for a REJECT action, whose log line is the checks'). */
  warning?: string;
}

export interface CleanupResult {
  /** The incoming queue file; with a rejection, every recipient is marked done. */
  file: QueueFile;
  /** Info log texts without the queue ID prefix ("message-id=<...>"). */
  logs: string[];
  warnings: string[];
  rejection?: Rejection;
}

/** Nothing left to deliver: every recipient was already finished (a requeued message). */
export class NoRecipientsError extends Error {
  constructor() {
    super("no recipients specified");
  }
}

export function receivedHeader(settings: CleanupSettings, uid: number, queueId: string, when: Date): string {
  return toLatin1(`Received: by ${settings.myhostname} (${settings.mailName}, from userid ${uid})\n\tid ${queueId}; ${mailDate(when)}`);
}

export function cleanupLocalSubmission(sub: LocalSubmission, settings: CleanupSettings, queueId: string, now = new Date()): CleanupResult {
  const { file } = sub;
  const recipients: Recipient[] = sub.rewrites?.recipients ?? cleanRecipients(file.recipients, settings);
  if (recipients.length === 0) throw new NoRecipientsError();
  const sender = sub.rewrites?.sender ?? cleanSender(file.sender, settings);
  const attributes = cleanAttributes(file, sub.submitter, settings);
  if (sub.checks?.filter !== undefined) attributes.filter = sub.checks.filter;
  if (sub.checks?.redirect !== undefined) attributes.redirect = sub.checks.redirect;

  const received = Buffer.from(file.content.buffer, file.content.byteOffset, file.content.byteLength);
  const content = settings.replaceStrayCrLf ? replaceStrayCr(received) : received;
  const split = splitMessage(content, { lineLengthLimit: settings.lineLengthLimit, headerSizeLimit: settings.headerSizeLimit });
  const headers = cleanHeaders(
    {
      headers: split.headers,
      queueId,
      sender,
      ...(attributes.full_name !== undefined ? { fullName: attributes.full_name } : {}),
      rewriteContext: attributes.rewrite_context === "remote" ? "remote" : "local",
      arrival: new Date(file.arrivalTime),
      now,
      ...(sub.rewrites ? { addressMap: sub.rewrites.headerMap } : {}),
    },
    settings,
  );
  const own = sub.receivedLines ? sub.receivedLines(queueId) : [receivedHeader(settings, sub.submitter.uid, queueId, sub.submittedAt)];
  const head = [...own, ...headers.lines].map((l) => `${l}\n`).join("");
  let body = content.subarray(split.bodyOffset);
  if (split.endedBy === "nonheader") body = Buffer.concat([Buffer.from("\n"), body]);
  let message: Buffer = Buffer.concat([Buffer.from(head, "latin1"), body]);

  let rejection: Rejection | undefined = sub.rejection;
  const rejected = sub.checks?.reject;
  if (rejection) {
    // decided before cleanup (a non_smtpd_milters 5xx)
  } else if (rejected !== undefined) {
    const space = rejected.indexOf(" ");
    rejection = { status: rejected.slice(0, space), reason: rejected.slice(space + 1) };
  } else if (headers.receivedCount + 1 >= settings.hopcountLimit) {
    rejection = { status: "5.4.0", reason: "too many hops", warning: "message rejected: hopcount exceeded" };
  } else if (settings.messageSizeLimit > 0 && message.length > settings.messageSizeLimit) {
    rejection = { status: "5.3.4", reason: "message file too big", warning: `message rejected: message size ${message.length} exceeds message_size_limit ${settings.messageSizeLimit}` };
  }
  if (rejection) {
    // returned to the sender with its headers only
    message = Buffer.from(head, "latin1");
    for (const r of recipients) r.done = true;
  } else if (sub.dkim) {
    const signed = sub.dkim.signing.sign(message, sub.dkim.choice, now);
    message = signed.content;
    if (signed.log) headers.logs.push(signed.log);
    if (signed.warning) headers.warnings.push(signed.warning);
  }
  return {
    file: { arrivalTime: file.arrivalTime, sender, recipients, attributes, content: message },
    logs: headers.logs,
    warnings: headers.warnings,
    ...(rejection ? { rejection } : {}),
  };
}
