/**
 * transport_maps for the queue manager: the tables of one configuration,
 * opened on first use and read as one lookup (each key in every table, in
 * order, as Postfix's maps do; regexp:, pcre: and cidr: tables see only the
 * full address). A reload retires the set: the next delivery
 * round opens the tables afresh, so a table rebuilt with postmap is in use
 * as soon as `postern reload` returns, not only after the tables' own
 * once-a-second change check; the retired set is closed when the rounds
 * that hold it are done.
 *
 * Runs in the queue manager (mail_owner). The specifications come from the
 * configuration; errors in them or in the files surface as TableError at
 * lookup time (the queue manager defers the message).
 */
import type { Config } from "../global/config/config.ts";
import type { TransportLookup } from "../global/rewrite/resolve.ts";
import { openTableUncached } from "../global/tables/open-table.ts";
import type { Table } from "../global/tables/table.ts";

export class TransportMaps {
  readonly #specs: string[];
  readonly #config: Config;
  #tables: Table[] | undefined;
  #holders = 0;
  #retired = false;

  constructor(config: Config) {
    this.#config = config;
    this.#specs = config.list("transport_maps");
  }

  /** The lookup for one delivery round, or undefined when transport_maps is empty; pair with release(). */
  acquire(): TransportLookup | undefined {
    this.#holders++;
    if (!this.#specs.length) return undefined;
    return async (key, partial) => {
      this.#tables ??= this.#open();
      for (const t of this.#tables) {
        if (partial && t.kind === "pattern") continue;
        const v = await t.lookup(key);
        if (v !== undefined) return v;
      }
      return undefined;
    };
  }

  #open(): Table[] {
    const opened: Table[] = [];
    try {
      for (const spec of this.#specs) opened.push(openTableUncached(spec, this.#config));
    } catch (err) {
      for (const t of opened) t.close();
      throw err;
    }
    return opened;
  }

  release(): void {
    this.#holders--;
    this.#closeWhenUnused();
  }

  /** A new configuration replaces this set; it closes once no round holds it. */
  retire(): void {
    this.#retired = true;
    this.#closeWhenUnused();
  }

  #closeWhenUnused(): void {
    if (!this.#retired || this.#holders > 0 || !this.#tables) return;
    for (const t of this.#tables) t.close();
    this.#tables = undefined;
  }
}
