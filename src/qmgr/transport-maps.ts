/**
 * transport_maps for the queue manager: the tables of one configuration,
 * opened on first use and read as one lookup (each key in every table, in
 * order, as Postfix's maps do; regexp:, pcre: and cidr: tables see only the
 * full address). They are this configuration's own table objects, not the
 * process-wide shared ones, so a reload opens them afresh: a table rebuilt
 * with postmap is in use as soon as `postern reload` returns, not only after
 * the tables' own once-a-second change check. They are closed when the
 * configuration is released (src/global/config/generation.ts: a reload
 * retired it and the scheduling rounds that hold it are done).
 *
 * Runs in the queue manager (mail_owner). The specifications come from the
 * configuration; errors in them or in the files surface as TableError at
 * lookup time (the queue manager defers the message).
 */
import type { Config } from "../global/config/config.ts";
import { onConfigReleased } from "../global/config/generation.ts";
import type { TransportLookup } from "../global/rewrite/resolve.ts";
import { openTableUncached } from "../global/tables/open-table.ts";
import type { Table } from "../global/tables/table.ts";

export class TransportMaps {
  readonly #specs: string[];
  readonly #config: Config;
  #tables: Table[] | undefined;

  constructor(config: Config) {
    this.#config = config;
    this.#specs = config.list("transport_maps");
  }

  /**
   * The lookup, or undefined when transport_maps is empty. The caller holds the configuration
   * (holdConfig) while it uses the lookup, so the tables stay open through a reload meanwhile.
   */
  lookup(): TransportLookup | undefined {
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
    onConfigReleased(this.#config, () => {
      for (const t of opened) t.close();
      if (this.#tables === opened) this.#tables = undefined;
    });
    return opened;
  }
}
