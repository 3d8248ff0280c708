/**
 * The client side that mysql: and pgsql: share, as Postfix's dict_mysql.c
 * and dict_pgsql.c do: a list of servers (`hosts`), each with its own
 * connection through Bun's SQL client (a pool of one), opened on first use
 * and shared by concurrent lookups; the query
 * is a text template (db-common.ts) filled in with the quoting of the server
 * that runs it, and sent without parameters, as Postfix sends it.
 *
 * Server choice, as Postfix: a server with an open connection first (UNIX
 * sockets before TCP), at random among equals; otherwise the servers not
 * yet tried and those whose retry time has come (UNIX sockets first, at
 * random). A server that fails to connect or to answer a query is skipped
 * for `retry_interval` seconds (default 60) and the next one is tried. A
 * single server is listed twice, so that one failure of a load balancer is
 * retried at once. Connections idle for `idle_interval` seconds (default 60)
 * are closed and re-opened when needed.
 *
 * A lookup never takes longer than `timeout` seconds (default 10; a postern
 * setting, which Postfix ignores): past it, or when no server answers, it
 * throws TableError and the caller defers (451 4.3.0, a deferred delivery),
 * never "not found".
 *
 * Answers are reused for `cache_time` seconds (a postern setting, default
 * 1, at most 60, 0 turns it off) by the process that got them: a bounded
 * memo keyed by the (folded) key, so that the lookups one message causes in
 * one process (smtpd's RCPT checks and cleanup's expansion, the queue
 * manager's resolving) ask the server once. An entry lives from the moment
 * its query was sent, so a row changed in the database is seen by every
 * lookup that starts `cache_time` seconds after the change. Concurrent
 * identical lookups share one query. A temporary failure is never kept.
 *
 * Runs in every process that looks the table up, with that process's
 * rights; the password comes from the table file (db-common.ts reads a
 * root-only file before the privilege drop). Keys are untrusted: they reach
 * the server only inside string literals, quoted by the backend's quote().
 */
import { SQL } from "bun";
import { log } from "../../util/log.ts";
import { DbTemplates, readTableSettings, type Quote, type TableSettings } from "./db-common.ts";
import { fileOwner } from "./reloading-file.ts";
import { TableError, type Table, type TableOptions, type TableOwner } from "./table.ts";

/** One entry of `hosts`. */
export interface SqlServer {
  /** As written in `hosts`, for messages. */
  label: string;
  unix: boolean;
  /** Bun's options for it, without the pool settings. */
  options: SQL.Options;
}

/** What differs between MySQL and PostgreSQL. */
export interface SqlBackend {
  type: "mysql" | "pgsql";
  /** The servers of `hosts` and the connection options of the file; throws TableError on a bad setting. */
  servers(settings: TableSettings): SqlServer[];
  /** The query when `query` and the legacy keys do not give one (pgsql's select_function). */
  legacyQuery?(settings: TableSettings): string | undefined;
  /** Whether a query that returns no result set (not even an empty one) is an error (mysql's require_result_set). */
  requireResultSet?(settings: TableSettings): boolean;
  /** A query whose one-row answer tells how this server wants string literals quoted. */
  probe: string;
  quoter(probe: (string | null)[]): Quote;
}

const DEFAULT_RETRY = 60;
const DEFAULT_IDLE = 60;
const DEFAULT_TIMEOUT = 10;
const DEFAULT_CACHE_TIME = 1;
const MAX_CACHE_TIME = 60;
/** Answers kept per table per process; the oldest goes first. */
const MEMO_SIZE = 1000;
/**
 * Connections per server per table per process: one, as Postfix has. Bun
 * opens every connection of a pool at once, and a server's connection limit
 * (MariaDB's max_connections is 151) is shared by every table of every
 * process; concurrent lookups wait their turn on the connection.
 */
const POOL_SIZE = 1;

interface ServerState {
  server: SqlServer;
  state: "untried" | "active" | "failed";
  /** When a failed server may be tried again (ms). */
  retryAt: number;
  sql?: SQL;
  quote?: Quote;
  connecting?: Promise<boolean>;
  /** Why it failed last, for the error of a lookup that finds every server waiting out its retry_interval. */
  lastError?: string;
}

interface Loaded {
  templates: DbTemplates;
  servers: ServerState[];
  retryMs: number;
  idleSeconds: number;
  timeoutMs: number;
  requireResultSet: boolean;
  /** How long an answer is reused (ms); 0: never. */
  cacheMs: number;
}

/** A query's answer, or the query in flight, and until when it may be reused (ms, the injected clock's). */
interface MemoEntry {
  answer: Promise<string | undefined>;
  expires: number;
}

class Timeout extends Error {}

/** Settles with `p`, or rejects with Timeout at `deadline` (ms). */
async function before<T>(p: Promise<T>, deadline: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Timeout("timed out")), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Text of a cell: Bun gives strings, numbers, bigints, dates, buffers or null. */
function cellText(cell: unknown): string | null {
  if (cell === null || cell === undefined) return null;
  if (cell instanceof Uint8Array) return new TextDecoder().decode(cell);
  if (cell instanceof Date) return cell.toISOString();
  return String(cell);
}

/** What `.values()` resolves to: rows with metadata, or (a MySQL CALL) a plain array of those. */
type ResultSet = unknown[][] & { columns?: unknown[] | null };

/**
 * The rows of the one result set that returns data, as Postfix takes them:
 * several such sets are an error, none is "not found" or, with
 * `requireResultSet`, an error.
 */
function rowsOf(result: ResultSet, requireResultSet: boolean): unknown[][] {
  const sets = result.columns === undefined ? (result as unknown as ResultSet[]).filter((r) => Array.isArray(r)) : [result];
  const withData = sets.filter((r) => (r.columns?.length ?? 0) > 0);
  if (withData.length > 1) throw new Error("multiple result sets returning data are not supported");
  if (withData.length === 0 && requireResultSet) throw new Error("query returned no result set (require_result_set = yes)");
  return withData[0] ?? [];
}

/** `cache_time`, whole seconds from 0 to MAX_CACHE_TIME. */
function cacheTime(settings: TableSettings): number {
  const seconds = settings.number("cache_time", DEFAULT_CACHE_TIME);
  if (seconds > MAX_CACHE_TIME) throw new TableError(settings.spec, `${settings.path}: cache_time = ${seconds} is more than the ${MAX_CACHE_TIME}s it may be`);
  return seconds;
}

function pick<T>(items: T[]): T | undefined {
  return items.length ? items[Math.floor(Math.random() * items.length)] : undefined;
}

export class SqlTable implements Table {
  readonly kind = "fixed";
  #loaded: Loaded | undefined;
  readonly #fold: boolean;
  #closed = false;
  readonly #memo = new Map<string, MemoEntry>();
  readonly #clock: () => number;

  /** `clock` (ms) decides when a reused answer expires; tests inject one. */
  constructor(
    readonly spec: string,
    readonly path: string,
    readonly backend: SqlBackend,
    options: TableOptions = {},
    clock: () => number = Date.now,
  ) {
    this.#fold = options.fold !== false;
    this.#clock = clock;
  }

  #load(): Loaded {
    if (this.#closed) throw new TableError(this.spec, "table is closed");
    if (!this.#loaded) {
      const settings = readTableSettings(this.spec, this.path);
      const query = settings.value("query") ? undefined : this.backend.legacyQuery?.(settings);
      const templates = new DbTemplates(settings, query);
      let servers = this.backend.servers(settings);
      // Postfix: "don't blacklist the load balancer"
      if (servers.length === 1) servers = [servers[0]!, { ...servers[0]! }];
      this.#loaded = {
        templates,
        servers: servers.map((server) => ({ server, state: "untried", retryAt: 0 })),
        retryMs: settings.number("retry_interval", DEFAULT_RETRY, 1) * 1000,
        idleSeconds: settings.number("idle_interval", DEFAULT_IDLE, 1),
        timeoutMs: settings.number("timeout", DEFAULT_TIMEOUT, 1) * 1000,
        requireResultSet: this.backend.requireResultSet?.(settings) ?? false,
        cacheMs: cacheTime(settings) * 1000,
      };
    }
    return this.#loaded;
  }

  async lookup(rawKey: string): Promise<string | undefined> {
    const loaded = this.#load();
    const { templates } = loaded;
    const key = this.#fold ? rawKey.toLowerCase() : rawKey;
    // a key cannot hold a NUL (Postfix's keys are C strings); nothing else is refused
    if (key.includes("\0") || !(await templates.domainAllows(key))) return undefined;
    // without quoting: only whether the key fills the template
    if (templates.expandQuery(key, (s) => s) === undefined) return undefined;
    if (loaded.cacheMs === 0) return this.#query(loaded, key);
    const now = this.#clock();
    const hit = this.#memo.get(key);
    if (hit && hit.expires > now) return hit.answer;
    this.#memo.delete(key);
    const entry: MemoEntry = { answer: this.#query(loaded, key), expires: now + loaded.cacheMs };
    this.#memo.set(key, entry);
    if (this.#memo.size > MEMO_SIZE) this.#memo.delete(this.#memo.keys().next().value!);
    // a temporary failure is not an answer: the next lookup asks again
    entry.answer.catch(() => {
      if (this.#memo.get(key) === entry) this.#memo.delete(key);
    });
    return entry.answer;
  }

  /** Asks a server; throws TableError when none answers within the timeout. */
  async #query(loaded: Loaded, key: string): Promise<string | undefined> {
    const { templates } = loaded;
    const deadline = Date.now() + loaded.timeoutMs;
    let lastProblem = this.#downReason(loaded);
    for (let attempt = 0; attempt < 100; attempt++) {
      const s = await this.#activeServer(loaded, deadline, (p) => (lastProblem = p));
      if (!s) break;
      const sql = templates.expandQuery(key, s.quote!)!;
      try {
        const result = (await before(s.sql!.unsafe(sql).values(), deadline)) as ResultSet;
        if (this.#closed) throw new TableError(this.spec, "table is closed");
        return templates.formatResults(key, rowsOf(result, loaded.requireResultSet).map((row) => row.map(cellText)));
      } catch (err) {
        if (err instanceof TableError) throw err;
        lastProblem = `query failed: ${err instanceof Timeout ? `no answer from ${s.server.label} within the ${loaded.timeoutMs / 1000}s timeout` : (err as Error).message}`;
        log.warn(`${this.backend.type}:${this.path}: ${lastProblem}`);
        s.lastError = lastProblem;
        this.#down(loaded, s);
      }
      if (Date.now() >= deadline) break;
    }
    throw new TableError(this.spec, lastProblem);
  }

  /** Says why no server is usable: each is waiting out its retry_interval after an error. */
  #downReason(loaded: Loaded): string {
    const last = loaded.servers.find((s) => s.lastError)?.lastError;
    return `no database server is available${last ? ` (last error: ${last})` : ""}`;
  }

  /** Connects to a server as a lookup would (postern check); throws TableError with the reason when none answers. */
  async connectCheck(): Promise<void> {
    const loaded = this.#load();
    let lastProblem = this.#downReason(loaded);
    const s = await this.#activeServer(loaded, Date.now() + loaded.timeoutMs, (p) => (lastProblem = p));
    if (!s) throw new TableError(this.spec, lastProblem);
  }

  /** A server with a working connection, connecting to one if need be; undefined when none answers in time. */
  async #activeServer(loaded: Loaded, deadline: number, problem: (p: string) => void): Promise<ServerState | undefined> {
    for (let tries = 0; tries < 100; tries++) {
      const preferUnix = (list: ServerState[]) => {
        const unix = list.filter((s) => s.server.unix);
        return pick(unix.length ? unix : list);
      };
      const active = preferUnix(loaded.servers.filter((s) => s.state === "active"));
      if (active) return active;
      const now = Date.now();
      const candidate = preferUnix(loaded.servers.filter((s) => s.state === "untried" || (s.state === "failed" && s.retryAt <= now) || s.connecting));
      if (!candidate || now >= deadline) return undefined;
      candidate.connecting ??= this.#connect(loaded, candidate, deadline, problem).finally(() => (candidate.connecting = undefined));
      await candidate.connecting;
    }
    return undefined;
  }

  async #connect(loaded: Loaded, s: ServerState, deadline: number, problem: (p: string) => void): Promise<boolean> {
    const seconds = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
    let sql: SQL | undefined;
    try {
      sql = new SQL({ ...s.server.options, max: POOL_SIZE, idleTimeout: loaded.idleSeconds, connectionTimeout: seconds, onclose: () => {} } as SQL.Options);
      const rows = (await before(sql.unsafe(this.backend.probe).values(), deadline)) as unknown[][];
      if (this.#closed) throw new Error("table is closed");
      s.quote = this.backend.quoter((rows[0] ?? []).map(cellText));
      s.sql = sql;
      s.state = "active";
      return true;
    } catch (err) {
      const why = err instanceof Timeout ? `no answer within the ${loaded.timeoutMs / 1000}s timeout` : (err as Error).message;
      const p = `connect to ${this.backend.type} server ${s.server.label}: ${why}`;
      log.warn(p);
      problem(p);
      s.lastError = p;
      if (sql) void sql.close({ timeout: 0 }).catch(() => {});
      s.state = "failed";
      s.retryAt = Date.now() + loaded.retryMs;
      return false;
    }
  }

  #down(loaded: Loaded, s: ServerState): void {
    const sql = s.sql;
    s.sql = undefined;
    s.quote = undefined;
    s.state = "failed";
    s.retryAt = Date.now() + loaded.retryMs;
    if (sql) void sql.close({ timeout: 0 }).catch(() => {});
  }

  owner(): TableOwner {
    return fileOwner(this.spec, this.path);
  }

  close(): void {
    this.#closed = true;
    this.#memo.clear();
    for (const s of this.#loaded?.servers ?? []) {
      const sql = s.sql;
      s.sql = undefined;
      s.state = "untried";
      if (sql) void sql.close({ timeout: 0 }).catch(() => {});
    }
  }
}
