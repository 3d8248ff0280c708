/**
 * Cleanup for mail from SMTP clients: turns what the SMTP server accepted
 * into the queue file for incoming/ (or hold/), as Postfix's cleanup does
 * for smtpd.
 *
 * - Headers that restrictions asked to PREPEND, then the server's Received:
 *   header, go on top.
 * - Headers are cleaned as for local mail (headers.ts), in the rewrite
 *   context the server chose: "local" for clients in
 *   local_header_rewrite_clients (missing Message-Id, Date and From added,
 *   addresses completed), "remote" otherwise (nothing added unless
 *   always_add_missing_headers or remote_header_rewrite_domain).
 * - The envelope is cleaned as for local mail (envelope.ts): the sender and
 *   recipients canonicalized, the original recipient kept, a DSN ORCPT
 *   added where the client gave none, duplicates removed.
 * - Authentication-Results: headers that claim to come from this host are
 *   removed when the server checked the message itself (RFC 8601 5); its
 *   own goes right below its Received: header.
 * - A DKIM signature on top when the server asks for one (mail from
 *   dkim_sign_clients; dkim-signing.ts), after every rewrite.
 * - Unlike local mail, a message with too many Received: headers or above
 *   message_size_limit is refused (the SMTP client gets the reply), never
 *   queued and bounced.
 *
 * Runs in the smtpd processes as mail_owner. The content and the envelope
 * are untrusted; the attributes come from the server, not the client.
 */
import { splitMessage } from "../global/message/header-split.ts";
import type { QueueFile, Recipient } from "../global/queue/format.ts";
import { cleanRecipients, cleanSender } from "./envelope.ts";
import { cleanHeaders, toLatin1 } from "./headers.ts";
import type { CleanupSettings } from "./settings.ts";
import { replaceStrayCr } from "./stray-cr-lf.ts";
import type { PreparedRewrites } from "./address-rewrites.ts";
import type { DkimRequest } from "./dkim-signing.ts";
import { claimsAuthservId } from "./auth-results.ts";
import { arcHeadersIntact } from "./arc-intact.ts";

export interface RemoteSubmission {
  arrival: Date;
  /** Internal form; "" is the null sender. */
  sender: string;
  recipients: Recipient[];
  /** The table-driven rewrites, done beforehand (address-rewrites.ts); without them the envelope is only cleaned here. */
  rewrites?: PreparedRewrites;
  /** The message as received, LF line ends. */
  content: Uint8Array;
  /** The server's Received: header for a queue ID (no final newline). */
  received: (queueId: string) => string;
  /** The lines that header_checks made of the Received: header (latin1), when they ran; they replace `received`. */
  receivedLines?: (queueId: string) => string[];
  /** Headers to put on top (PREPEND actions), in order. */
  prepend: string[];
  /** Server-made attributes: client_name, client_address, helo, protocol, sasl_*, envid, ret, encoding, smtputf8. */
  attributes: Record<string, string>;
  rewriteContext: "local" | "remote";
  /** DKIM signing with the signers looked up beforehand (dkim-signing.ts); absent: not signed. */
  dkim?: DkimRequest;
  /**
   * The server's own Authentication-Results: header, put below its Received: header (where a
   * milter's lands in Postfix); the message's headers that claim the same authserv-id go (RFC 8601 5).
   */
  authResults?: { header: string; authservId: string; arc?: string[] };
}

export interface RemoteRejection {
  code: number;
  dsn: string;
  text: string;
  /** The warning cleanup logs. */
  warning: string;
}

export type RemoteCleanupResult =
  | { file: QueueFile; logs: string[]; warnings: string[] }
  | { rejection: RemoteRejection; logs: string[]; warnings: string[] };

export function cleanupRemoteSubmission(sub: RemoteSubmission, settings: CleanupSettings, queueId: string, now = new Date()): RemoteCleanupResult {
  const recipients = sub.rewrites?.recipients ?? cleanRecipients(sub.recipients, settings);
  const sender = sub.rewrites?.sender ?? cleanSender(sub.sender, settings);
  const received = Buffer.from(sub.content.buffer, sub.content.byteOffset, sub.content.byteLength);
  const content = settings.replaceStrayCrLf ? replaceStrayCr(received) : received;
  const split = splitMessage(content, { lineLengthLimit: settings.lineLengthLimit, headerSizeLimit: settings.headerSizeLimit });
  const headers = cleanHeaders(
    {
      headers: sub.authResults === undefined ? split.headers : split.headers.filter((h) => !claimsAuthservId(h, sub.authResults!.authservId)),
      queueId,
      sender,
      rewriteContext: sub.rewriteContext,
      arrival: sub.arrival,
      now,
      ...(sub.rewrites ? { addressMap: sub.rewrites.headerMap } : {}),
    },
    settings,
  );
  const own = sub.receivedLines ? sub.receivedLines(queueId) : [toLatin1(sub.received(queueId))];
  // an ARC set goes on top as it was sealed (its bytes are signed), unless cleanup changed what it covers
  let arc = (sub.authResults?.arc ?? []).map(toLatin1);
  if (arc.length > 0 && (content !== received || split.endedBy === "nonheader" || !arcHeadersIntact(arc, split.headers, headers.lines))) {
    headers.warnings.push("ARC seal left out: cleanup changed the header fields or the body it covers");
    arc = [];
  }
  const top = [...arc, ...sub.prepend.map(toLatin1), ...own, ...(sub.authResults ? [toLatin1(sub.authResults.header)] : [])];
  const head = [...top, ...headers.lines].map((l) => `${l}\n`).join("");
  let body = content.subarray(split.bodyOffset);
  if (split.endedBy === "nonheader") body = Buffer.concat([Buffer.from("\n"), body]);
  let message: Buffer = Buffer.concat([Buffer.from(head, "latin1"), body]);

  if (headers.receivedCount + 1 >= settings.hopcountLimit) {
    return { rejection: { code: 554, dsn: "5.4.0", text: "Error: too many hops", warning: "message rejected: hopcount exceeded" }, logs: headers.logs, warnings: headers.warnings };
  }
  if (settings.messageSizeLimit > 0 && message.length > settings.messageSizeLimit) {
    return {
      rejection: {
        code: 552,
        dsn: "5.3.4",
        text: "Error: message file too big",
        warning: `message rejected: message size ${message.length} exceeds message_size_limit ${settings.messageSizeLimit}`,
      },
      logs: headers.logs,
      warnings: headers.warnings,
    };
  }
  if (sub.dkim) {
    const signed = sub.dkim.signing.sign(message, sub.dkim.choice, now);
    message = signed.content;
    if (signed.log) headers.logs.push(signed.log);
    if (signed.warning) headers.warnings.push(signed.warning);
  }
  const attributes: Record<string, string> = { ...sub.attributes, rewrite_context: sub.rewriteContext, origin: "smtpd" };
  return {
    file: { arrivalTime: sub.arrival.getTime(), sender, recipients, attributes, content: message },
    logs: headers.logs,
    warnings: headers.warnings,
  };
}
