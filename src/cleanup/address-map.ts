/**
 * One table lookup of an address as Postfix's mail_addr_map does it for
 * cleanup (canonical(5), virtual(5)): the shared lookupAddress order, then
 * the value split into addresses (commas or blanks), each canonicalized in
 * the local context (a bare `user` gets @$myorigin); a value `@other`
 * keeps the user part (without an unmatched extension); an extension the
 * key left out is copied to every result when `propagate` says so.
 *
 * A table that cannot be read throws TableError (the caller defers); a
 * value with no address in it throws CleanupDeferral, as Postfix treats it
 * as a lookup error. Runs in pickup and smtpd as mail_owner; the address is
 * untrusted envelope or header input, the tables are the administrator's.
 */
import { canonicalizeAddress, type CanonicalOptions } from "../global/address/canonical.ts";
import { extractAddresses } from "../global/address/parse.ts";
import { quoteLocalPart } from "../global/address/quote.ts";
import { lookupAddress } from "../global/tables/address-lookup.ts";
import type { Table } from "../global/tables/table.ts";
import { CleanupDeferral } from "./rewrite-error.ts";

export interface AddressMapOptions {
  tables: readonly Table[];
  /** recipient_delimiter */
  delimiter: string;
  /** propagate_unmatched_extensions names this kind of table. */
  propagate: boolean;
  /** The local rewriting context that result addresses get. */
  canonical: CanonicalOptions;
  /** mydestination and the interface addresses: the bare local part is looked up too. */
  isLocalDomain: (domain: string) => Promise<boolean>;
  ownerRequestSpecial: boolean;
  doubleBounceSender: string;
}

function withExtension(address: string, extension: string): string {
  const at = address.lastIndexOf("@");
  return at < 0 ? address + extension : address.slice(0, at) + extension + address.slice(at);
}

/** The result addresses, or undefined when the address is in no table. `title` names the parameter in warnings. */
export async function mapAddress(address: string, s: AddressMapOptions, title: string): Promise<string[] | undefined> {
  const at = address.lastIndexOf("@");
  const domain = at < 0 ? undefined : address.slice(at + 1);
  const match = await lookupAddress(s.tables, address, s.delimiter, {
    localDomain: domain !== undefined && (await s.isLocalDomain(domain)),
    ownerRequestSpecial: s.ownerRequestSpecial,
    doubleBounceSender: s.doubleBounceSender,
  });
  if (!match) return undefined;
  let value = match.value;
  if (value.startsWith("@")) {
    // @otherdomain: the same user (without its unmatched extension) in the other domain
    let user = at < 0 ? address : address.slice(0, at);
    if (match.unmatchedExtension) user = user.slice(0, user.length - match.unmatchedExtension.length);
    value = quoteLocalPart(user) + value;
  }
  const extension = s.propagate ? match.unmatchedExtension : undefined;
  const out = extractAddresses(value)
    .filter((a) => a !== "")
    .map((a) => canonicalizeAddress(a, s.canonical))
    .map((a) => (extension ? withExtension(a, extension) : a));
  if (out.length === 0) throw new CleanupDeferral(`${title} lookup of ${address} returns non-address result "${match.value}"`, true);
  return out;
}
