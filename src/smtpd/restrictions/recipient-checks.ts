/**
 * What the SMTP server's relay and recipient checks need from an address,
 * on top of the one resolver (src/global/rewrite/resolve.ts) that the queue
 * manager routes with: smtpd never resolves an address itself, so what it
 * accepts as ours is what the queue manager delivers as ours.
 *
 * An SMTP address is canonicalized first, as cleanup will canonicalize it
 * before the queue manager sees it (Postfix's smtpd asks trivial-rewrite to
 * rewrite in the local context, then to resolve): a source route goes,
 * unqualified addresses get @$myorigin (or their `!` or `%` domain).
 *
 * What is smtpd's own: Postfix's permit_auth_destination on the resolver's
 * flags (isAuthorizedDestination) and the recipient tables of each class
 * (recipientStatus: local_recipient_maps, virtual_mailbox_maps,
 * relay_recipient_maps, virtual_alias_maps), and relocated_maps' "User has
 * moved" that the resolver found.
 *
 * Runs in smtpd as mail_owner; the address is from an SMTP client. A table
 * that cannot be read throws TableError: the restriction engine answers
 * with a temporary error.
 */
import { receiveOverrides } from "../../global/config/receive-override.ts";
import type { Config } from "../../global/config/config.ts";
import { canonicalizeAddress, canonicalOptions } from "../../global/address/canonical.ts";
import { resolveRecipient, type Resolution } from "../../global/rewrite/resolve.ts";
import { openTable } from "../../global/tables/open-table.ts";
import { lookupAddress } from "../../global/tables/address-lookup.ts";

/** An SMTP client's address, resolved by the shared resolver after smtpd's canonicalization. */
export async function resolveClientAddress(config: Config, address: string): Promise<Resolution> {
  return resolveRecipient(config, canonicalizeAddress(address, canonicalOptions(config, "local")));
}

/** Final delivery on this machine: Postfix's RESOLVE_CLASS_FINAL. */
export function isFinalClass(r: Resolution): boolean {
  return r.addressClass === "local" || r.addressClass === "virtual_alias" || r.addressClass === "virtual_mailbox";
}

/**
 * Postfix's permit_auth_destination: mail without sender-specified routing (in any class, unless
 * allow_untrusted_routing) that ends in one of our own domains or in relay_domains. A failed
 * resolution is never an authorized destination (the caller refuses it outright).
 */
export function isAuthorizedDestination(config: Config, r: Resolution): boolean {
  if (r.failed) return false;
  if (r.routed && !config.bool("allow_untrusted_routing")) return false;
  return isFinalClass(r) || r.addressClass === "relay";
}

export type RecipientStatus = { known: true } | { known: false; table: string; code: number } | { known: false; moved: string; code: number };

/**
 * Is the recipient known in its class's table (reject_unlisted_recipient)?
 * Classes without a table (relay with empty relay_recipient_maps, default)
 * know everyone. recipient_canonical_maps, canonical_maps and
 * virtual_alias_maps are asked first, for every class.
 */
export async function recipientStatus(config: Config, r: Resolution, subject: "sender" | "recipient" = "recipient"): Promise<RecipientStatus> {
  // receive_override_options=no_unknown_recipient_checks: everyone is known (both reject_unlisted_* checks, as Postfix)
  if (receiveOverrides(config).noUnknownRecipientChecks) return { known: true };
  const delimiter = config.str("recipient_delimiter");
  const find = async (param: string, localDomain: boolean) => {
    const specs = config.list(param);
    if (specs.length === 0) return undefined;
    return lookupAddress(
      specs.map((s) => openTable(s, config)),
      r.address,
      delimiter,
      { localDomain },
    );
  };
  // as Postfix's check_rcpt_maps: an address cleanup will map (canonical, virtual alias) counts as known
  // (for reject_unlisted_sender, sender_canonical_maps too)
  const mapped = subject === "sender" ? ["recipient_canonical_maps", "sender_canonical_maps", "canonical_maps", "virtual_alias_maps"] : ["recipient_canonical_maps", "canonical_maps", "virtual_alias_maps"];
  for (const param of mapped) {
    if (config.list(param).length && (await find(param, r.addressClass === "local"))) return { known: true };
  }
  // relocated_maps (the resolver's last step): "User has moved to NEW", 550 as Postfix's check_rcpt_maps
  if (r.relocated) return { known: false, moved: r.nexthop.replace(/^\S+ /, ""), code: r.addressClass === "virtual_alias" ? config.int("unknown_virtual_alias_reject_code") : 550 };
  switch (r.addressClass) {
    case "local": {
      const maps = config.list("local_recipient_maps");
      if (maps.length === 0) return { known: true };
      // as Postfix's check_rcpt_maps: the double-bounce sender, postmaster and MAILER-DAEMON are always ours
      const user = r.address.slice(0, r.address.lastIndexOf("@")).toLowerCase();
      if ([config.str("double_bounce_sender"), "postmaster", "mailer-daemon"].some((name) => name.toLowerCase() === user)) return { known: true };
      if (await find("local_recipient_maps", true)) return { known: true };
      return { known: false, table: "local recipient table", code: config.int("unknown_local_recipient_reject_code") };
    }
    case "virtual_alias":
      return { known: false, table: "virtual alias table", code: config.int("unknown_virtual_alias_reject_code") };
    case "virtual_mailbox":
      if (await find("virtual_mailbox_maps", false)) return { known: true };
      return { known: false, table: "virtual mailbox table", code: config.int("unknown_virtual_mailbox_reject_code") };
    case "relay":
      if (config.list("relay_recipient_maps").length === 0) return { known: true };
      if (await find("relay_recipient_maps", false)) return { known: true };
      return { known: false, table: "relay recipient table", code: config.int("unknown_relay_recipient_reject_code") };
    case "default":
      return { known: true };
  }
}
