/**
 * openTable("type:name") — the one way roles and commands get a lookup
 * table. A process opens each (specification, options) pair once and shares
 * it; file-backed tables follow their files by themselves, so the cache
 * never needs flushing for a rebuilt table. A table opened for a
 * configuration is closed once every configuration generation that opened
 * it is released (a reload replaced it and the work that used it ended:
 * src/global/config/generation.ts), so the tables of a replaced
 * configuration do not stay open for the life of the process, and one in
 * use by a session or delivery is never closed under it. closeAllTables()
 * empties the cache (tests).
 *
 * `proxy:` in front of a specification is accepted and ignored (postern
 * has no proxymap): the lookup runs in the process that needs it, over
 * the table's own kept connection (socketmap:, tcp:, ldap:).
 *
 * The clients of ldap:, mysql: and pgsql: (an LDAP client, Bun's SQL
 * client) load on the first open of a table of their type in a process
 * (LAZY_BACKENDS: the one place that imports them; scripts/check-layers.ts
 * keeps every daemon's static imports away from them): until then such a
 * table is a LazyTable that waits for its backend; afterwards the backend
 * opens directly. A type postern lacks is refused at open time as before.
 *
 * Specifications come from the trusted configuration or a command line;
 * errors in them throw TableError at open time. Problems with the files
 * behind them surface at lookup time, also as TableError.
 */
import type { Config } from "../config/config.ts";
import { generationOf, onConfigReleased, type Generation } from "../config/generation.ts";
import { CidrTable } from "./cidr-table.ts";
import { HashTable } from "./hash-table.ts";
import { FailTable, InlineTable, StaticTable } from "./inline-table.ts";
import { LazyTable } from "./lazy-table.ts";
import { RegexpTable } from "./regexp-table.ts";
import { SocketmapTable } from "./socketmap-table.ts";
import { SqliteTable } from "./sqlite-table.ts";
import { TableError, type Table, type TableOptions } from "./table.ts";
import { TcpTable } from "./tcp-table.ts";
import { TexthashTable } from "./texthash-table.ts";
import { UnixTable } from "./unix-table.ts";

import { INDEXED_TYPES } from "./table-types.ts";

export { INDEXED_TYPES, TABLE_TYPES } from "./table-types.ts";

/** Splits "type:name" (after any proxy: prefixes); the type is undefined when there is no colon. */
export function splitSpec(spec: string): { type: string | undefined; name: string } {
  let s = spec;
  while (s.startsWith("proxy:")) s = s.slice("proxy:".length);
  const colon = s.indexOf(":");
  // "/path:with:colons" has no type; types are short words
  if (colon <= 0 || !/^[a-z0-9_]+$/i.test(s.slice(0, colon))) return { type: undefined, name: s };
  return { type: s.slice(0, colon).toLowerCase(), name: s.slice(colon + 1) };
}

type Opener = (spec: string, name: string, options: TableOptions) => Table;

/** Table types whose backend module is imported on first open (heavy clients most daemons never need). */
const LAZY_BACKENDS: Record<string, () => Promise<Opener>> = {
  ldap: async () => {
    const { LdapTable } = await import("./ldap/ldap-table.ts");
    return (spec, name, options) => new LdapTable(spec, name, options);
  },
  mysql: async () => {
    const { MysqlTable } = await import("./mysql-table.ts");
    return (spec, name, options) => new MysqlTable(spec, name, options);
  },
  pgsql: async () => {
    const { PgsqlTable } = await import("./pgsql-table.ts");
    return (spec, name, options) => new PgsqlTable(spec, name, options);
  },
};
/** The openers of the lazy types whose module has loaded in this process. */
const loadedOpeners = new Map<string, Opener>();
const loadingOpeners = new Map<string, Promise<Opener>>();

/** Starts (once) the import of a lazy type's backend; resolves to its opener. */
function loadOpener(type: string): Promise<Opener> {
  let loading = loadingOpeners.get(type);
  if (!loading) {
    loading = LAZY_BACKENDS[type]!().then((open) => {
      loadedOpeners.set(type, open);
      return open;
    });
    // a failed import is tried again at the next open
    loading.catch(() => loadingOpeners.delete(type));
    loadingOpeners.set(type, loading);
  }
  return loading;
}

/** Opens a table without the cache (postmap, tests); the caller closes it. */
export function openTableUncached(spec: string, config: Config | undefined, options: TableOptions = {}): Table {
  const { type, name } = splitSpec(spec);
  if (type === undefined) throw new TableError(spec, `need dictionary type:name, not "${spec}"`);
  if (INDEXED_TYPES.has(type)) return new HashTable(spec, name, options);
  if (Object.hasOwn(LAZY_BACKENDS, type)) {
    const open = loadedOpeners.get(type);
    if (open) return open(spec, name, options);
    return new LazyTable(spec, name, loadOpener(type).then((o) => o(spec, name, options)));
  }
  switch (type) {
    case "texthash":
      return new TexthashTable(spec, name, options);
    case "inline":
      return new InlineTable(spec, name, options);
    case "static":
      return new StaticTable(spec, name);
    case "regexp":
    case "pcre":
      return new RegexpTable(spec, type, name, options);
    case "cidr":
      return new CidrTable(spec, name);
    case "unix":
      return new UnixTable(spec, name, options);
    case "sqlite":
      return new SqliteTable(spec, name, config, options);
    case "fail":
      return new FailTable(spec);
    case "socketmap":
      return new SocketmapTable(spec, name, options);
    case "tcp":
      return new TcpTable(spec, name, options);
    default:
      throw new TableError(spec, `unsupported dictionary type: ${type}`);
  }
}

/**
 * openTableUncached() with its backend loaded: the backend's own object even for a lazy type (postern
 * check's connection test). Throws TableError as openTableUncached() does, and when the backend cannot load.
 */
export async function openTableLoaded(spec: string, config: Config | undefined, options: TableOptions = {}): Promise<Table> {
  const table = openTableUncached(spec, config, options);
  return table instanceof LazyTable ? table.backend() : table;
}

/**
 * A table of the cache and who holds it: the generations (src/global/config/generation.ts) of
 * the configurations it was opened for, or the whole process (`pinned`).
 */
interface CacheEntry {
  readonly table: Table;
  readonly holders: Set<Generation>;
  pinned: boolean;
}

const cache = new Map<string, CacheEntry>();
const entries = new WeakMap<Table, CacheEntry>();

/**
 * The process-wide shared table for `spec`. Opened for a configuration, it
 * stays open while a generation that opened it lives (a reload retires the
 * old one: its tables close once no work holds it, unless the new one has
 * opened them too); opened without one, or pinned with keepTable(), for the
 * life of the process. Closing it (or closeAllTables()) closes it for every
 * holder and drops it from the cache, so the next openTable() opens it afresh.
 */
export function openTable(spec: string, config?: Config, options: TableOptions = {}): Table {
  const key = `${options.fold === false ? "F" : "f"}${options.noRegsub ? "R" : "r"}:${spec}`;
  let entry = cache.get(key);
  if (!entry) {
    const opened = openTableUncached(spec, config, options);
    const close = opened.close.bind(opened);
    let closed = false;
    opened.close = () => {
      if (closed) return;
      closed = true;
      if (cache.get(key)?.table === opened) cache.delete(key);
      close();
    };
    entry = { table: opened, holders: new Set(), pinned: false };
    cache.set(key, entry);
    entries.set(opened, entry);
  }
  if (!config) entry.pinned = true;
  else holdFor(entry, generationOf(config), config);
  return entry.table;
}

function holdFor(entry: CacheEntry, generation: Generation, config: Config): void {
  if (entry.holders.has(generation)) return;
  entry.holders.add(generation);
  onConfigReleased(config, () => {
    entry.holders.delete(generation);
    if (entry.holders.size === 0 && !entry.pinned) entry.table.close();
  });
}

/**
 * Keeps a table openTable() gave for the life of the process, whatever
 * reloads come: for one opened as root before the privilege drop, which
 * could not be opened again afterwards.
 */
export function keepTable(table: Table): Table {
  const entry = entries.get(table);
  if (entry) entry.pinned = true;
  return table;
}

/** Opens every table of a list parameter's value (e.g. config.list("alias_maps")). */
export function openTables(specs: readonly string[], config?: Config, options: TableOptions = {}): Table[] {
  return specs.map((s) => openTable(s, config, options));
}

/** Looks `key` up in each table in turn; the first value found wins (Postfix's maps_find). */
export async function lookupInTables(tables: readonly Table[], key: string): Promise<string | undefined> {
  for (const t of tables) {
    const v = await t.lookup(key);
    if (v !== undefined) return v;
  }
  return undefined;
}

export function closeAllTables(): void {
  for (const e of [...cache.values()]) e.table.close();
  cache.clear();
}
