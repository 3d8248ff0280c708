/**
 * The envelope rewrites that need table lookups, in the order Postfix's
 * cleanup applies them: the sender and recipients are cleaned first
 * (canonicalized, envelope.ts); the blind copies are added (bcc.ts:
 * sender_bcc_maps first, recipient_bcc_maps after each recipient,
 * always_bcc last); then virtual_alias_maps expand every recipient, the
 * copies too (virtual-alias.ts), and duplicates go. They are asynchronous, so they run before the queue
 * file is written; local-submission.ts and remote-submission.ts take the
 * result as `recipients`.
 *
 * A lookup that fails, or an expansion over Postfix's limits, throws
 * CleanupDeferral: the caller keeps the message (pickup leaves it in
 * maildrop/, smtpd answers 451) and nothing is queued half rewritten.
 *
 * Runs in pickup and smtpd as mail_owner; the recipients are untrusted
 * envelope input.
 */
import type { Recipient } from "../global/queue/format.ts";
import { addBccRecipients } from "./bcc.ts";
import { cleanRecipients, cleanSender } from "./envelope.ts";
import type { CleanupSettings } from "./settings.ts";
import { expandRecipients } from "./virtual-alias.ts";

export { CleanupDeferral } from "./rewrite-error.ts";

/** The recipients as cleanup queues them: cleaned, with the blind copies, expanded by virtual_alias_maps. */
export async function rewriteRecipients(sender: string, recipients: readonly Recipient[], settings: CleanupSettings): Promise<Recipient[]> {
  const withCopies = await addBccRecipients(cleanSender(sender, settings), cleanRecipients(recipients, settings), settings.bcc);
  return expandRecipients(withCopies, settings.virtualAlias);
}
