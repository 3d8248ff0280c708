/**
 * `postern check`'s version of the resolver's advice: every domain named in
 * mydestination, virtual_alias_domains, virtual_mailbox_domains or
 * relay_domains (as a name, in a /file/name, or as a key of a table that
 * can list its keys) is classed as the resolver classes it, and a domain
 * that the list of another class also matches gets the warning the
 * resolver logs for it at run time: "do not list domain X in BOTH A and B"
 * (Postfix's trivial-rewrite resolve.c, with helpful_warnings).
 *
 * Tables that cannot list their keys (sqlite:, regexp:, ...) are still
 * looked up for the domains the other lists name, so an overlap is missed
 * only when both lists keep the domain in such tables: the resolver then
 * still warns when mail for it comes.
 *
 * Runs in `postern check` as the invoking user (root on a system). Reads the
 * administrator's lists and tables; a table key is only ever a lookup key.
 */
import type { Config } from "../config/config.ts";
import { splitList } from "../config/value-text.ts";
import { DOMAIN_LISTS, domainListMatches, type DomainListName } from "../access/domain-list.ts";
import { openTable } from "../tables/open-table.ts";
import { TableError } from "../tables/table.ts";
import { OVERLAPPING_LISTS, overlapWarning, type AddressClass } from "./resolve.ts";
import { readFileSync } from "node:fs";

/** Keys read from one listable table, at most: a bigger table is checked for the other lists' names only. */
const MAX_TABLE_KEYS = 10_000;
/** /file/name nesting, as string lists allow. */
const MAX_FILE_DEPTH = 10;

const CLASS_OF: Readonly<Record<DomainListName, AddressClass>> = {
  mydestination: "local",
  virtual_alias_domains: "virtual_alias",
  virtual_mailbox_domains: "virtual_mailbox",
  relay_domains: "relay",
};

const isTable = (word: string) => /^[a-z][a-z0-9_-]*:/i.test(word);

/** The domain names a list's value and files spell out, and the tables it names. */
function listWords(words: readonly string[], names: Set<string>, tables: Set<string>, depth: number): void {
  for (const raw of words) {
    const word = raw.replace(/^!+/, "");
    if (word.startsWith("/")) {
      if (depth >= MAX_FILE_DEPTH) continue;
      let text: string;
      try {
        text = readFileSync(word, "utf8");
      } catch {
        continue; // the lookup reports it
      }
      listWords(splitList(text.split("\n").filter((l) => !/^\s*#/.test(l)).join("\n")), names, tables, depth + 1);
    } else if (isTable(word)) tables.add(word);
    else if (word && !raw.startsWith("!")) names.add(word.toLowerCase().replace(/^\./, "").replace(/\.$/, ""));
  }
}

/** The keys of a table that lists them (hash:, texthash:, inline:, ...) that look like domains. */
async function tableDomains(config: Config, spec: string, names: Set<string>): Promise<void> {
  const table = openTable(spec, config);
  if (table.kind !== "fixed" || !table.entries) return;
  let n = 0;
  for await (const [key] of table.entries()) {
    if (++n > MAX_TABLE_KEYS) break;
    if (!key.includes("@") && /^[a-z0-9.[\]:-]+$/i.test(key)) names.add(key.toLowerCase().replace(/^\./, "").replace(/\.$/, ""));
  }
}

/** The warnings, in Postfix's words; a list that cannot be read here adds one line saying so. */
export async function domainClassOverlaps(config: Config): Promise<string[]> {
  const names = new Set<string>();
  const tables = new Set<string>();
  for (const param of DOMAIN_LISTS) listWords(config.list(param), names, tables, 0);
  const problems = new Set<string>();
  for (const spec of tables) {
    try {
      await tableDomains(config, spec, names);
    } catch (err) {
      if (!(err instanceof TableError)) throw err;
      problems.add(`cannot check the domain lists for a domain in two address classes: ${err.message}`);
    }
  }
  const warnings: string[] = [];
  for (const domain of [...names].sort()) {
    if (!domain) continue;
    const member = new Map<DomainListName, boolean>();
    try {
      for (const param of DOMAIN_LISTS) member.set(param, await domainListMatches(config, param, domain));
    } catch (err) {
      if (!(err instanceof TableError)) throw err;
      problems.add(`cannot check the domain lists for a domain in two address classes: ${err.message}`);
      continue;
    }
    const winner = DOMAIN_LISTS.find((param) => member.get(param));
    if (!winner) continue;
    for (const other of OVERLAPPING_LISTS[CLASS_OF[winner]]) {
      if (member.get(other)) warnings.push(overlapWarning(domain, winner, other));
    }
  }
  return [...warnings, ...problems];
}
