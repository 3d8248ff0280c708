/**
 * A configuration does what it says, or is refused: every setting in
 * postern.toml (and every [services.NAME] override) that asks for something
 * postern does not do becomes one ConfigError naming the file, the line, the
 * parameter and the fix. Config.validate() includes these, so `postern
 * check`, `postfix check`, start, start-fg, the master and reload all refuse
 * the same list (exit 78).
 *
 * What is asked for is judged by value, not by presence: Postfix's default,
 * an empty value, or turning a missing feature off ("biff = no") ask for
 * nothing and pass. The registry says how postern treats each of its
 * parameters (ParamDef.support); Postfix parameters outside the registry are
 * judged against Postfix's defaults (postfix-params.ts).
 *
 * Runs in whichever role validates (root for check and start, mail_owner
 * for the master's reload); reads the configuration and, to find access
 * actions postern lacks, the source files of the access tables that
 * restriction lists name (size-bounded; an unreadable one is left to the
 * lookup, which reports it).
 */
import type { Config } from "./config.ts";
import { paramDef } from "./registry.ts";
import { postfixOnlyDefault } from "./postfix-params.ts";
import { ConfigError } from "./source.ts";
import { splitList } from "./value-text.ts";
import { POSTFIX_TABLE_TYPES, TABLE_TYPES } from "../tables/table-types.ts";
import { ARGUMENT_RESTRICTIONS, MISSING_ACCESS_ACTIONS, PLAIN_RESTRICTIONS } from "./restriction-names.ts";
import { configuredTransports, POSTERN_TRANSPORTS, refuseUnknownTransport } from "./value-checks.ts";
import { pipeServices, pipeTransportParamNames } from "./services.ts";
import { readFileSync, statSync } from "node:fs";

/**
 * Postfix parameters about its own installation or about performance only
 * (caches, debugging): postern carries them as notes and never refuses them.
 */
export const NOTED_POSTFIX_PARAMS: ReadonlyMap<string, string> = new Map([
  ...["html_directory", "manpage_directory", "readme_directory", "sample_directory", "shlib_directory", "meta_directory", "setgid_group"].map((n) => [n, "where Postfix installs its own files; postern is one executable"] as const),
  ...["debug_peer_level", "debug_peer_list", "debugger_command"].map((n) => [n, "Postfix's debugging aids; postern has no per-peer debug logging or debugger hook"] as const),
  ...["smtp_tls_session_cache_database", "smtpd_tls_session_cache_database", "lmtp_tls_session_cache_database", "smtp_tls_session_cache_timeout", "smtpd_tls_session_cache_timeout", "lmtp_tls_session_cache_timeout", "tls_random_source"].map(
    (n) => [n, "a TLS performance cache; postern's TLS needs none"] as const,
  ),
  ...["smtp_tls_loglevel", "smtpd_tls_loglevel", "lmtp_tls_loglevel"].map((n) => [n, "TLS logging detail; postern logs its own TLS summary"] as const),
]);

/** Normalized for comparison: Postfix lists are equal when their words are. */
function norm(text: string): string {
  return splitList(text.trim()).join(" ").toLowerCase();
}

function isBooleanDefault(text: string): boolean {
  const t = text.trim().toLowerCase();
  return t === "yes" || t === "no" || /\{(yes|no)\}/.test(t);
}

/** Restriction classes (smtpd_restriction_classes) are restriction lists under names of their own. */
export interface RefusalContext {
  classes: readonly string[];
  /** Every transport the configuration has (built-in ones and its pipe services); default: the built-in ones. */
  transports?: readonly string[];
  /** Another parameter's expanded value, as the same service sees it. */
  str?: (name: string) => string;
}

const RESTRICTION_LIST = /^smtpd_[a-z_]+_restrictions$/;

/** Why a set value asks for something postern does not do; undefined when it asks for nothing it lacks. */
export function refusalOf(name: string, rawText: string, expanded: () => string, context: RefusalContext = { classes: [] }): string | undefined {
  const def = paramDef(name);
  const value = norm(rawText);
  if ((def && RESTRICTION_LIST.test(name)) || context.classes.includes(name)) {
    const why = refuseMissingTableTypes(rawText, expanded) ?? refuseRestrictionList(expanded, context.classes, context.transports);
    if (why) return why;
  }
  if (name === "transport_maps") {
    const why = refuseMissingTableTypes(rawText, expanded) ?? refuseTransportTables(expanded, context.transports);
    if (why) return why;
  }
  if (def) {
    const support = def.support;
    const tables = refuseMissingTableTypes(rawText, expanded);
    if (!support) return tables;
    switch (support.kind) {
      case "install":
        return undefined;
      case "refuses":
        return support.refuse(expanded(), context) ?? tables;
      case "unsupported": {
        const dflt = typeof def.default === "string" ? def.default : undefined;
        const fine = [dflt, postfixOnlyDefault(name), "", ...(support.accept ?? [])].filter((x) => x !== undefined).map((x) => norm(x!));
        if (fine.includes(value)) return undefined;
        const suggestion = support.accept?.[0] ?? dflt ?? "";
        return `postern does not implement ${name} (${support.why}); remove the setting${suggestion ? ` or set it to "${suggestion}"` : ""}`;
      }
    }
  }
  const postfixDefault = postfixOnlyDefault(name);
  if (postfixDefault === undefined || NOTED_POSTFIX_PARAMS.has(name)) return undefined;
  if (value === "" || value === norm(postfixDefault)) return undefined;
  if (value === "no" && isBooleanDefault(postfixDefault)) return undefined;
  return `postern does not implement Postfix's ${name}; remove the setting${postfixDefault.trim() ? ` or set it to Postfix's default "${postfixDefault.trim()}"` : ""}`;
}

/** Table specifications (type:name) in a value whose type postern lacks. */
export function refuseMissingTableTypes(rawText: string, expanded: () => string): string | undefined {
  // only values that mention a colon can hold a table; expanding the rest costs for nothing
  if (!rawText.includes(":") && !rawText.includes("$")) return undefined;
  let text: string;
  try {
    text = expanded();
  } catch {
    return undefined; // a bad expansion is reported by the type check
  }
  const missing = new Set<string>();
  for (const word of splitList(text)) {
    let w = word.replace(/^\{|\}$/g, "").trim();
    while (w.startsWith("proxy:")) w = w.slice("proxy:".length);
    const m = /^([a-z0-9_]+):/i.exec(w);
    if (!m) continue;
    const type = m[1]!.toLowerCase();
    if (POSTFIX_TABLE_TYPES.has(type) && !TABLE_TYPES.includes(type)) missing.add(type);
  }
  if (missing.size === 0) return undefined;
  const types = [...missing].map((t) => `"${t}:"`).join(", ");
  return `table type ${types} is not implemented by postern (it has ${TABLE_TYPES.join(", ")}); convert the table or remove the setting`;
}

/**
 * A restriction list: every word a restriction postern has (with its argument), a restriction class, or
 * nothing; and no access table it consults answers with an action postern lacks.
 */
export function refuseRestrictionList(expanded: () => string, classes: readonly string[], transports?: readonly string[]): string | undefined {
  let words: string[];
  try {
    words = splitList(expanded());
  } catch {
    return undefined;
  }
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const lower = word.toLowerCase();
    if (PLAIN_RESTRICTIONS.includes(lower) || classes.includes(word)) continue;
    if (ARGUMENT_RESTRICTIONS.includes(lower)) {
      const arg = words[++i];
      if (arg === undefined) return `restriction ${lower} needs an argument; add it or remove the restriction`;
      if (lower.startsWith("check_") && lower.endsWith("_access")) {
        const action = missingAccessAction(arg);
        if (action) return `access table ${arg} ${action}, which postern does not implement (the recipient would get 451 4.3.5); change the table`;
        const filter = unknownFilterTransport(arg, transports);
        if (filter) return `access table ${arg} ${filter}; change the table or define the transport as a pipe service`;
      }
      continue;
    }
    return `restriction "${word}" is not one postern implements (nor a class in smtpd_restriction_classes); remove it`;
  }
  return undefined;
}

/** Largest table source check reads when looking for actions: bigger ones are left to run time. */
const MAX_ACCESS_SOURCE = 16 * 1024 * 1024;

/** "answers FILTER (line 3)" when the access table's source holds an action postern lacks. */
function missingAccessAction(spec: string): string | undefined {
  for (const r of tableResults(spec)) {
    const action = (r.value.split(/\s+/)[0] ?? "").toUpperCase();
    if (MISSING_ACCESS_ACTIONS.includes(action)) return `answers ${action}${r.line ? ` (line ${r.line})` : ""}`;
  }
  return undefined;
}

/** "answers FILTER nosuch:... (line 3), a transport postern does not have" when a FILTER action names a missing transport. */
function unknownFilterTransport(spec: string, transports?: readonly string[]): string | undefined {
  for (const r of tableResults(spec)) {
    const [action, target] = r.value.trim().split(/\s+/);
    if ((action ?? "").toUpperCase() !== "FILTER" || !target) continue;
    const why = refuseUnknownTransport(target, transports ? { transports } : undefined);
    if (why) return `answers FILTER ${target}${r.line ? ` (line ${r.line})` : ""}, a transport postern does not have`;
  }
  return undefined;
}

/** transport_maps: every result names a transport postern has ("" keeps the default one). */
export function refuseTransportTables(expanded: () => string, transports: readonly string[] = POSTERN_TRANSPORTS): string | undefined {
  let specs: string[];
  try {
    specs = splitList(expanded());
  } catch {
    return undefined;
  }
  for (const spec of specs) {
    for (const r of tableResults(spec)) {
      const transport = r.value.trim().split(":")[0] ?? "";
      if (transport === "" || transports.includes(transport) || POSTERN_TRANSPORTS.includes(transport.toLowerCase())) continue;
      return `table ${spec} routes mail to transport "${transport}"${r.line ? ` (line ${r.line})` : ""}, which postern does not have (${transports.join(", ")}); change the table or define the transport as a pipe service`;
    }
  }
  return undefined;
}

/** The results a table's source holds (inline:, static:, or the source file of a file-backed table), with their lines. */
function tableResults(spec: string): Array<{ value: string; line?: number }> {
  let s = spec;
  while (s.startsWith("proxy:")) s = s.slice("proxy:".length);
  const colon = s.indexOf(":");
  if (colon <= 0) return [];
  const type = s.slice(0, colon).toLowerCase();
  const name = s.slice(colon + 1);
  const results: Array<{ value: string; line?: number }> = [];
  if (type === "inline" || type === "static") {
    const inner = name.replace(/^\{|\}$/g, "");
    if (type === "static") results.push({ value: inner.trim() });
    else for (const item of splitList(inner)) results.push({ value: item.replace(/^\{|\}$/g, "").split("=").slice(1).join("=").trim() });
  } else if (["hash", "btree", "lmdb", "cdb", "dbm", "sdbm", "texthash", "regexp", "pcre", "cidr"].includes(type)) {
    let text: string;
    try {
      if (statSync(name).size > MAX_ACCESS_SOURCE) return [];
      text = readFileSync(name, "utf8");
    } catch {
      return []; // unreadable here: the lookup reports it
    }
    const rule = type === "regexp" || type === "pcre" ? /^(?:if\s+)?(?:!?(\S)(?:\\.|(?!\1).)*\1[a-zA-Z]*)\s+(.*)$/ : /^\S+\s+(.*)$/;
    text.split("\n").forEach((l, i) => {
      if (/^\s*(#|$)/.test(l) || /^\s/.test(l)) return;
      const m = rule.exec(l.trim());
      if (m) results.push({ value: (m[2] ?? m[1] ?? "").trim(), line: i + 1 });
    });
  }
  return results;
}

/** Every setting in the file and in [services.NAME] overrides that postern would not honour. */
export function unsupportedSettings(config: Config): ConfigError[] {
  const problems: ConfigError[] = [];
  let classes: string[] = [];
  try {
    classes = config.list("smtpd_restriction_classes");
  } catch {
    // a bad value is the type check's to report
  }
  const context = { classes, transports: configuredTransports(pipeServices(config.services()).keys()) };
  // a pipe service's NAME_time_limit, NAME_destination_recipient_limit, ... are read (even where Postfix's
  // stock master.cf has a service of that name, such as mailman_time_limit)
  const perTransport = pipeTransportParamNames(config.services());
  for (const name of config.setNames()) {
    if (perTransport.has(name)) continue;
    const raw = config.raw(name) ?? "";
    const why = refusalOf(name, raw, () => config.str(name), { ...context, str: (n) => config.str(n) });
    if (why) problems.push(new ConfigError(`${name} = "${oneLine(raw)}": ${why}`, config.path, config.lineOf(name)));
  }
  for (const svc of config.services()) {
    if (!svc.configured) continue;
    for (const [name, v] of svc.overrides) {
      if (svc.builtinOverrides.has(name)) continue;
      const view = config.withOverrides(new Map([[name, v]]));
      const why = refusalOf(name, v.text, () => view.str(name), { ...context, str: (n) => view.str(n) });
      if (why) problems.push(new ConfigError(`services.${svc.name}.${name} = "${oneLine(v.text)}": ${why}`, config.path, v.line));
    }
  }
  return problems;
}

function oneLine(text: string): string {
  const t = text.replace(/\s+/g, " ").trim();
  return t.length > 80 ? `${t.slice(0, 77)}...` : t;
}
