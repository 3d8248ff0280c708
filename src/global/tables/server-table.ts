/**
 * What the tables that ask a lookup server over a LookupPool share
 * (socketmap:, tcp:): the pool, the refusal where unauthenticated data must
 * not be used (a table opened with `noRegsub`, as local(8)'s alias_maps
 * are: Postfix refuses these maps there too), the closed state, and the
 * owner (the configuration's, not a file's). Each protocol adds its own
 * request, framing and reply codes.
 *
 * Runs in the process that looks the table up, as its user; the server is
 * not authenticated and its replies are the subclass's to bound and check.
 */
import { type Endpoint, LookupPool } from "./lookup-pool.ts";
import { TRUSTED_OWNER, TableError, type Table, type TableOptions, type TableOwner } from "./table.ts";

export interface ServerTableOptions extends TableOptions {
  /** The connect-and-reply time limit (Postfix: 100 s, not configurable); for tests. */
  timeoutMs?: number;
}

export abstract class ServerTable implements Table {
  readonly kind = "pattern";
  protected readonly pool: LookupPool;
  readonly #paranoid: boolean;
  readonly #what: string;
  #closed = false;

  /** `what` names the map in the refusal ("tcp map"); `maxBufferedBytes` bounds what the pool holds of a reply. */
  constructor(
    readonly spec: string,
    endpoint: Endpoint,
    what: string,
    maxBufferedBytes: number,
    options: ServerTableOptions,
    defaultTimeoutMs: number,
  ) {
    this.#what = what;
    this.#paranoid = options.noRegsub === true;
    this.pool = new LookupPool(endpoint, options.timeoutMs ?? defaultTimeoutMs, maxBufferedBytes);
  }

  abstract lookup(key: string): Promise<string | undefined>;

  /** Throws TableError when the table is closed, or opened where its unauthenticated answers must not be used. */
  protected checkUsable(): void {
    if (this.#closed) throw new TableError(this.spec, "table is closed");
    if (this.#paranoid) throw new TableError(this.spec, `${this.#what} is not allowed for security-sensitive data`);
  }

  owner(): TableOwner {
    return TRUSTED_OWNER;
  }

  close(): void {
    this.#closed = true;
    this.pool.close();
  }
}
