/**
 * Postfix's address lookup order over a list of tables (mail_addr_find),
 * as canonical(5), virtual(5), transport(5)-style maps and local(8)'s
 * aliases use it. For `user+ext@domain`:
 *
 *   user+ext@domain, user@domain, user+ext, user, @domain
 *
 * where the extension-less forms are tried only when the local part has an
 * extension, `user+ext` and `user` only when the caller says the domain is
 * local, and every form after the first only in "fixed" tables (a regexp:
 * table sees the whole address once). Each form is tried in every table
 * before the next form. An address without a domain is tried as
 * `user+ext`, then `user`.
 *
 * The local part splits at the first of the recipient_delimiter characters,
 * except for postmaster, MAILER-DAEMON and the double-bounce sender, and
 * (with owner_request_special and "-" among the delimiters) owner-xxx and
 * xxx-request; a split that would leave an empty user is not made.
 *
 * Keys go to the tables as given: each table folds case its own way.
 */
import type { Table } from "./table.ts";

export interface ExtensionOptions {
  /** Postfix's owner_request_special (default yes). */
  ownerRequestSpecial?: boolean;
  /** Postfix's double_bounce_sender (default "double-bounce"). */
  doubleBounceSender?: string;
}

/** Splits `localpart` at the first delimiter character, or returns undefined when it must not be split. */
export function splitExtension(localpart: string, delimiters: string, opts: ExtensionOptions = {}): { user: string; extension: string; delimiter: string } | undefined {
  if (!delimiters) return undefined;
  const lower = localpart.toLowerCase();
  if (lower === "postmaster" || lower === "mailer-daemon" || lower === (opts.doubleBounceSender ?? "double-bounce").toLowerCase()) return undefined;
  if (delimiters.includes("-") && opts.ownerRequestSpecial !== false) {
    if (lower.startsWith("owner-")) return undefined;
    if (lower.length > 8 && lower.endsWith("-request")) return undefined;
  }
  let at = -1;
  for (let i = 0; i < localpart.length; i++) {
    if (delimiters.includes(localpart[i]!)) {
      at = i;
      break;
    }
  }
  if (at <= 0) return undefined;
  return { user: localpart.slice(0, at), extension: localpart.slice(at + 1), delimiter: localpart[at]! };
}

export interface AddressLookupOptions extends ExtensionOptions {
  /** The domain is one of ours (mydestination and friends): also try the bare local part. */
  localDomain?: boolean;
}

export interface AddressMatch {
  value: string;
  /** The key that matched. */
  key: string;
  /** The extension the matching key left out (for propagate_unmatched_extensions), with its delimiter. */
  unmatchedExtension?: string;
}

async function find(tables: readonly Table[], key: string, fixedOnly: boolean): Promise<string | undefined> {
  for (const t of tables) {
    if (fixedOnly && t.kind !== "fixed") continue;
    const v = await t.lookup(key);
    if (v !== undefined) return v;
  }
  return undefined;
}

/** Looks `address` up in Postfix's order; a TableError from any table propagates (the caller defers). */
export async function lookupAddress(
  table: Table | readonly Table[],
  address: string,
  delimiter: string,
  opts: AddressLookupOptions = {},
): Promise<AddressMatch | undefined> {
  const tables = Array.isArray(table) ? (table as readonly Table[]) : [table as Table];
  const at = address.lastIndexOf("@");
  const localpart = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? undefined : address.slice(at + 1);
  const split = localpart ? splitExtension(localpart, delimiter, opts) : undefined;
  const ext = split ? split.delimiter + split.extension : undefined;

  const tries: Array<{ key: string; fixedOnly: boolean; unmatched?: string }> = [{ key: address, fixedOnly: false }];
  if (domain !== undefined) {
    if (split) tries.push({ key: `${split.user}@${domain}`, fixedOnly: true, unmatched: ext });
    if (opts.localDomain && localpart) {
      tries.push({ key: localpart, fixedOnly: true });
      if (split) tries.push({ key: split.user, fixedOnly: true, unmatched: ext });
    }
    tries.push({ key: `@${domain}`, fixedOnly: true });
  } else if (split) {
    tries.push({ key: split.user, fixedOnly: true, unmatched: ext });
  }
  for (const t of tries) {
    const value = await find(tables, t.key, t.fixedOnly);
    if (value !== undefined) return { value, key: t.key, ...(t.unmatched !== undefined ? { unmatchedExtension: t.unmatched } : {}) };
  }
  return undefined;
}

/**
 * local(8)'s alias lookup: the local part as is, then without its extension
 * (fixed tables only). Returns the match and the extension it left out.
 */
export async function lookupLocalpart(
  table: Table | readonly Table[],
  localpart: string,
  delimiter: string,
  opts: ExtensionOptions = {},
): Promise<AddressMatch | undefined> {
  const tables = Array.isArray(table) ? (table as readonly Table[]) : [table as Table];
  const full = await find(tables, localpart, false);
  if (full !== undefined) return { value: full, key: localpart };
  const split = splitExtension(localpart, delimiter, opts);
  if (!split) return undefined;
  const value = await find(tables, split.user, true);
  return value === undefined ? undefined : { value, key: split.user, unmatchedExtension: split.delimiter + split.extension };
}
