/**
 * The lookup-table contract (Postfix's dict): every backend — hash:, texthash:,
 * inline:, static:, regexp:, pcre:, cidr:, unix:, sqlite: — implements it, and
 * one conformance suite (test/unit/global/tables/conformance.test.ts) runs
 * over every backend.
 *
 * Keys arrive as the caller has them; each backend applies Postfix's folding
 * (hash:/texthash:/inline: fold to lower case, regexp: matches as written).
 */
export interface Table {
  /** The specification it was opened with, e.g. "hash:/etc/aliases". */
  readonly spec: string;
  /** The value for `key`, or undefined when there is none. */
  lookup(key: string): Promise<string | undefined>;
  /** Releases files and connections; lookups after close() are an error. */
  close(): void;
}

export class TableError extends Error {
  constructor(
    readonly spec: string,
    message: string,
  ) {
    super(`${spec}: ${message}`);
    this.name = "TableError";
  }
}
