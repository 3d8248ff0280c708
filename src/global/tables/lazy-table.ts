/**
 * A table whose backend module is still loading: what openTable() returns
 * for an ldap:, mysql: or pgsql: table opened before any table of its type
 * in this process (open-table.ts starts the import at that first open). A
 * daemon that uses none of these types never loads their clients (Bun's
 * SQL client, the LDAP client): issue 16, memory per process.
 *
 * Lookups wait for the backend, then go to it. A backend that cannot be
 * loaded makes every lookup throw TableError (the caller defers), never
 * "not found". owner() before the backend is there answers from the
 * settings file's owner, as these backends do.
 *
 * Runs in whichever process opens the table, with its rights; trusts the
 * specification (configuration) as openTable() does.
 */
import { fileOwner } from "./reloading-file.ts";
import { TableError, type Table, type TableOwner } from "./table.ts";

export class LazyTable implements Table {
  readonly kind = "fixed";
  #backend: Table | undefined;
  #error: TableError | undefined;
  #closed = false;
  readonly #ready: Promise<void>;

  /** `path` is the table's settings file (the name after `type:`); `load` resolves to the opened backend. */
  constructor(
    readonly spec: string,
    readonly path: string,
    load: Promise<Table>,
  ) {
    this.#ready = load.then(
      (backend) => {
        this.#backend = backend;
        if (this.#closed) backend.close();
      },
      (err: unknown) => {
        this.#error = err instanceof TableError ? err : new TableError(spec, `cannot load the table's backend: ${(err as Error)?.message ?? err}`);
      },
    );
  }

  /** The backend once loaded; throws the load's TableError when it failed. */
  async backend(): Promise<Table> {
    await this.#ready;
    if (this.#error) throw this.#error;
    return this.#backend!;
  }

  async lookup(key: string): Promise<string | undefined> {
    if (this.#closed) throw new TableError(this.spec, "table is closed");
    return (await this.backend()).lookup(key);
  }

  owner(): TableOwner {
    if (this.#backend) return this.#backend.owner();
    if (this.#error) throw this.#error;
    return fileOwner(this.spec, this.path);
  }

  close(): void {
    this.#closed = true;
    this.#backend?.close();
  }
}
