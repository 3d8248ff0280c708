/**
 * Address masquerading in cleanup (masquerade_domains, ADDRESS_REWRITING_README),
 * as Postfix's cleanup_masquerade: an address whose domain is a subdomain
 * of an entry of masquerade_domains gets that entry as its domain
 * (`user@host.example.com` -> `user@example.com` with `example.com`); the
 * list is tried in order and the first entry the domain is equal to or
 * below decides, so an entry with `!` (`!sub.example.com, example.com`)
 * keeps its subdomains as they are. Users in masquerade_exceptions (names,
 * or tables keyed by the local part) are never masqueraded.
 * masquerade_classes says which addresses are touched (default: the
 * envelope sender and the sender and recipient headers).
 *
 * A table of exceptions that cannot be read throws CleanupDeferral. Runs
 * in pickup and smtpd as mail_owner; addresses are untrusted input.
 */
import type { Config } from "../global/config/config.ts";
import { openTable } from "../global/tables/open-table.ts";
import { TableError, type Table } from "../global/tables/table.ts";
import type { CanonicalClass } from "./canonical-maps.ts";
import { CleanupDeferral } from "./rewrite-error.ts";

type Exception = { negate: boolean; name: string } | { negate: boolean; table: Table };

export interface MasqueradeSettings {
  /** The entries in order, lower case, with their `!` count folded into `truncate`. */
  domains: ReadonlyArray<{ domain: string; truncate: boolean }>;
  exceptions: readonly Exception[];
  classes: ReadonlySet<string>;
}

export function masqueradeSettings(config: Config): MasqueradeSettings | undefined {
  const domains = config
    .list("masquerade_domains")
    .map((raw) => {
      const bangs = /^!*/.exec(raw)![0].length;
      return { domain: raw.slice(bangs).toLowerCase().replace(/^\./, ""), truncate: bangs % 2 === 0 };
    })
    .filter((d) => d.domain !== "");
  if (domains.length === 0) return undefined;
  const exceptions: Exception[] = config.list("masquerade_exceptions").map((raw) => {
    const negate = /^!*/.exec(raw)![0].length % 2 === 1;
    const entry = raw.replace(/^!+/, "");
    return entry.includes(":") ? { negate, table: openTable(entry, config) } : { negate, name: entry.toLowerCase() };
  });
  return { domains, exceptions, classes: new Set(config.list("masquerade_classes").map((c) => c.toLowerCase())) };
}

/** Postfix's string_list match of the local part: the first entry that matches decides. */
async function excepted(name: string, s: MasqueradeSettings): Promise<boolean> {
  for (const e of s.exceptions) {
    if ("name" in e) {
      if (e.name === name.toLowerCase()) return !e.negate;
      continue;
    }
    try {
      if ((await e.table.lookup(name)) !== undefined) return !e.negate;
    } catch (err) {
      if (err instanceof TableError) throw new CleanupDeferral(`masquerade_exceptions map lookup problem (${err.message}) -- message not accepted, try again later`, true);
      throw err;
    }
  }
  return false;
}

/** The address masqueraded for `cls`, or as it is. */
export async function masquerade(address: string, cls: CanonicalClass, s: MasqueradeSettings | undefined): Promise<string> {
  if (!s?.classes.has(cls)) return address;
  const at = address.lastIndexOf("@");
  if (at < 0) return address;
  const domain = address.slice(at + 1).toLowerCase();
  for (const m of s.domains) {
    if (domain === m.domain) return address;
    if (domain.endsWith(`.${m.domain}`)) {
      if (!m.truncate) return address;
      if (s.exceptions.length && (await excepted(address.slice(0, at), s))) return address;
      return `${address.slice(0, at)}@${m.domain}`;
    }
  }
  return address;
}
