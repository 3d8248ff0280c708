/**
 * canonical(5) address mapping in cleanup, as Postfix's cleanup_map11 and
 * its callers: recipient_canonical_maps then canonical_maps for envelope
 * recipients and recipient headers (To:, Cc:, ...), sender_canonical_maps
 * then canonical_maps for the envelope sender and sender headers (From:,
 * Sender:, Reply-To:, ...), each only for the address kinds its
 * *_canonical_classes parameter names (envelope_sender, envelope_recipient,
 * header_sender, header_recipient).
 *
 * One-to-one: the first address of a value is used (a warning for more);
 * the result is looked up again, at most 10 times (Postfix's limit; then a
 * warning and the last result), and an address that maps to itself stops.
 * The extension the key left out is copied when
 * propagate_unmatched_extensions names "canonical". Header addresses are
 * mapped only when cleanup rewrites the message's headers at all
 * (local_header_rewrite_clients, remote_header_rewrite_domain).
 *
 * A table that cannot be read throws CleanupDeferral: the message waits,
 * it is never queued with an address left unmapped. Runs in pickup and
 * smtpd as mail_owner; addresses are untrusted, tables the administrator's.
 */
import type { Config } from "../global/config/config.ts";
import { canonicalOptions } from "../global/address/canonical.ts";
import { parseAddressList } from "../global/address/parse.ts";
import { headerClass } from "../global/message/header-names.ts";
import type { HeaderField } from "../global/message/header-split.ts";
import { isLocalDomain } from "../global/rewrite/resolve.ts";
import { openTables } from "../global/tables/open-table.ts";
import { TableError } from "../global/tables/table.ts";
import { mapAddress, type AddressMapOptions } from "./address-map.ts";
import { CleanupDeferral } from "./rewrite-error.ts";

export type CanonicalClass = "envelope_sender" | "envelope_recipient" | "header_sender" | "header_recipient";

interface OneMap {
  title: string;
  options: AddressMapOptions;
  classes: ReadonlySet<string>;
}

export interface CanonicalMapSettings {
  sender?: OneMap;
  recipient?: OneMap;
  common?: OneMap;
}

/** Postfix's bound on canonical map nesting. */
const MAX_RECURSION = 10;

function oneMap(config: Config, param: string, classesParam: string): OneMap | undefined {
  const specs = config.list(param);
  if (specs.length === 0) return undefined;
  return {
    title: param,
    classes: new Set(config.list(classesParam).map((c) => c.toLowerCase())),
    options: {
      tables: openTables(specs, config),
      delimiter: config.str("recipient_delimiter"),
      propagate: config
        .list("propagate_unmatched_extensions")
        .map((w) => w.toLowerCase())
        .includes("canonical"),
      canonical: canonicalOptions(config, "local"),
      isLocalDomain: (domain) => isLocalDomain(config, domain),
      ownerRequestSpecial: config.bool("owner_request_special"),
      doubleBounceSender: config.str("double_bounce_sender"),
    },
  };
}

/** The settings, or undefined when no canonical map is set. */
export function canonicalMapSettings(config: Config): CanonicalMapSettings | undefined {
  const sender = oneMap(config, "sender_canonical_maps", "sender_canonical_classes");
  const recipient = oneMap(config, "recipient_canonical_maps", "recipient_canonical_classes");
  const common = oneMap(config, "canonical_maps", "canonical_classes");
  if (!sender && !recipient && !common) return undefined;
  return { ...(sender ? { sender } : {}), ...(recipient ? { recipient } : {}), ...(common ? { common } : {}) };
}

/** One table's mapping (Postfix's cleanup_map11). `warnings` gets Postfix's warnings. */
async function map11(address: string, m: OneMap, warnings: string[]): Promise<string> {
  let current = address;
  for (let count = 0; count < MAX_RECURSION; count++) {
    let found: string[] | undefined;
    try {
      found = await mapAddress(current, m.options, m.title);
    } catch (err) {
      if (err instanceof TableError) throw new CleanupDeferral(`${m.title} map lookup problem for ${current} (${err.message}) -- message not accepted, try again later`, true);
      throw err;
    }
    if (!found) return current;
    if (found.length > 1) warnings.push(`multi-valued ${m.title} entry for ${current}`);
    const next = found[0]!;
    const self = next.toLowerCase() === current.toLowerCase();
    current = next;
    if (self) return current;
  }
  warnings.push(`unreasonable ${m.title} map nesting for ${address} -- message not accepted, try again later`);
  return current;
}

/** The address mapped for one class: the sender's or recipient's own maps first, then canonical_maps. */
export async function mapCanonical(address: string, cls: CanonicalClass, s: CanonicalMapSettings | undefined, warnings: string[] = []): Promise<string> {
  if (!s || address === "") return address;
  const own = cls.endsWith("sender") ? s.sender : s.recipient;
  let out = address;
  for (const m of [own, s.common]) if (m?.classes.has(cls)) out = await map11(out, m, warnings);
  return out;
}

/** Header addresses keyed "S\0address" / "R\0address" (after the header canonicalization) to their mapped form. */
export type HeaderAddressMap = ReadonlyMap<string, string>;

/**
 * Looks up, ahead of the (synchronous) header pass, every address of the
 * sender and recipient headers; `canon` is the header canonicalization the
 * header pass applies first, `rewrite` the table-driven rewrites of a class
 * (canonical mapping, then masquerading).
 */
export async function headerAddressMap(
  headers: readonly HeaderField[],
  canon: (address: string) => string,
  rewrite: (address: string, cls: CanonicalClass) => Promise<string>,
  tokenLimit: number,
): Promise<HeaderAddressMap> {
  const out = new Map<string, string>();
  for (const h of headers) {
    const cls = headerClass(h.name);
    if (!cls?.sender && !cls?.recipient) continue;
    const kind: CanonicalClass = cls.sender ? "header_sender" : "header_recipient";
    const value = h.text.slice(h.text.indexOf(":") + 1);
    for (const a of parseAddressList(value, tokenLimit)) {
      if (a.address === "") continue;
      const c = canon(a.address);
      const key = `${kind === "header_sender" ? "S" : "R"}\0${c}`;
      if (out.has(key)) continue;
      const mapped = await rewrite(c, kind);
      if (mapped !== c) out.set(key, mapped);
    }
  }
  return out;
}
