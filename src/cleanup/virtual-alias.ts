/**
 * cleanup's virtual alias expansion (virtual_alias_maps, virtual(5)), as
 * Postfix's cleanup does it after canonical mapping, for every recipient of
 * mail from sendmail/pickup and from smtpd:
 *
 * - An address is looked up in Postfix's order (user+ext@domain,
 *   user@domain, user+ext and user when the domain is local, @domain:
 *   the shared lookupAddress). A result is a list of addresses separated
 *   by commas or blanks, each canonicalized in the local context (a bare
 *   `user` gets @$myorigin); a result `@other` keeps the user part.
 * - An extension the key left out is copied to every result address when
 *   propagate_unmatched_extensions names "virtual".
 * - The first result address replaces the address and is looked up again;
 *   the others are appended and expanded in their turn (one-to-many).
 *   An address that maps to itself (also among several results) is kept
 *   and not looked up again.
 * - Limits, as Postfix's: more than virtual_alias_expansion_limit
 *   addresses, more than virtual_alias_recursion_limit lookups of one
 *   address (a loop such as a -> b, b -> a), or a result longer than
 *   virtual_alias_address_length_limit defer the message
 *   ("4.6.0 Alias expansion error"); so does a table that cannot be read
 *   (TableError) or a result with no address. Never a bounce, never the
 *   address let through unrewritten.
 *
 * Runs in pickup and in smtpd as mail_owner. The addresses come from the
 * envelope (untrusted); the tables are the administrator's.
 */
import type { Config } from "../global/config/config.ts";
import { canonicalOptions } from "../global/address/canonical.ts";
import type { Recipient } from "../global/queue/format.ts";
import { isLocalDomain } from "../global/rewrite/resolve.ts";
import { openTables } from "../global/tables/open-table.ts";
import { TableError } from "../global/tables/table.ts";
import { CleanupDeferral } from "./rewrite-error.ts";
import { mapAddress, type AddressMapOptions } from "./address-map.ts";

export interface VirtualAliasSettings extends AddressMapOptions {
  recursionLimit: number;
  expansionLimit: number;
  addressLengthLimit: number;
}

/** The expansion could not be completed: the message is deferred (kept in maildrop, 4xx to the SMTP client). */
export class AliasExpansionError extends CleanupDeferral {
  constructor(warning: string, lookupFailed: boolean) {
    super(warning, lookupFailed, "4.6.0", "Alias expansion error");
    this.name = "AliasExpansionError";
  }
}

const TITLE = "virtual_alias_maps";

/** The settings, or undefined when virtual_alias_maps (or the old virtual_maps it defaults to) is empty. */
export function virtualAliasSettings(config: Config): VirtualAliasSettings | undefined {
  const specs = config.list("virtual_alias_maps");
  if (specs.length === 0) return undefined;
  return {
    tables: openTables(specs, config),
    delimiter: config.str("recipient_delimiter"),
    propagate: config
      .list("propagate_unmatched_extensions")
      .map((w) => w.toLowerCase())
      .includes("virtual"),
    recursionLimit: config.int("virtual_alias_recursion_limit"),
    expansionLimit: config.int("virtual_alias_expansion_limit"),
    addressLengthLimit: config.int("virtual_alias_address_length_limit"),
    canonical: canonicalOptions(config, "local"),
    isLocalDomain: (domain) => isLocalDomain(config, domain),
    ownerRequestSpecial: config.bool("owner_request_special"),
    doubleBounceSender: config.str("double_bounce_sender"),
  };
}

/** Expands one recipient address into its final addresses (itself when no table has it). */
export async function expandVirtualAlias(address: string, s: VirtualAliasSettings): Promise<string[]> {
  const out = [address];
  const expandedIntoItself = new Set<string>();
  for (let arg = 0; arg < out.length; arg++) {
    if (out.length > s.expansionLimit) {
      throw new AliasExpansionError(`unreasonable ${TITLE} map expansion size for ${address} -- message not accepted, try again later`, false);
    }
    for (let count = 0; ; count++) {
      const current = out[arg]!;
      if (expandedIntoItself.has(current.toLowerCase())) break;
      if (count >= s.recursionLimit) {
        throw new AliasExpansionError(`unreasonable ${TITLE} map nesting for ${address} -- message not accepted, try again later`, false);
      }
      let results: string[] | undefined;
      try {
        results = await mapAddress(current, s, TITLE);
      } catch (err) {
        if (err instanceof TableError) {
          throw new AliasExpansionError(`${TITLE} map lookup problem for ${address} (${err.message}) -- message not accepted, try again later`, true);
        }
        throw err;
      }
      if (!results) break;
      for (const [i, result] of results.entries()) {
        if (result.length > s.addressLengthLimit) {
          throw new AliasExpansionError(`unreasonable ${TITLE} result ${result.slice(0, 300)}... -- message not accepted, try again later`, false);
        }
        if (i === 0) out[arg] = result;
        else out.push(result);
        if (result.toLowerCase() === current.toLowerCase()) expandedIntoItself.add(current.toLowerCase());
      }
    }
  }
  return out;
}

/**
 * Every recipient expanded: each result keeps the recipient's original
 * address, ORCPT and NOTIFY; duplicates (same address, ORCPT and NOTIFY)
 * are written once, as Postfix's cleanup_out_recipient does.
 */
export async function expandRecipients(recipients: readonly Recipient[], s: VirtualAliasSettings | undefined): Promise<Recipient[]> {
  const seen = new Set<string>();
  const out: Recipient[] = [];
  for (const r of recipients) {
    for (const address of s ? await expandVirtualAlias(r.address, s) : [r.address]) {
      const key = `${address.toLowerCase()}\0${r.original ?? ""}\0${r.orcpt ?? ""}\0${r.notify?.join(",") ?? ""}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ ...r, address });
    }
  }
  return out;
}
