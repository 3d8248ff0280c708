/**
 * The lookup-table contract (Postfix's dict): every backend — hash:, texthash:,
 * inline:, static:, regexp:, pcre:, cidr:, unix:, sqlite:, fail: — implements it,
 * and one conformance suite (test/unit/global/tables/conformance.test.ts) runs
 * over every backend. openTable() in open-table.ts turns a "type:name" into one.
 *
 * Keys arrive as the caller has them; each backend applies Postfix's folding
 * (hash:/texthash:/inline:/unix: fold to lower case unless opened with
 * `fold: false`, as `postmap -f` does; regexp:/pcre: match as written, case
 * insensitive unless a pattern toggles its `i` flag).
 *
 * A lookup that cannot be answered (a missing index, an unreadable file, a
 * broken database) throws TableError: callers treat it as a temporary failure
 * (defer), never as "not found".
 */
export interface Table {
  /** The specification it was opened with, e.g. "hash:/etc/aliases". */
  readonly spec: string;
  /**
   * "fixed" tables hold literal keys, so partial keys (user@domain without the
   * extension, @domain) are worth a lookup; "pattern" tables (regexp:, pcre:,
   * cidr:) see only the whole key, as Postfix's DICT_FLAG_FIXED/PATTERN.
   */
  readonly kind: "fixed" | "pattern";
  /** The value for `key`, or undefined when there is none. */
  lookup(key: string): Promise<string | undefined>;
  /**
   * Who owns the table's file, for local(8)'s decision whose rights alias
   * commands and files run with. Reading it may open the table (and throw).
   */
  owner(): TableOwner;
  /** Every entry in table order (postmap -s); absent for tables that cannot list (regexp:, cidr:, static:). */
  entries?(): AsyncIterable<[key: string, value: string]>;
  /** Releases files and connections; lookups after close() are an error. */
  close(): void;
}

/**
 * Postfix's dict owner: "trusted" when root owns the file (or the table lives
 * in the configuration itself, as inline: and static:), "untrusted" with the
 * owner's uid otherwise.
 */
export interface TableOwner {
  status: "trusted" | "untrusted";
  uid: number;
}

export const TRUSTED_OWNER: TableOwner = Object.freeze({ status: "trusted", uid: 0 });

export function ownerOfUid(uid: number): TableOwner {
  return uid === 0 ? TRUSTED_OWNER : { status: "untrusted", uid };
}

/** How a table is opened; the defaults are what daemons want. */
export interface TableOptions {
  /** Fold keys to lower case in fixed-string tables (default true; `postmap -f` turns it off). */
  fold?: boolean;
  /**
   * Refuse `$1`-style substitution in regexp:/pcre: results (local(8) opens
   * alias_maps so: a rule that substitutes is skipped with a warning).
   */
  noRegsub?: boolean;
}

export class TableError extends Error {
  constructor(
    readonly spec: string,
    /** The message without the table name, for commands that name the table themselves. */
    readonly detail: string,
  ) {
    super(`${spec}: ${detail}`);
    this.name = "TableError";
  }
}
