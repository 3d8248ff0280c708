/**
 * Blind copies added by cleanup, as Postfix's cleanup_addr.c and
 * cleanup_extracted.c add them: sender_bcc_maps for the envelope sender
 * (not the null sender), recipient_bcc_maps for each envelope recipient
 * (before virtual alias expansion), always_bcc once per message. Each copy
 * is an extra envelope recipient, canonicalized in the local context, that
 * is its own original recipient and carries no DSN ORCPT or NOTIFY; it is
 * expanded by virtual_alias_maps like any recipient.
 *
 * Tables are looked up in Postfix's address order (lookupAddress); the
 * result is one address. A table that cannot be read throws
 * CleanupDeferral: the message waits, it is never queued without its copy.
 *
 * Runs in pickup and smtpd as mail_owner; the addresses looked up come
 * from the envelope (untrusted), the tables and always_bcc from the
 * administrator.
 */
import type { Config } from "../global/config/config.ts";
import { canonicalizeAddress, type CanonicalOptions } from "../global/address/canonical.ts";
import { extractAddresses } from "../global/address/parse.ts";
import type { Recipient } from "../global/queue/format.ts";
import { isLocalDomain } from "../global/rewrite/resolve.ts";
import { lookupAddress } from "../global/tables/address-lookup.ts";
import { openTables } from "../global/tables/open-table.ts";
import { TableError, type Table } from "../global/tables/table.ts";
import { CleanupDeferral } from "./rewrite-error.ts";

export interface BccSettings {
  /** always_bcc, as configured ("" for none). */
  always: string;
  senderMaps: readonly Table[];
  recipientMaps: readonly Table[];
  delimiter: string;
  canonical: CanonicalOptions;
  isLocalDomain: (domain: string) => Promise<boolean>;
  enableOriginalRecipient: boolean;
}

/** The settings, or undefined when none of always_bcc, sender_bcc_maps and recipient_bcc_maps is set. */
export function bccSettings(config: Config, canonical: CanonicalOptions): BccSettings | undefined {
  const always = config.str("always_bcc").trim();
  const sender = config.list("sender_bcc_maps");
  const recipient = config.list("recipient_bcc_maps");
  if (!always && sender.length === 0 && recipient.length === 0) return undefined;
  return {
    always,
    senderMaps: openTables(sender, config),
    recipientMaps: openTables(recipient, config),
    delimiter: config.str("recipient_delimiter"),
    canonical,
    isLocalDomain: (domain) => isLocalDomain(config, domain),
    enableOriginalRecipient: config.bool("enable_original_recipient"),
  };
}

/** A copy recipient: the address in internal form, canonicalized; its own original recipient. */
function copyTo(address: string, s: BccSettings): Recipient | undefined {
  const internal = extractAddresses(address)[0] ?? address.trim();
  if (!internal) return undefined;
  const canonical = canonicalizeAddress(internal, s.canonical);
  return s.enableOriginalRecipient ? { address: canonical, original: canonical } : { address: canonical };
}

async function lookupCopy(tables: readonly Table[], title: string, address: string, s: BccSettings): Promise<Recipient | undefined> {
  if (tables.length === 0 || address === "") return undefined;
  const at = address.lastIndexOf("@");
  try {
    const found = await lookupAddress(tables, address, s.delimiter, { localDomain: at >= 0 && (await s.isLocalDomain(address.slice(at + 1))) });
    return found ? copyTo(found.value, s) : undefined;
  } catch (err) {
    if (err instanceof TableError) throw new CleanupDeferral(`${title} map lookup problem (${err.message}) -- message not accepted, try again later`, true);
    throw err;
  }
}

/**
 * The recipients with the copies in Postfix's order: the sender's copy
 * first, each recipient's copy after it, always_bcc last (only when there
 * is a recipient). `sender` and `recipients` are already cleaned.
 */
export async function addBccRecipients(sender: string, recipients: readonly Recipient[], s: BccSettings | undefined): Promise<Recipient[]> {
  if (!s || recipients.length === 0) return [...recipients];
  const out: Recipient[] = [];
  const senderCopy = await lookupCopy(s.senderMaps, "sender_bcc_maps", sender, s);
  if (senderCopy) out.push(senderCopy);
  for (const r of recipients) {
    out.push(r);
    const copy = await lookupCopy(s.recipientMaps, "recipient_bcc_maps", r.address, s);
    if (copy) out.push(copy);
  }
  const always = s.always ? copyTo(s.always, s) : undefined;
  if (always) out.push(always);
  return out;
}
