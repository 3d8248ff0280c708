/**
 * The envelope of a local submission, cleaned: the sender and every
 * recipient canonicalized in the local context (append_at_myorigin and the
 * rest, canonical.ts), the empty recipient replaced by
 * empty_address_recipient, the address as submitted kept as the original
 * recipient, a DSN ORCPT added when there is none (as Postfix does),
 * recipients that are already finished (a message requeued with postsuper
 * -r) left out, and duplicates removed.
 *
 * Attributes: a file from an ordinary user is untrusted, so only the ones
 * sendmail writes are taken over, each checked for its form (pickup has
 * screened the whole envelope before, untrusted-envelope.ts); a file the
 * queue owner wrote (postsuper -r) keeps all of them. The submitter's uid and
 * login come from the file's owner, never from the content.
 */
import { canonicalizeAddress } from "../global/address/canonical.ts";
import type { QueueFile, Recipient } from "../global/queue/format.ts";
import type { CleanupSettings } from "./settings.ts";
import { SUBMISSION_ATTRIBUTES } from "./untrusted-envelope.ts";

export interface Submitter {
  /** The maildrop file's owner. */
  uid: number;
  /** Its login name, when the password file has one. */
  login?: string;
  /** True when the queue owner (or root) wrote the file: a requeued message. */
  trusted: boolean;
}

/** Addresses with line breaks or NULs cannot be written into headers or SMTP commands (sendmail never makes them). */
export function hasLineBreaks(text: string): boolean {
  return /[\r\n\0]/.test(text);
}

export function cleanSender(sender: string, settings: CleanupSettings): string {
  return sender === "" ? "" : canonicalizeAddress(sender, settings.envelope);
}

/** `addOrcpt` false: a recipient without a DSN ORCPT keeps none (mail local(8) forwards, as Postfix's cleanup takes it). */
export function cleanRecipients(recipients: readonly Recipient[], settings: CleanupSettings, addOrcpt = true): Recipient[] {
  const seen = new Set<string>();
  const out: Recipient[] = [];
  for (const r of recipients) {
    if (r.done) continue;
    const submitted = r.address === "" ? settings.emptyAddressRecipient : r.address;
    const address = canonicalizeAddress(submitted, settings.envelope);
    const orcpt = r.orcpt ?? (addOrcpt ? `rfc822;${address}` : undefined);
    const key = `${address}\0${orcpt ?? ""}\0${r.notify?.join(",") ?? ""}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const next: Recipient = { address };
    if (settings.enableOriginalRecipient) next.original = r.original ?? r.address;
    if (orcpt !== undefined) next.orcpt = orcpt;
    if (r.notify) next.notify = r.notify;
    out.push(next);
  }
  return out;
}

/** Attributes for the incoming queue file. */
export function cleanAttributes(file: QueueFile, submitter: Submitter, settings: CleanupSettings): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(file.attributes)) {
    if (name === "uid" || name === "login") continue;
    if (submitter.trusted) out[name] = value;
    else if (SUBMISSION_ATTRIBUTES.get(name)?.(value, settings)) out[name] = value;
  }
  out.rewrite_context ??= "local";
  out.uid = String(submitter.uid);
  if (submitter.login !== undefined) out.login = submitter.login;
  if (!submitter.trusted || out.origin === undefined) out.origin = "sendmail";
  return out;
}
