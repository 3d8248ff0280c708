/**
 * The envelope rewrites that need table lookups, in the order Postfix's
 * cleanup applies them to each recipient: the recipient is cleaned first
 * (canonicalized, envelope.ts), then virtual_alias_maps expand it
 * (virtual-alias.ts). They are asynchronous, so they run before the queue
 * file is written; local-submission.ts and remote-submission.ts take the
 * result as `recipients`.
 *
 * A lookup that fails, or an expansion over Postfix's limits, throws
 * AliasExpansionError: the caller keeps the message (pickup leaves it in
 * maildrop/, smtpd answers 451) and nothing is queued half rewritten.
 *
 * Runs in pickup and smtpd as mail_owner; the recipients are untrusted
 * envelope input.
 */
import type { Recipient } from "../global/queue/format.ts";
import { cleanRecipients } from "./envelope.ts";
import type { CleanupSettings } from "./settings.ts";
import { expandRecipients } from "./virtual-alias.ts";

export { AliasExpansionError } from "./virtual-alias.ts";

/** The recipients as cleanup queues them: cleaned, then expanded by virtual_alias_maps. */
export async function rewriteRecipients(recipients: readonly Recipient[], settings: CleanupSettings): Promise<Recipient[]> {
  return expandRecipients(cleanRecipients(recipients, settings), settings.virtualAlias);
}
