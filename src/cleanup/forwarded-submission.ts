/**
 * Cleanup for mail that local delivery forwards (aliases, .forward,
 * :include: to other addresses), as Postfix's local(8) hands it to cleanup
 * with CLEANUP_FLAG_MAP_OK only: the envelope sender and recipients and the
 * address headers are canonicalized and mapped (canonical_maps and the
 * sender_/recipient_ ones, masquerade_domains), the recipients expanded by
 * virtual_alias_maps; no always_bcc/sender_bcc_maps/recipient_bcc_maps
 * copies. Header addresses are rewritten in the original message's
 * rewrite_context, which the forwarded message keeps. A recipient without
 * an original recipient gets its own address as one (a mailing list starts
 * anew); one without a DSN ORCPT gets none.
 *
 * The content is the queued message (it went through cleanup once); local
 * puts its Received: and Delivered-To: lines on top when it commits the new
 * queue file. The new queue ID is not known here: a Message-Id this pass
 * would add (only when the first pass did not, i.e. never in practice) is
 * made from the forwarded message's own queue ID.
 *
 * Runs for the local delivery agent in a `local-worker` that became
 * mail_owner (src/local/worker/forward-commit.ts; in unprivileged mode in
 * the agent itself), as pickup and smtpd run cleanup; the content and the
 * addresses are untrusted (the header part is bounded as the cleanup pass
 * bounds it), the tables the administrator's. A table that cannot be read
 * throws CleanupDeferral, as for the other submissions.
 *
 * XXX: hopcount_limit and message_size_limit are not applied here (Postfix's
 * cleanup bounces a forwarded message over them); local's Delivered-To:
 * loop detection stops forwarding loops.
 */
import { splitMessage } from "../global/message/header-split.ts";
import type { Recipient } from "../global/queue/format.ts";
import { prepareRewrites } from "./address-rewrites.ts";
import { cleanHeaders } from "./headers.ts";
import type { CleanupSettings } from "./settings.ts";
import { replaceStrayCr } from "./stray-cr-lf.ts";

export interface ForwardedSubmission {
  /** The forwarding sender ("" is the null sender). */
  sender: string;
  recipients: readonly Recipient[];
  /** The queued message, headers and body. */
  content: Uint8Array;
  /** The original message's rewrite_context attribute. */
  rewriteContext: "local" | "remote";
  /** The queue ID of the message being delivered. */
  queueId: string;
}

export interface ForwardedCleanup {
  sender: string;
  recipients: Recipient[];
  /** The message with its headers cleaned, to go below local's Received: and Delivered-To:. */
  content: Uint8Array;
  /** Postfix's warnings about the maps and headers, without a queue ID. */
  warnings: string[];
}

export async function cleanupForwarded(sub: ForwardedSubmission, settings: CleanupSettings, now = new Date()): Promise<ForwardedCleanup> {
  const rewrites = await prepareRewrites(
    { sender: sub.sender, recipients: sub.recipients, content: sub.content, rewriteContext: sub.rewriteContext, bcc: false, addOrcpt: false },
    settings,
  );
  const received = Buffer.from(sub.content.buffer, sub.content.byteOffset, sub.content.byteLength);
  const content = settings.replaceStrayCrLf ? replaceStrayCr(received) : received;
  const split = splitMessage(content, { lineLengthLimit: settings.lineLengthLimit, headerSizeLimit: settings.headerSizeLimit });
  const headers = cleanHeaders(
    {
      headers: split.headers,
      queueId: sub.queueId,
      sender: rewrites.sender,
      rewriteContext: sub.rewriteContext,
      arrival: now,
      now,
      addressMap: rewrites.headerMap,
    },
    settings,
  );
  const head = headers.lines.map((l) => `${l}\n`).join("");
  let body = content.subarray(split.bodyOffset);
  if (split.endedBy === "nonheader") body = Buffer.concat([Buffer.from("\n"), body]);
  return {
    sender: rewrites.sender,
    recipients: rewrites.recipients,
    content: Buffer.concat([Buffer.from(head, "latin1"), body]),
    warnings: [...rewrites.warnings, ...headers.warnings],
  };
}
