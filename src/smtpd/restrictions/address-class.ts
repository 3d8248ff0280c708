/**
 * Where an SMTP recipient goes, as the SMTP server's relay and recipient
 * checks need it (Postfix's resolve step in trivial-rewrite, the part
 * smtpd(8) asks for): the final domain and its address class (local,
 * virtual alias, virtual mailbox, relay or default), and whether
 * sender-specified routing is left in it.
 *
 * A source route is dropped. While the domain is one of ours, a local part
 * that still holds `@`, `%` (allow_percent_hack) or `!` (swap_bangpath) is
 * resolved further: `user@target@host`, `"user@target"@host`,
 * `user%target@host`, `target!user@host` all end at `target`, which is no
 * authorized destination. Routing still left in the local part at a relay
 * domain (`user%other@relay.example`) makes the address "routed": not an
 * authorized destination for an untrusted client unless
 * allow_untrusted_routing. Unqualified addresses are resolved as
 * `user@$myorigin` (or by their `!` or `%`).
 *
 * Input is a recipient from an SMTP client (internal form); the tables come
 * from the configuration. A table that cannot be read throws TableError:
 * the caller answers with a temporary error.
 */
import type { Config } from "../../global/config/config.ts";
import { isLocalDomain, isRelayDomain } from "../../global/rewrite/resolve.ts";
import { openTable } from "../../global/tables/open-table.ts";
import { lookupAddress } from "../../global/tables/address-lookup.ts";

export type AddressClass = "local" | "virtual_alias" | "virtual_mailbox" | "relay" | "default";

export interface ResolvedRecipient {
  /** The address after resolution: local part @ final domain. */
  address: string;
  localPart: string;
  domain: string;
  addressClass: AddressClass;
  /** Sender-specified routing is left at the final domain: the local part still holds @, % or !. */
  routed: boolean;
}

/** Domain lists whose entries may be names or tables (virtual_alias_domains = $virtual_alias_maps). */
async function domainListHas(config: Config, param: string, domain: string): Promise<boolean> {
  for (const entry of config.list(param)) {
    if (/^[a-z][a-z0-9_-]*:/i.test(entry)) {
      if ((await openTable(entry, config).lookup(domain)) !== undefined) return true;
    } else if (entry.toLowerCase().replace(/\.$/, "") === domain) return true;
  }
  return false;
}

export async function addressClassOf(config: Config, domain: string): Promise<AddressClass> {
  if (isLocalDomain(config, domain)) return "local";
  if (await domainListHas(config, "virtual_alias_domains", domain)) return "virtual_alias";
  if (await domainListHas(config, "virtual_mailbox_domains", domain)) return "virtual_mailbox";
  if (isRelayDomain(config, domain)) return "relay";
  return "default";
}

function ours(c: AddressClass): boolean {
  return c === "local" || c === "virtual_alias" || c === "virtual_mailbox";
}

export async function resolveRecipient(config: Config, address: string): Promise<ResolvedRecipient> {
  let a = address;
  if (a.startsWith("@")) {
    const colon = a.indexOf(":");
    if (colon > 0) a = a.slice(colon + 1);
  }
  const percent = config.bool("allow_percent_hack");
  const bang = config.bool("swap_bangpath");
  let at = a.lastIndexOf("@");
  let local = at < 0 ? a : a.slice(0, at);
  let domain = at < 0 ? "" : a.slice(at + 1);
  // unqualified: user!host and user%host route; anything else is ours ($myorigin)
  if (at < 0) {
    if (bang && local.includes("!") && !local.startsWith("!")) {
      const i = local.indexOf("!");
      domain = local.slice(0, i);
      local = local.slice(i + 1);
    } else if (percent && local.includes("%")) {
      const i = local.lastIndexOf("%");
      domain = local.slice(i + 1);
      local = local.slice(0, i);
    } else domain = config.str("myorigin");
  }
  domain = domain.toLowerCase().replace(/\.$/, "");
  let cls = await addressClassOf(config, domain);
  for (let hops = 0; hops < 10 && ours(cls); hops++) {
    if ((at = local.lastIndexOf("@")) >= 0) {
      domain = local.slice(at + 1);
      local = local.slice(0, at);
    } else if (percent && local.lastIndexOf("%") >= 0) {
      at = local.lastIndexOf("%");
      domain = local.slice(at + 1);
      local = local.slice(0, at);
    } else if (bang && local.indexOf("!") > 0) {
      at = local.indexOf("!");
      domain = local.slice(0, at);
      local = local.slice(at + 1);
    } else break;
    domain = domain.toLowerCase().replace(/\.$/, "");
    cls = await addressClassOf(config, domain);
  }
  // sender-specified routing is what is left in the local part at the final domain (user%other@relay.example)
  return { address: `${local}@${domain}`, localPart: local, domain, addressClass: cls, routed: /[@%!]/.test(local) };
}

/**
 * Postfix's permit_auth_destination: mail that ends in one of our own domains, or in relay_domains
 * without sender-specified routing (unless allow_untrusted_routing).
 */
export function isAuthorizedDestination(config: Config, r: ResolvedRecipient): boolean {
  if (ours(r.addressClass)) return true;
  if (r.addressClass === "relay") return !r.routed || config.bool("allow_untrusted_routing");
  return false;
}

export type RecipientStatus = { known: true } | { known: false; table: string; code: number };

/**
 * Is the recipient known in its class's table (reject_unlisted_recipient)?
 * Classes without a table (relay with empty relay_recipient_maps, default)
 * know everyone. virtual_alias_maps are asked first, for every class.
 */
export async function recipientStatus(config: Config, r: ResolvedRecipient): Promise<RecipientStatus> {
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
  if (config.list("virtual_alias_maps").length && (await find("virtual_alias_maps", r.addressClass === "local"))) return { known: true };
  switch (r.addressClass) {
    case "local": {
      const maps = config.list("local_recipient_maps");
      if (maps.length === 0) return { known: true };
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
