/**
 * Postfix's string list (match_list/string_list), as used by
 * authorized_submit_users, authorized_mailq_users and authorized_flush_users,
 * and (through domain-list.ts, with case folding and a host name matcher)
 * by the domain lists mydestination, virtual_alias_domains,
 * virtual_mailbox_domains and relay_domains: patterns separated by commas
 * or blanks, the first that matches decides.
 *
 * - `name` matches that exact string (case matters, as with Postfix's user
 *   lists, unless the caller folds case; a caller may pass its own literal
 *   matcher, as domain lists do for parent domains);
 * - `!pattern` inverts: when the pattern matches, the answer is "no";
 * - `/file/name` stands for the patterns in that file (blanks, commas and
 *   new lines separate them; `#` starts a comment line);
 * - `type:table` matches when the key is found in the table; `static:` tables
 *   find every key, so `static:anyone` matches everybody. Other table types
 *   need the lookup-table layer, which the caller passes in as `lookup`;
 *   without it they are a configuration error.
 *
 * No pattern matching means "no". An empty list matches nothing. The patterns
 * come from the configuration (trusted); the key is a user name.
 */
import { readFileSync } from "node:fs";
import { ConfigError } from "../config/source.ts";
import { splitList } from "../config/value-text.ts";

export interface StringListOptions {
  /** The parameter the list came from, for error messages. */
  paramName: string;
  /** Looks `key` up in a "type:name" table; undefined when not found. */
  lookup?: (table: string, key: string) => Promise<string | undefined>;
  /** Compare case-insensitively: the key and every name pattern are folded to lower case (Postfix's match_list casefolds). */
  fold?: boolean;
  /** Whether a name pattern (already folded when `fold` is set) matches the key; default: equality. */
  literal?: (pattern: string, key: string) => boolean;
}

const MAX_FILE_DEPTH = 10;

function filePatterns(path: string, opts: StringListOptions): string[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${opts.paramName}: cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return splitList(
    text
      .split("\n")
      .filter((l) => !/^\s*#/.test(l))
      .join("\n"),
  );
}

async function matchOne(pattern: string, key: string, opts: StringListOptions, depth: number): Promise<boolean | undefined> {
  let negate = false;
  let p = pattern;
  while (p.startsWith("!")) {
    negate = !negate;
    p = p.slice(1);
  }
  let matched: boolean;
  if (p.startsWith("/")) {
    if (depth >= MAX_FILE_DEPTH) throw new ConfigError(`${opts.paramName}: files nested too deeply at "${p}"`);
    // a decision inside the file is final, a "no" included
    const inner = await matchList(filePatterns(p, opts), key, opts, depth + 1);
    if (inner === undefined) return undefined;
    return negate ? !inner : inner;
  } else if (/^[a-z][a-z0-9_-]*:/i.test(p)) {
    const type = p.slice(0, p.indexOf(":")).toLowerCase();
    if (type === "static") matched = true;
    else if (opts.lookup) matched = (await opts.lookup(p, key)) !== undefined;
    else throw new ConfigError(`${opts.paramName}: lookup table "${p}" is not supported yet; use user names, /file/name or static:anyone`);
  } else {
    const name = opts.fold ? p.toLowerCase() : p;
    matched = opts.literal ? opts.literal(name, key) : name === key;
  }
  if (!matched) return undefined;
  return !negate;
}

/** The first decision in the list, or undefined when no pattern matched. */
async function matchList(patterns: readonly string[], key: string, opts: StringListOptions, depth: number): Promise<boolean | undefined> {
  for (const pattern of patterns) {
    const verdict = await matchOne(pattern, key, opts, depth);
    if (verdict !== undefined) return verdict;
  }
  return undefined;
}

/** True when `key` is in the list. */
export async function matchStringList(patterns: readonly string[], key: string, opts: StringListOptions): Promise<boolean> {
  return (await matchList(patterns, opts.fold ? key.toLowerCase() : key, opts, 0)) ?? false;
}
