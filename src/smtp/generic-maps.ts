/**
 * generic(5) mapping on the way out, as Postfix's smtp(8) and lmtp(8) do it
 * with smtp_generic_maps / lmtp_generic_maps (smtp_map11): the envelope
 * sender (MAIL FROM), each envelope recipient (RCPT TO) and the addresses
 * of the message's primary sender and recipient headers (From:, Sender:,
 * Reply-To:, To:, Cc:, Resent-*, ...) are looked up once each, not
 * recursively, in the lookup order canonical(5) uses (cleanup's mapAddress:
 * user+ext@domain, user@domain, user+ext and user for a local domain,
 * @domain). The first address of a result is used (a warning for more); an
 * extension the key left out is copied when propagate_unmatched_extensions
 * names "generic". The null sender is never looked up, nor are headers of
 * attached messages (Postfix turns MIME processing off for this).
 *
 * A table that cannot be read throws GenericMapError: the agent defers the
 * delivery (4.3.0) and sends nothing unrewritten. Runs in the SMTP/LMTP
 * client (in the queue manager's process, as mail_owner); addresses and
 * headers come from the queue file and are untrusted (the header parse is
 * bounded by header_address_token_limit), the tables are the
 * administrator's.
 */
import type { Config } from "../global/config/config.ts";
import { canonicalOptions } from "../global/address/canonical.ts";
import { rewriteAddressHeader } from "../global/address/header-rewrite.ts";
import { parseAddressList } from "../global/address/parse.ts";
import { headerClass } from "../global/message/header-names.ts";
import { splitMessage } from "../global/message/header-split.ts";
import { isLocalDomain } from "../global/rewrite/resolve.ts";
import { openTables } from "../global/tables/open-table.ts";
import { TableError } from "../global/tables/table.ts";
import { mapAddress, type AddressMapOptions } from "../cleanup/address-map.ts";
import { CleanupDeferral } from "../cleanup/rewrite-error.ts";

export interface GenericMapSettings {
  /** "smtp_generic_maps" or "lmtp_generic_maps": the name in warnings. */
  title: string;
  options: AddressMapOptions;
  tokenLimit: number;
}

/** A generic table could not be read, or gave no address: the delivery waits. */
export class GenericMapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GenericMapError";
  }
}

/** The settings, or undefined when the table list is empty. */
export function genericMapSettings(config: Config, specs: readonly string[], lmtp: boolean): GenericMapSettings | undefined {
  if (specs.length === 0) return undefined;
  return {
    title: `${lmtp ? "lmtp" : "smtp"}_generic_maps`,
    tokenLimit: config.int("header_address_token_limit"),
    options: {
      tables: openTables([...specs], config),
      delimiter: config.str("recipient_delimiter"),
      propagate: config
        .list("propagate_unmatched_extensions")
        .map((w) => w.toLowerCase())
        .includes("generic"),
      canonical: canonicalOptions(config, "local"),
      isLocalDomain: (domain) => isLocalDomain(config, domain),
      ownerRequestSpecial: config.bool("owner_request_special"),
      doubleBounceSender: config.str("double_bounce_sender"),
    },
  };
}

/** One address through the table (Postfix's smtp_map11_internal); the null address stays. */
export async function mapGeneric(address: string, s: GenericMapSettings | undefined, warnings: string[] = []): Promise<string> {
  if (!s || address === "") return address;
  let found: string[] | undefined;
  try {
    found = await mapAddress(address, s.options, s.title);
  } catch (err) {
    if (err instanceof TableError) throw new GenericMapError(`${s.title} map lookup problem for ${address} (${err.message})`);
    if (err instanceof CleanupDeferral) throw new GenericMapError(err.warning);
    throw err;
  }
  if (!found) return address;
  if (found.length > 1) warnings.push(`multi-valued ${s.title} result for ${address}`);
  return found[0]!;
}

const latin1 = (s: string) => Buffer.from(s, "utf8").toString("latin1");
const utf8 = (s: string) => Buffer.from(s, "latin1").toString("utf8");

/**
 * The message with its primary sender and recipient headers mapped; the
 * same bytes when nothing changed. Content is the queue's form (LF line
 * ends); headers that are not rewritten keep their bytes.
 */
export async function mapGenericHeaders(content: Uint8Array, s: GenericMapSettings | undefined, warnings: string[] = []): Promise<Uint8Array> {
  if (!s) return content;
  const split = splitMessage(content, { lineLengthLimit: content.length + 1, headerSizeLimit: Number.POSITIVE_INFINITY });
  // header text is latin1 ("binary"); the tables see UTF-8
  const mapped = new Map<string, string>();
  for (const h of split.headers) {
    const cls = headerClass(h.name);
    if (!cls?.sender && !cls?.recipient) continue;
    for (const a of parseAddressList(h.text.slice(h.text.indexOf(":") + 1), s.tokenLimit)) {
      if (a.address === "" || mapped.has(a.address)) continue;
      mapped.set(a.address, latin1(await mapGeneric(utf8(a.address), s, warnings)));
    }
  }
  let changed = false;
  const lines = split.headers.map((h) => {
    const cls = headerClass(h.name);
    if (!cls?.sender && !cls?.recipient) return h.text;
    const out = rewriteAddressHeader(h.text, (a) => mapped.get(a) ?? a, s.tokenLimit);
    if (out.changed) changed = true;
    return out.text;
  });
  if (!changed) return content;
  const body = Buffer.from(content.buffer, content.byteOffset, content.byteLength).subarray(split.bodyOffset);
  return Buffer.concat([Buffer.from(`${lines.join("\n")}\n`, "latin1"), body]);
}
