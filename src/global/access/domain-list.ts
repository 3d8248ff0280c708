/**
 * Postfix's domain lists: mydestination, virtual_alias_domains and
 * virtual_mailbox_domains (string_list: a name matches itself only),
 * relay_domains and fast_flush_domains (domain_list, named in
 * parent_domain_matches_subdomains: a name matches itself and its
 * subdomains, `.name` only its subdomains).
 * One mechanism with the other string lists (string-list.ts): names,
 * `!` negation, `/file/name` read as more patterns, `type:table` looked up
 * (static: matches every name), case folded.
 *
 * A table entry is looked up with the domain; in a list whose names match
 * subdomains, a table of literal keys is also asked for each parent
 * domain (sub.example.com, then example.com, then com), as Postfix's
 * match_hostname does; pattern tables (regexp:, pcre:) see the domain
 * only.
 *
 * A table that cannot answer, or a /file/name that cannot be read, throws
 * TableError: callers treat it as a temporary failure (451 4.3.0 at RCPT,
 * a deferral in the queue manager), never as "not in the list", as
 * Postfix's MATCH_FLAG_RETURN lists do.
 *
 * XXX: a /file/name is read again at each lookup of a list that names one
 * (Postfix reads it once, at start): a change applies at once, and a big
 * file costs on every recipient; prefer a table for long lists.
 *
 * Runs wherever the resolver runs (smtpd, the queue manager and cleanup as
 * mail_owner; the local service as root) and in `postern check`. The domain
 * is untrusted (from an SMTP client or a queue file) and reaches tables
 * only as a lookup key; the lists are the administrator's.
 */
import type { Config } from "../config/config.ts";
import { ConfigError } from "../config/source.ts";
import { openTable } from "../tables/open-table.ts";
import { TableError } from "../tables/table.ts";
import { matchStringList } from "./string-list.ts";

/** The domain lists the resolver consults, in the order of their classes. */
export const DOMAIN_LISTS = ["mydestination", "virtual_alias_domains", "virtual_mailbox_domains", "relay_domains"] as const;
export type DomainListName = (typeof DOMAIN_LISTS)[number];

/** Lists whose names match subdomains too: those of Postfix's default parent_domain_matches_subdomains (postern does not change it) that are domain lists. */
function matchesSubdomains(param: string): boolean {
  return param === "relay_domains" || param === "fast_flush_domains";
}

/** match_hostname's name patterns for a list with parent matching: the name itself, its subdomains; ".name" only its subdomains. */
function hostnameLiteral(pattern: string, domain: string): boolean {
  const p = pattern.replace(/\.$/, "");
  if (p.startsWith(".")) return domain.endsWith(p);
  return domain === p || domain.endsWith(`.${p}`);
}

/** A string_list's name patterns: the name itself (a trailing dot in the list is no difference). */
function exactLiteral(pattern: string, domain: string): boolean {
  return pattern.replace(/\.$/, "") === domain;
}

/** sub.example.com -> example.com, com (the parent domains a table of literal keys is asked for). */
function parentDomains(domain: string): string[] {
  const out: string[] = [];
  for (let dot = domain.indexOf("."); dot >= 0 && dot < domain.length - 1; dot = domain.indexOf(".", dot + 1)) out.push(domain.slice(dot + 1));
  return out;
}

/**
 * Whether `domain` is in the list `param` (its expanded value). A trailing dot of the domain is
 * ignored. Throws TableError when a table or file of the list cannot answer.
 */
export async function domainListMatches(config: Config, param: string, domain: string): Promise<boolean> {
  const patterns = config.list(param);
  if (patterns.length === 0) return false;
  const parent = matchesSubdomains(param);
  const key = domain.toLowerCase().replace(/\.$/, "");
  if (key === "") return false;
  const literal = parent ? hostnameLiteral : exactLiteral;
  // names only (the usual case, asked for every recipient): no file, table or "!" to go through
  if (patterns.every((p) => !p.includes(":") && !p.startsWith("/") && !p.startsWith("!"))) return patterns.some((p) => literal(p.toLowerCase(), key));
  try {
    return await matchStringList(patterns, key, {
      paramName: param,
      fold: true,
      literal,
      lookup: async (spec, k) => {
        const table = openTable(spec, config);
        const found = await table.lookup(k);
        if (found !== undefined || !parent || table.kind !== "fixed") return found;
        for (const p of parentDomains(k)) {
          const v = await table.lookup(p);
          if (v !== undefined) return v;
        }
        return undefined;
      },
    });
  } catch (err) {
    // an unreadable /file/name: Postfix's surrogate table, whose lookups fail
    if (err instanceof ConfigError) throw new TableError(param, err.message.replace(`${param}: `, ""));
    throw err;
  }
}
