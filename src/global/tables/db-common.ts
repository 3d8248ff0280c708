/**
 * What the database tables (sqlite:, mysql:, pgsql:, ldap:) share, as
 * Postfix's cfg_parser.c and db_common.c do for its dict_sqlite/mysql/pgsql/ldap:
 *
 * - the table's configuration file (`name = value`, main.cf syntax), read
 *   once per open; a copy read as root before a daemon's privilege drop
 *   (preloadTableFiles) stands in when the file is root-only (0600, it
 *   holds a password) and the daemon can no longer read it;
 * - the query template (ldap:'s query_filter, and its search_base too): `%s` the key, `%u` its local part (the whole key
 *   when it has no @; an empty local part suppresses the query), `%d` its
 *   domain (no domain suppresses the query), `%1`..`%9` the domain's labels
 *   from the right (too few, or an empty one, suppresses the query), `%S
 *   %U %D` the same as lower case, `%%` a percent sign; every substituted
 *   value goes through the quoting the caller names for that template (SQL
 *   string literals; an LDAP filter's or a DN's escapes);
 * - `result_format`, applied to each non-empty value of each row: `%s %u %d`
 *   are the value and its parts (a value lacking the part is skipped), `%S
 *   %U %D %1-%9` the key's; values are joined with ","; an empty value is
 *   skipped with Postfix's warning;
 * - `domain`: only keys user@DOMAIN (non-empty user) with DOMAIN in this
 *   Postfix string list (names, !name, /file, type:table) are looked up;
 * - `expansion_limit`: more result values than this is a temporary error;
 * - the legacy `table`, `select_field`, `where_field`,
 *   `additional_conditions` that stand for a query.
 *
 * A template with an unknown `%x` is a configuration error (Postfix stops
 * with a fatal error; here the lookup fails with TableError).
 *
 * Runs in every process that looks tables up. The configuration file is
 * trusted (root's); keys are untrusted and reach a query only through the
 * backend's quoting.
 */
import { readFileSync } from "node:fs";
import { log } from "../../util/log.ts";
import { matchStringList } from "../access/string-list.ts";
import type { Config } from "../config/config.ts";
import { splitList } from "../config/value-text.ts";
import { logicalLines } from "./logical-lines.ts";
import { describeFsError } from "./reloading-file.ts";
import { TableError } from "./table.ts";

/** The `name = value` settings of a table's configuration file. */
export class TableSettings {
  constructor(
    readonly spec: string,
    readonly path: string,
    readonly values: ReadonlyMap<string, string>,
  ) {}

  value(name: string, fallback: string): string;
  value(name: string): string | undefined;
  value(name: string, fallback?: string): string | undefined {
    return this.values.get(name) ?? fallback;
  }

  /** A non-negative integer setting; anything else is a configuration error. */
  number(name: string, fallback: number, min = 0): number {
    const v = this.values.get(name);
    if (v === undefined || v === "") return fallback;
    if (!/^\d{1,9}$/.test(v) || Number(v) < min) throw new TableError(this.spec, `${this.path}: bad numerical configuration: ${name} = ${v}`);
    return Number(v);
  }

  /** Postfix's cfg_get_bool: yes/no/true/false/1/0. */
  flag(name: string, fallback: boolean): boolean {
    const v = this.values.get(name)?.toLowerCase();
    if (v === undefined || v === "") return fallback;
    if (["yes", "true", "1"].includes(v)) return true;
    if (["no", "false", "0"].includes(v)) return false;
    throw new TableError(this.spec, `${this.path}: bad boolean configuration: ${name} = ${v}`);
  }
}

/** Files read before the privilege drop, by path. */
const preloaded = new Map<string, string>();

/**
 * Postfix's main.cf syntax for a table file: logical lines of `name = value`;
 * `warn` hears about lines that are neither (line number and message).
 */
export function parseSettingsText(text: string, warn?: (line: number, message: string) => void): Map<string, string> {
  const v = new Map<string, string>();
  for (const l of logicalLines(text)) {
    const m = /^([A-Za-z0-9_]+)\s*=\s*([\s\S]*)$/.exec(l.text);
    if (m) v.set(m[1]!, m[2]!.trim());
    else warn?.(l.line, 'ignoring text without "name = value"');
  }
  return v;
}

/**
 * Reads a table's configuration file. When the process may no longer read
 * it (a root-only file after the privilege drop), the copy that
 * preloadTableFiles() read as root serves.
 */
export function readTableSettings(spec: string, path: string): TableSettings {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const copy = preloaded.get(path);
    if (copy === undefined) throw new TableError(spec, `open ${path}: ${describeFsError(err)}`);
    text = copy;
  }
  return new TableSettings(spec, path, parseSettingsText(text, (line, message) => log.warn(`${path}, line ${line}: ${message}`)));
}

/** Table types whose `type:/path` names a configuration file that may hold a password. */
export const SETTINGS_FILE_TYPES = new Set(["mysql", "pgsql", "ldap"]);

/** The settings of those files that hold a password (mysql:/pgsql:'s, ldap:'s), for postern check's warning. */
export const PASSWORD_SETTINGS = ["password", "bind_pw"];

/** Every `type:/path` of those types that the configuration's parameters (and services' overrides) name. */
export function settingsFilesOf(config: Config): { param: string; type: string; path: string }[] {
  const out: { param: string; type: string; path: string }[] = [];
  const scan = (param: string, raw: string, value: () => string) => {
    if (!raw.includes(":") && !raw.includes("$")) return;
    let text: string;
    try {
      text = value();
    } catch {
      return;
    }
    for (const word of splitList(text)) {
      let w = word;
      while (w.startsWith("proxy:")) w = w.slice("proxy:".length);
      const m = /^([a-z0-9_]+):(\/\S+)$/.exec(w);
      if (m && SETTINGS_FILE_TYPES.has(m[1]!)) out.push({ param, type: m[1]!, path: m[2]! });
    }
  };
  for (const name of config.setNames()) scan(name, config.raw(name) ?? "", () => config.str(name));
  let services: ReturnType<Config["services"]> = [];
  try {
    services = config.services();
  } catch {
    // a broken services table is reported by validate()
  }
  for (const svc of services) {
    for (const [name, v] of svc.overrides) scan(`services.${svc.name}.${name}`, v.text, () => config.withOverrides(new Map([[name, v]])).str(name));
  }
  return out;
}

/**
 * Reads, while the process is still root, the configuration files of the
 * database tables the configuration names, as Postfix's daemons open their
 * tables before they drop privileges: a 0600 root file with a password works.
 * Returns the complaints (unreadable files) for the caller to log.
 */
export function preloadTableFiles(config: Config): string[] {
  const problems: string[] = [];
  for (const { param, path } of settingsFilesOf(config)) {
    if (preloaded.has(path)) continue;
    try {
      preloaded.set(path, readFileSync(path, "utf8"));
    } catch (err) {
      problems.push(`${param}: cannot read ${path}: ${describeFsError(err)}`);
    }
  }
  return problems;
}

/** The legacy keys' query (db_common_sql_build_query), or the `query` setting. */
export function queryOf(s: TableSettings): string {
  const query = s.value("query");
  if (query) return query;
  const need = (name: string) => {
    const v = s.value(name);
    if (!v) throw new TableError(s.spec, `${s.path}: missing "query" setting (or the legacy "${name}")`);
    return v;
  };
  const table = need("table");
  const select = need("select_field");
  const where = need("where_field");
  return `SELECT ${select} FROM ${table} WHERE ${where}='%s' ${s.value("additional_conditions", "")}`;
}

/** What a template asks of the key and of the value (db_common_parse's flags). */
interface TemplateNeeds {
  keyUser: boolean;
  keyDomain: boolean;
  valueUser: boolean;
  valueDomain: boolean;
  /** The highest %1-%9. */
  labels: number;
}

function parseTemplate(spec: string, what: "query" | "result", template: string, needs: TemplateNeeds): void {
  for (let i = 0; i < template.length; i++) {
    if (template[i] !== "%") continue;
    const c = template[++i];
    switch (c) {
      case "%":
      case "s":
      case "S":
        break;
      case "u":
        if (what === "query") needs.keyUser = true;
        else needs.valueUser = true;
        break;
      case "d":
        if (what === "query") needs.keyDomain = true;
        else needs.valueDomain = true;
        break;
      case "U":
        needs.keyUser = true;
        break;
      case "D":
        needs.keyDomain = true;
        break;
      default:
        if (c !== undefined && c >= "1" && c <= "9") {
          needs.labels = Math.max(needs.labels, Number(c));
          needs.keyDomain = true;
        } else throw new TableError(spec, `invalid ${what} template: ${template}`);
    }
  }
}

interface Parts {
  whole: string;
  /** The local part, or the whole string when it has no @. */
  user: string;
  /** After the last @, or undefined. */
  domain: string | undefined;
}

function partsOf(s: string): Parts {
  const at = s.lastIndexOf("@");
  return at < 0 ? { whole: s, user: s, domain: undefined } : { whole: s, user: s.slice(0, at), domain: s.slice(at + 1) };
}

/** Whether `p` has what the flags need (an empty user or domain counts as missing). */
function satisfies(p: Parts, user: boolean, domain: boolean, labels: number): boolean {
  if (domain && !p.domain) return false;
  if (user && p.domain !== undefined && p.user === "") return false;
  if (labels > 0) {
    const l = p.domain!.split(".");
    if (l.length < labels) return false;
    for (let i = 0; i < labels; i++) if (l[l.length - 1 - i] === "") return false;
  }
  return true;
}

/** Quotes one substituted value for where the template puts it (an SQL string literal, an LDAP filter, a DN). */
export type Quote = (value: string) => string;

/** Whether a template substitutes anything of the key or value (has a `%` other than `%%`). */
export function templateUsesKey(template: string): boolean {
  return /%[^%]/.test(template.replace(/%%/g, ""));
}

export interface DbTemplateOptions {
  /** Replaces the file's result_format (ldap:'s older name for it, result_filter). */
  resultFormat?: string;
  /** More templates filled from the key like the query, each quoted its own way when expanded (ldap:'s search_base). */
  keyTemplates?: readonly string[];
}

/**
 * The query and result templates of one table, with its domain list and
 * expansion limit: everything of a lookup but running the query.
 */
export class DbTemplates {
  readonly #needs: TemplateNeeds = { keyUser: false, keyDomain: false, valueUser: false, valueDomain: false, labels: 0 };
  readonly query: string;
  readonly resultFormat: string;
  readonly expansionLimit: number;
  readonly #domains: string[] | undefined;
  readonly #keyTemplates: readonly string[];

  /** `query` replaces the file's query (a backend's own legacy form, ldap:'s query_filter). */
  constructor(
    readonly settings: TableSettings,
    query?: string,
    options: DbTemplateOptions = {},
  ) {
    this.query = query ?? queryOf(settings);
    this.resultFormat = options.resultFormat ?? settings.value("result_format", "%s");
    this.expansionLimit = settings.number("expansion_limit", 0);
    this.#keyTemplates = options.keyTemplates ?? [];
    // a key must fill every key template: their needs add up, as in Postfix's one db_common context per table
    for (const t of this.#keyTemplates) parseTemplate(settings.spec, "query", t, this.#needs);
    parseTemplate(settings.spec, "query", this.query, this.#needs);
    parseTemplate(settings.spec, "result", this.resultFormat, this.#needs);
    const domain = settings.value("domain", "");
    // plain names compare in lower case, as keys are folded
    this.#domains = domain ? splitList(domain).map((p) => (/^!*[^/:]*$/.test(p) ? p.toLowerCase() : p)) : undefined;
  }

  /** db_common_check_domain: false when the `domain` list rules the key out. */
  async domainAllows(key: string): Promise<boolean> {
    if (!this.#domains) return true;
    const p = partsOf(key);
    if (!p.domain || p.user === "") return false;
    const spec = this.settings.spec;
    try {
      return await matchStringList(this.#domains, p.domain.toLowerCase(), {
        paramName: `${this.settings.path}: domain`,
        lookup: async (table, k) => (await import("./open-table.ts")).openTable(table).lookup(k),
      });
    } catch (err) {
      if (err instanceof TableError) throw err;
      throw new TableError(spec, `"domain" pattern match failed for "${key}": ${(err as Error).message}`);
    }
  }

  /** The query for `key` with every substitution quoted, or undefined when the key cannot fill the templates. */
  expandQuery(key: string, quote: Quote): string | undefined {
    return this.expandKeyTemplate(this.query, key, quote);
  }

  /** The query or one of the options' keyTemplates filled from `key` with `quote`; undefined when the key cannot fill the templates. */
  expandKeyTemplate(template: string, key: string, quote: Quote): string | undefined {
    // only a parsed template: an unknown %x in another would reach #expand unchecked
    if (template !== this.query && !this.#keyTemplates.includes(template)) throw new Error(`not a key template of ${this.settings.spec}: ${template}`);
    if (key === "") return undefined;
    const k = partsOf(key);
    const n = this.#needs;
    if (!satisfies(k, n.keyUser, n.keyDomain, n.labels)) return undefined;
    return this.#expand(template, k, k, quote);
  }

  /** One non-empty result value through result_format; undefined when the value lacks a part the format uses. */
  formatValue(key: string, value: string): string | undefined {
    const v = partsOf(value);
    const n = this.#needs;
    if (!satisfies(v, n.valueUser, n.valueDomain, 0)) return undefined;
    return this.#expand(this.resultFormat, v, partsOf(key), (x) => x);
  }

  /**
   * Applies result_format to the values of the rows, in order: null and
   * empty values are skipped, as are values that lack a part the format
   * uses. More than expansion_limit values throws TableError.
   */
  formatResults(key: string, rows: readonly (readonly (string | null)[])[]): string | undefined {
    const out: string[] = [];
    for (const row of rows) {
      for (const value of row) {
        if (value === null) continue;
        if (value === "") {
          log.warn(`table "${this.settings.spec}": empty lookup result for: "${key}" -- ignored`);
          continue;
        }
        const formatted = this.formatValue(key, value);
        if (formatted === undefined) continue;
        out.push(formatted);
        if (this.expansionLimit > 0 && out.length > this.expansionLimit) {
          throw new TableError(this.settings.spec, `${this.settings.path}: Expansion limit exceeded for key: "${key}"`);
        }
      }
    }
    const joined = out.join(",");
    return joined === "" ? undefined : joined;
  }

  /** Expands `template`: lower case from `v`, upper case and digits from `k`. */
  #expand(template: string, v: Parts, k: Parts, quote: Quote): string {
    let out = "";
    for (let i = 0; i < template.length; i++) {
      const c = template[i]!;
      if (c !== "%") {
        out += c;
        continue;
      }
      const e = template[++i]!;
      switch (e) {
        case "%":
          out += "%";
          break;
        case "s":
          out += quote(v.whole);
          break;
        case "S":
          out += quote(k.whole);
          break;
        case "u":
          out += quote(v.user);
          break;
        case "U":
          out += quote(k.user);
          break;
        case "d":
          out += quote(v.domain!);
          break;
        case "D":
          out += quote(k.domain!);
          break;
        default: {
          // %1-%9: parseTemplate allowed nothing else, satisfies() checked the labels
          const labels = k.domain!.split(".");
          out += quote(labels[labels.length - Number(e)]!);
        }
      }
    }
    return out;
  }
}
