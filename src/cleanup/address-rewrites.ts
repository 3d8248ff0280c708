/**
 * The rewrites that need table lookups, in the order Postfix's cleanup
 * applies them: the sender and recipients are cleaned first (canonicalized,
 * envelope.ts), mapped by the canonical maps (canonical-maps.ts) and
 * masqueraded (masquerade.ts); the
 * blind copies are added (bcc.ts: sender_bcc_maps first,
 * recipient_bcc_maps after each recipient, always_bcc last; the copies
 * mapped like recipients); then virtual_alias_maps expand every recipient
 * (virtual-alias.ts), and duplicates go. The canonical results for header
 * addresses are looked up here too, for the header pass (headers.ts).
 *
 * They are asynchronous, so they run before the queue file is written;
 * local-submission.ts and remote-submission.ts take the result.
 *
 * A lookup that fails, or an expansion over Postfix's limits, throws
 * CleanupDeferral: the caller keeps the message (pickup leaves it in
 * maildrop/, smtpd answers 451) and nothing is queued half rewritten.
 *
 * Runs in pickup and smtpd as mail_owner, and for the mail local delivery
 * forwards in a worker running as mail_owner (forwarded-submission.ts); the
 * envelope and the content are untrusted (the header part is bounded as the cleanup pass bounds it).
 */
import { splitMessage } from "../global/message/header-split.ts";
import type { Recipient } from "../global/queue/format.ts";
import { addBccRecipients } from "./bcc.ts";
import { headerAddressMap, mapCanonical, type CanonicalClass, type HeaderAddressMap } from "./canonical-maps.ts";
import { masquerade } from "./masquerade.ts";
import { cleanRecipients, cleanSender } from "./envelope.ts";
import { headerCanonicalizer } from "./headers.ts";
import type { CleanupSettings } from "./settings.ts";
import { replaceStrayCr } from "./stray-cr-lf.ts";
import { expandRecipients } from "./virtual-alias.ts";

export { CleanupDeferral } from "./rewrite-error.ts";

export interface RewriteInput {
  /** As submitted; "" is the null sender. */
  sender: string;
  recipients: readonly Recipient[];
  content: Uint8Array;
  rewriteContext: "local" | "remote";
  /**
   * Whether always_bcc, sender_bcc_maps and recipient_bcc_maps add copies (Postfix's
   * CLEANUP_FLAG_BCC_OK; default true). Mail that local(8) forwards gets the maps but no copies.
   */
  bcc?: boolean;
  /** Whether a recipient without a DSN ORCPT gets one (default true; not for forwarded mail). */
  addOrcpt?: boolean;
}

export interface PreparedRewrites {
  /** The sender, cleaned and mapped. */
  sender: string;
  /** The recipients as cleanup queues them. */
  recipients: Recipient[];
  /** canonical(5) results for the header addresses. */
  headerMap: HeaderAddressMap;
  /** Postfix's warnings about the maps (multi-valued entries, nesting). */
  warnings: string[];
}

export async function prepareRewrites(input: RewriteInput, settings: CleanupSettings): Promise<PreparedRewrites> {
  const warnings: string[] = [];
  const maps = settings.canonicalMaps;
  const masq = settings.masquerade;
  const rewrite = async (address: string, cls: CanonicalClass) => masquerade(await mapCanonical(address, cls, maps, warnings), cls, masq);
  const sender = await rewrite(cleanSender(input.sender, settings), "envelope_sender");
  const mapped: Recipient[] = [];
  for (const r of cleanRecipients(input.recipients, settings, input.addOrcpt !== false)) mapped.push({ ...r, address: await rewrite(r.address, "envelope_recipient") });
  const original = new Set(mapped);
  const withCopies: Recipient[] = [];
  const copies = input.bcc === false ? mapped : await addBccRecipients(sender, mapped, settings.bcc);
  for (const r of copies) {
    if (original.has(r)) withCopies.push(r);
    else {
      const address = await rewrite(r.address, "envelope_recipient");
      withCopies.push(address === r.address ? r : { ...r, address, ...(r.original !== undefined ? { original: address } : {}) });
    }
  }
  const recipients = await expandRecipients(withCopies, settings.virtualAlias);
  let headerMap: HeaderAddressMap = new Map();
  const canon = maps || masq ? headerCanonicalizer(input.rewriteContext, settings) : undefined;
  if (canon) {
    const bytes = Buffer.from(input.content.buffer, input.content.byteOffset, input.content.byteLength);
    const content = settings.replaceStrayCrLf ? replaceStrayCr(bytes) : bytes;
    const split = splitMessage(content, { lineLengthLimit: settings.lineLengthLimit, headerSizeLimit: settings.headerSizeLimit });
    headerMap = await headerAddressMap(split.headers, canon, rewrite, settings.headerAddressTokenLimit);
  }
  return { sender, recipients, headerMap, warnings };
}
