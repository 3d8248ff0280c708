/**
 * ldap: — Postfix's ldap_table(5): `ldap:/etc/postern/ldap-users.cf` names a
 * file of settings (settings.ts has the list and defaults). A lookup:
 *
 * 1. folds the key to lower case (unless opened with fold: false), skips
 *    keys outside `domain`;
 * 2. expands search_base (the key escaped for a DN) and query_filter (the
 *    key escaped for a filter, RFC 4515: `*()\` and NUL as \XX, so a key
 *    never adds filter syntax) with %s %u %d %1-%9 %S %U %D;
 * 3. searches with scope, size_limit and timeout, asking for the terminal,
 *    leaf, regular and special result attributes;
 * 4. takes from each entry the values of the result attributes through
 *    result_format, joined with ","; special_result_attribute values are DNs
 *    or LDAP URLs searched in turn (up to recursion_limit deep); an entry
 *    with a terminal_result_attribute value gives only those, one with a
 *    special attribute value skips leaf_result_attribute.
 *
 * More than size_limit entries, more than expansion_limit values, a result
 * over 16 MiB, a search
 * error, a timeout, a failed bind or an unreachable server throw TableError:
 * the caller defers, never treats the key as absent. A search base that
 * depends on the key and does not exist means "not found".
 *
 * One connection per table and process, opened (trying each server_host in
 * order, each with the timeout for connecting, StartTLS and the bind) at the
 * first lookup, kept, and opened again after a failure; a search that fails
 * because a kept connection was lost is retried once on a new one. Lookups
 * in flight share the connection. The searches of one lookup (special
 * attributes' included) share one timeout.
 *
 * Runs in the process that needs the lookup, as its user. The settings file
 * is trusted and read when the table is opened (it may hold bind_pw); the
 * directory's answers are untrusted and bounded by the client (client.ts).
 * Not implemented: SASL binds, referral chasing, the cache settings (Postfix
 * ignores them too).
 */
import { log } from "../../../util/log.ts";
import { TableError, ownerOfUid, type Table, type TableOptions, type TableOwner } from "../table.ts";
import { BerError } from "./ber.ts";
import { type LdapEntry, LdapClient, LdapConnectionError, LdapTimeoutError, RESULT, describeResult } from "./client.ts";
import { escapeDnValue, escapeFilterValue } from "./filter.ts";
import { type LdapSettings, LdapSettingsError, readLdapSettings } from "./settings.ts";
import { describeUrl, isLdapUrl, parseLdapUrl } from "./url.ts";

/** Postfix's attrdesc_subtype: 1 when `returned` is `configured` or a subtype (`mail;lang-de`), -1 when the reverse, else 0. */
function attributeRelation(configured: string, returned: string): number {
  const a = configured.toLowerCase();
  const b = returned.toLowerCase();
  if (a === b || b.startsWith(`${a};`)) return 1;
  if (a.startsWith(`${b};`)) return -1;
  return 0;
}

interface LookupState {
  key: string;
  /** When the searches of this lookup, special attributes' included, must be done. */
  deadline: number;
  values: string[];
  /** The length of the values so far, for MAX_RESULT_CHARS. */
  chars: number;
  expansion: number;
  recursion: number;
}

/**
 * No lookup result is longer than this, whatever expansion_limit says
 * (Postfix has no such cap; special attributes can multiply a directory's
 * answers, and the result is held in memory).
 */
const MAX_RESULT_CHARS = 16 * 1024 * 1024;

/** What is left of a lookup's time (at least a millisecond: the search then fails with a timeout). */
function remaining(state: LookupState): number {
  return Math.max(1, state.deadline - Date.now());
}

export class LdapTable implements Table {
  readonly kind = "fixed";
  readonly #fold: boolean;
  #settings: LdapSettings | undefined;
  #settingsError: string | undefined;
  #client: LdapClient | undefined;
  #connecting: Promise<LdapClient> | undefined;
  #closed = false;

  constructor(
    readonly spec: string,
    readonly path: string,
    options: TableOptions = {},
  ) {
    this.#fold = options.fold !== false;
    try {
      this.#settings = readLdapSettings(spec, path);
    } catch (err) {
      if (!(err instanceof LdapSettingsError)) throw err;
      this.#settingsError = err.message;
    }
  }

  async lookup(rawKey: string): Promise<string | undefined> {
    if (this.#closed) throw new TableError(this.spec, "table is closed");
    const settings = this.#settings;
    if (!settings) throw new TableError(this.spec, this.#settingsError!);
    // Postfix's keys are C strings: one with a NUL cannot be asked for
    if (rawKey.includes("\0")) return undefined;
    const key = this.#fold ? rawKey.toLowerCase() : rawKey;
    let allowed: boolean;
    try {
      allowed = await settings.templates.domainAllows(key);
    } catch (err) {
      if (!(err instanceof TableError) || err.spec !== this.spec) throw err;
      return this.#fail(err.detail);
    }
    if (!allowed) return undefined;
    const base = settings.templates.expandKeyTemplate(settings.searchBase, key, escapeDnValue);
    const filter = settings.templates.expandQuery(key, escapeFilterValue);
    if (base === undefined || filter === undefined) return undefined;
    const state: LookupState = { key, deadline: 0, values: [], chars: 0, expansion: 0, recursion: 0 };
    for (let attempt = 0; ; attempt++) {
      const reused = this.#client !== undefined && !this.#client.closed;
      const client = await this.#connection(settings);
      try {
        state.values = [];
        state.chars = 0;
        state.expansion = 0;
        state.deadline = Date.now() + settings.timeoutMs;
        const { result, entries } = await client.search(
          {
            base,
            scope: settings.scope,
            deref: settings.dereference,
            sizeLimit: settings.sizeLimit,
            timeLimit: Math.ceil(settings.timeoutMs / 1000),
            filter,
            attributes: settings.attributes,
          },
          remaining(state),
        );
        if (result.code === RESULT.noSuchObject) {
          if (settings.dynamicBase) return undefined;
          return this.#fail(`Search base '${base}' not found: ${describeResult(result)}`);
        }
        if (result.code !== RESULT.success) {
          this.#drop(client);
          return this.#fail(`Search error ${describeResult(result)}`);
        }
        await this.#collect(client, settings, entries, state);
        return state.values.length ? state.values.join(",") : undefined;
      } catch (err) {
        if (err instanceof TableError) throw err;
        // a filter that does not parse never reached the server: the connection is fine
        if (!(err instanceof BerError)) this.#drop(client);
        // a kept connection the server closed (idle timeout, restart) is opened again once; a timeout is final
        if (err instanceof LdapConnectionError && !(err instanceof LdapTimeoutError) && reused && attempt === 0) continue;
        return this.#fail(`Search error: ${(err as Error).message}`);
      }
    }
  }

  /** Postfix's dict_ldap_get_values: the values of the result attributes of `entries`, recursing through special ones. */
  async #collect(client: LdapClient, settings: LdapSettings, entries: LdapEntry[], state: LookupState): Promise<void> {
    state.recursion++;
    try {
      if (settings.sizeLimit && entries.length > settings.sizeLimit) this.#fail(`${this.path}: Query size limit (${settings.sizeLimit}) exceeded`);
      const attrs = settings.attributes;
      for (const entry of entries) {
        const hasValues = (from: number, to: number) =>
          entry.attributes.some((a) => a.values.length > 0 && attrs.slice(from, to).some((c) => attributeRelation(c, a.type) > 0));
        const isTerminal = settings.numTerminal > 0 && hasValues(0, settings.numTerminal);
        const isLeaf = isTerminal || settings.numLeaf === 0 || !hasValues(settings.numAttributes, attrs.length);
        for (const { type, values } of entry.attributes) {
          if (!values.length) continue;
          const i = attrs.findIndex((c) => attributeRelation(c, type) > 0);
          if (i < 0) continue;
          if (i < settings.numAttributes || isTerminal) {
            if ((isTerminal && i >= settings.numTerminal) || (!isLeaf && i < settings.numTerminal + settings.numLeaf)) continue;
            for (const value of values) {
              if (value === "") {
                log.warn(`table "${this.spec}": empty lookup result for: "${state.key}" -- ignored`);
                continue;
              }
              const formatted = settings.templates.formatValue(state.key, value);
              if (formatted === undefined) continue;
              state.values.push(formatted);
              state.chars += formatted.length + 1;
              if (state.chars > MAX_RESULT_CHARS) this.#fail(`${this.path}: result for key '${state.key}' longer than ${MAX_RESULT_CHARS} characters`);
              if (settings.expansionLimit > 0 && ++state.expansion > settings.expansionLimit) {
                this.#fail(`${this.path}: Expansion limit exceeded for key: '${state.key}'`);
              }
            }
          } else if (state.recursion < settings.recursionLimit) {
            for (const value of values) await this.#follow(client, settings, value, state);
          } else {
            this.#fail(`${this.path}: Recursion limit exceeded for special attribute ${type}=${values[0]}`);
          }
        }
      }
    } finally {
      state.recursion--;
    }
  }

  /** Searches what a special_result_attribute value names: a DN, or an LDAP URL (its dn, scope, filter and attributes). */
  async #follow(client: LdapClient, settings: LdapSettings, value: string, state: LookupState): Promise<void> {
    let base = value;
    let scope = 0 as LdapSettings["scope"];
    let filter = "(objectclass=*)";
    let attributes = settings.attributes;
    if (isLdapUrl(value)) {
      const url = parseLdapUrl(value);
      if (!url) this.#fail(`malformed URL ${value}`);
      base = url.dn;
      scope = url.scope ?? 0;
      filter = url.filter ?? filter;
      if (url.attributes.length) {
        // only the attributes both the URL and the table ask for, the more specific spelling of each
        attributes = [];
        for (const a1 of url.attributes) {
          for (const a2 of settings.attributes) {
            const rel = attributeRelation(a1, a2);
            if (rel > 0) attributes.push(a2);
            else if (rel < 0) attributes.push(a1);
          }
        }
        if (!attributes.length) return;
      }
    }
    let found: { result: { code: number; matchedDn: string; message: string }; entries: LdapEntry[] };
    try {
      found = await client.search(
        { base, scope, deref: settings.dereference, sizeLimit: settings.sizeLimit, timeLimit: Math.ceil(remaining(state) / 1000), filter, attributes },
        remaining(state),
      );
    } catch (err) {
      if (err instanceof BerError) this.#fail(`search for ${value}: ${err.message}`);
      throw err;
    }
    if (found.result.code === RESULT.noSuchObject) {
      log.warn(`${this.spec}: DN ${value} not found, skipping`);
      return;
    }
    if (found.result.code !== RESULT.success) this.#fail(`search error ${describeResult(found.result)}`);
    await this.#collect(client, settings, found.entries, state);
  }

  async #connection(settings: LdapSettings): Promise<LdapClient> {
    if (this.#client && !this.#client.closed) return this.#client;
    this.#connecting ??= this.#connect(settings).finally(() => {
      this.#connecting = undefined;
    });
    return await this.#connecting;
  }

  async #connect(settings: LdapSettings): Promise<LdapClient> {
    const problems: string[] = [];
    for (const url of settings.servers) {
      let client: LdapClient;
      try {
        client = await LdapClient.connect(url, { timeoutMs: settings.timeoutMs, tls: settings.tls });
      } catch (err) {
        problems.push(`${describeUrl(url)}: ${(err as Error).message}`);
        continue;
      }
      try {
        if (settings.startTls && url.scheme === "ldap") await client.startTls(settings.tls, url.host || "localhost", settings.timeoutMs);
        if (settings.bind) {
          const result = await client.bind(settings.version, settings.bindDn, settings.bindPw, settings.timeoutMs);
          if (result.code !== RESULT.success) {
            client.close();
            return this.#fail(`Unable to bind to server ${describeUrl(url)} with dn ${settings.bindDn || "empty or implicit"}: ${describeResult(result)}`);
          }
        }
      } catch (err) {
        client.close();
        if (err instanceof TableError) throw err;
        return this.#fail(`${settings.startTls ? "Unable to set STARTTLS or bind" : "Unable to bind"} to server ${describeUrl(url)}: ${(err as Error).message}`);
      }
      if (this.#closed) {
        client.unbind();
        throw new TableError(this.spec, "table is closed");
      }
      this.#client = client;
      return client;
    }
    return this.#fail(`Unable to connect to LDAP server ${problems.join("; ")}`);
  }

  /** Closes `client`; the next lookup connects afresh (unless another lookup already has). */
  #drop(client: LdapClient): void {
    client.close();
    if (this.#client === client) this.#client = undefined;
  }

  #fail(detail: string): never {
    log.warn(`${this.spec}: ${detail}`);
    throw new TableError(this.spec, detail);
  }

  /**
   * Connects, binds and searches as a lookup does, for a key no directory
   * holds (its domain cannot exist, RFC 2606), for postern check; throws
   * TableError with the reason (a wrong bind_pw, an unreachable server).
   */
  async connectCheck(): Promise<void> {
    try {
      await this.lookup("postern-check@probe.invalid");
    } catch (err) {
      if (!(err instanceof TableError)) throw err;
      throw new TableError(this.spec, `test lookup failed: ${err.detail}`);
    }
  }

  owner(): TableOwner {
    if (!this.#settings) throw new TableError(this.spec, this.#settingsError!);
    return ownerOfUid(this.#settings.uid);
  }

  close(): void {
    this.#closed = true;
    this.#client?.unbind();
    this.#client = undefined;
  }
}
