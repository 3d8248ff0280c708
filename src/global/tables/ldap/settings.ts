/**
 * The settings of an ldap: table: Postfix's ldap_table(5) configuration
 * file, `name = value` lines (comments, continuation lines), with Postfix's
 * names and defaults. A value out of range, an unknown `bind` or `scope`
 * or a bad template is an error of the table (every lookup fails with it);
 * settings Postfix only warns about (cache, an unknown version) are warned
 * about here too.
 *
 * The file is trusted configuration, read by whoever opens the table, when
 * it is opened, through db-common.ts as the other database tables' files;
 * it may hold bind_pw, and daemons read it as root before they drop
 * privileges (db-common's preloadTableFiles), so it may be mode 0600.
 */
import { readFileSync, statSync } from "node:fs";
import { log } from "../../../util/log.ts";
import { describeFsError } from "../reloading-file.ts";
import { DbTemplates, type TableSettings, readTableSettings, templateUsesKey } from "../db-common.ts";
import { TableError } from "../table.ts";
import { type LdapUrl, type Scope, SCOPES, parseServerHost } from "./url.ts";

export interface LdapSettings {
  servers: LdapUrl[];
  version: 2 | 3;
  searchBase: string;
  /** Whether the search base depends on the key (then "no such object" is "not found"). */
  dynamicBase: boolean;
  queryFilter: string;
  /** search_base and query_filter (filled from the key), result_format, domain: db-common's, as for the SQL tables. */
  templates: DbTemplates;
  scope: Scope;
  timeoutMs: number;
  /** terminal, leaf-only, regular, then special attributes, as Postfix orders them. */
  attributes: string[];
  numTerminal: number;
  numLeaf: number;
  /** terminal + leaf + regular. */
  numAttributes: number;
  bind: boolean;
  bindDn: string;
  bindPw: string;
  startTls: boolean;
  /** For ldaps:// and start_tls: tls_require_cert, and the contents of tls_ca_cert_file, tls_cert, tls_key. */
  tls: { rejectUnauthorized: boolean; ca?: string; cert?: string; key?: string };
  recursionLimit: number;
  expansionLimit: number;
  sizeLimit: number;
  dereference: number;
  /** The owner of the file: for local(8)'s alias commands. */
  uid: number;
}

export class LdapSettingsError extends Error {}

/** The file's `name = value` pairs (db-common reads it, or serves the copy read as root before the privilege drop). */
function readPairs(spec: string, path: string): TableSettings {
  try {
    return readTableSettings(spec, path);
  } catch (err) {
    if (err instanceof TableError) throw new LdapSettingsError(err.detail);
    throw err;
  }
}

const splitList = (s: string) => s.split(/[\s,]+/).filter(Boolean);

function readTlsFile(path: string, what: "ca" | "cert" | "key", file: string): Record<string, string> {
  if (!file) return {};
  try {
    return { [what]: readFileSync(file, "utf8") };
  } catch (err) {
    throw new LdapSettingsError(`${path}: cannot read ${file}: ${describeFsError(err)}`);
  }
}

export function readLdapSettings(spec: string, path: string): LdapSettings {
  const file = readPairs(spec, path);
  const v = file.values;
  const str = (name: string, def: string) => v.get(name) ?? def;
  const int = (name: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const text = v.get(name);
    if (text === undefined) return def;
    if (!/^-?\d+$/.test(text)) throw new LdapSettingsError(`${path}: bad numerical configuration: ${name} = ${text}`);
    const n = Number(text);
    if (n < min) throw new LdapSettingsError(`${path}: invalid ${name} parameter value ${n} < ${min}`);
    if (n > max) throw new LdapSettingsError(`${path}: invalid ${name} parameter value ${n} > ${max}`);
    return n;
  };
  const bool = (name: string, def: boolean) => {
    const text = v.get(name);
    if (text === undefined) return def;
    if (/^(yes|true|1)$/i.test(text)) return true;
    if (/^(no|false|0)$/i.test(text)) return false;
    throw new LdapSettingsError(`${path}: bad boolean configuration: ${name} = ${text}`);
  };

  let version = int("version", 2, 2);
  if (version !== 2 && version !== 3) {
    log.warn(`${path}: unknown version ${version}, using 2.`);
    version = 2;
  }
  const serverPort = int("server_port", 389, 0, 65535);
  const servers: LdapUrl[] = [];
  for (const h of splitList(str("server_host", "localhost"))) {
    const url = parseServerHost(h, serverPort);
    if (!url) {
      log.error(`${path}: error parsing URL ${h}; skipping`);
      continue;
    }
    if (url.scheme !== "ldap" && version !== 3) {
      log.warn(`${path}: URL scheme ${url.scheme} requires protocol version 3`);
      version = 3;
    }
    servers.push(url);
  }
  if (!servers.length) throw new LdapSettingsError(`${path}: no usable server_host`);

  const scopeName = str("scope", "sub").toLowerCase();
  let scope = SCOPES[scopeName];
  if (scope === undefined) {
    log.warn(`${path}: unrecognized value ${scopeName} specified for scope; using sub`);
    scope = 2;
  }

  const searchBase = str("search_base", "");
  const queryFilter = str("query_filter", "(mailacceptinggeneralid=%s)");
  const resultFormat = v.get("result_format") ?? str("result_filter", "%s");
  let templates: DbTemplates;
  try {
    templates = new DbTemplates(file, queryFilter, { resultFormat, keyTemplates: [searchBase] });
  } catch (err) {
    if (err instanceof TableError) throw new LdapSettingsError(`${path}: ${err.detail}`);
    throw err;
  }
  const dynamicBase = templateUsesKey(searchBase);
  if (!templateUsesKey(queryFilter)) log.warn(`${path}: fixed query_filter ${queryFilter} is probably useless`);

  const terminal = splitList(str("terminal_result_attribute", ""));
  const leaf = splitList(str("leaf_result_attribute", ""));
  const regular = splitList(str("result_attribute", "maildrop"));
  const special = splitList(str("special_result_attribute", ""));

  const bindText = str("bind", "yes").toLowerCase();
  let bind: boolean;
  if (["yes", "simple"].includes(bindText)) bind = true;
  else if (["no", "none"].includes(bindText)) bind = false;
  else throw new LdapSettingsError(`${path}: unsupported parameter value: bind = ${bindText}`);

  for (const name of ["cache", "cache_expiry", "cache_size"]) if (v.has(name)) log.warn(`${path}: ignoring ${name}`);
  if (bool("chase_referrals", false)) log.warn(`${path}: referrals are not chased`);

  const expansionLimit = int("expansion_limit", 0, 0);
  let dereference = int("dereference", 0, Number.MIN_SAFE_INTEGER);
  if (dereference < 0 || dereference > 3) {
    log.warn(`${path}: unrecognized value ${dereference} specified for dereference; using 0`);
    dereference = 0;
  }
  let uid = 0;
  try {
    uid = statSync(path).uid;
  } catch {}
  return {
    servers,
    version: version === 3 ? 3 : 2,
    searchBase,
    dynamicBase,
    queryFilter,
    templates,
    scope,
    // Postfix allows 0, which would never wait at all: one second is the least
    timeoutMs: Math.max(1, int("timeout", 10, 0)) * 1000,
    attributes: [...terminal, ...leaf, ...regular, ...special],
    numTerminal: terminal.length,
    numLeaf: leaf.length,
    numAttributes: terminal.length + leaf.length + regular.length,
    bind,
    bindDn: str("bind_dn", ""),
    bindPw: str("bind_pw", ""),
    startTls: bool("start_tls", false),
    tls: {
      rejectUnauthorized: bool("tls_require_cert", false),
      ...readTlsFile(path, "ca", str("tls_ca_cert_file", "")),
      ...readTlsFile(path, "cert", str("tls_cert", "")),
      ...readTlsFile(path, "key", str("tls_key", "")),
    },
    recursionLimit: int("recursion_limit", 1000, 1),
    expansionLimit,
    sizeLimit: int("size_limit", expansionLimit, 0),
    dereference,
    uid,
  };
}
