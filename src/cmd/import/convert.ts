/**
 * Turns a parsed main.cf and master.cf into postern.toml text, then checks
 * that text with the very validation `postern check` runs
 * (Config.validate()), mapping each problem back to the main.cf or
 * master.cf line it came from. What postern cannot honour is a refusal;
 * what only concerns Postfix's own installation, or is built into postern,
 * is a note.
 *
 * Pure but for reading files main.cf names by value (myorigin = /file) and
 * /etc/services; run by `postern import` as the invoking user.
 */
import { resolvePipeUser } from "../../global/delivery/pipe-user.ts";
import { readFileSync } from "node:fs";
import { Config } from "../../global/config/config.ts";
import { paramDef } from "../../global/config/registry.ts";
import { BUILTIN_SERVICES, PIPE_ATTRIBUTES } from "../../global/config/services.ts";
import { configSourceFromText, ConfigError } from "../../global/config/source.ts";
import { NOTED_POSTFIX_PARAMS } from "../../global/config/support.ts";
import { splitList } from "../../global/config/value-text.ts";
import { INDEXED_TYPES } from "../../global/tables/table-types.ts";
import type { MainCfItem } from "./main-cf.ts";
import type { MasterEntry } from "./master-cf.ts";

export interface Origin {
  file: string;
  line?: number;
}

export interface Finding extends Origin {
  /** The parameter or service it is about (for the report). */
  subject: string;
  message: string;
}

export interface Conversion {
  toml: string;
  refusals: Finding[];
  notes: Finding[];
  /** Indexed tables to build: postmap's and newaliases' (alias_database) specifications, expanded. */
  postmap: string[];
  postalias: string[];
  /** Counts for the summary. */
  parameters: number;
  services: number;
}

export interface ConvertInput {
  postfixDir: string;
  mainPath: string;
  masterPath: string;
  main: MainCfItem[];
  master: MasterEntry[] | undefined;
  configDir: string;
  /** Keys (a parameter name or services.NAME.KEY) to write commented out, with why (--force). */
  commentOut?: ReadonlyMap<string, string>;
  readFile?: (path: string) => string;
}

/** Postfix services whose work postern's own roles do (or that postern needs no process for). */
const BUILT_IN: Record<string, string> = {
  pickup: "postern's pickup role",
  cleanup: "cleanup inside smtpd and pickup",
  qmgr: "postern's qmgr role",
  nqmgr: "postern's qmgr role",
  oqmgr: "postern's qmgr role",
  tlsmgr: "not needed: postern keeps no TLS session cache",
  "trivial-rewrite": "the address resolver inside each role",
  bounce: "the bounce code inside qmgr",
  flush: "postern flush / postqueue -f",
  proxymap: "not needed: tables are opened directly",
  showq: "mailq / postqueue -p read the queue directly",
  error: "the error transport inside qmgr",
  discard: "the discard transport inside qmgr",
  local: "postern's local role",
  virtual: "the virtual agent inside postern's local role (transport virtual)",
  anvil: "the connection counters inside smtpd",
  scache: "the connection cache inside the SMTP client",
  postlogd: "postern's logging (maillog_file or syslog)",
  smtp: "the SMTP client inside qmgr (transports smtp and relay)",
  lmtp: "the LMTP client inside qmgr (transport lmtp)",
  verify: "address verification inside smtpd",
};

/** The client transports postern has under these names only. */
const TRANSPORT_NAMES: Record<string, string[]> = { smtp: ["smtp", "relay"], lmtp: ["lmtp"], local: ["local"], virtual: ["virtual"], error: ["error", "retry"], discard: ["discard"] };

const WELL_KNOWN_PORTS: Record<string, number> = { smtp: 25, submission: 587, smtps: 465, submissions: 465, lmtp: 24 };

const LISTISH = /(_maps|_restrictions|_checks|_domains|_networks|_classes|_exceptions|_interfaces|_protocols|_milters|_lookup|_list|_recipients|_filter_classes|mydestination|mynetworks)$/;

/** A TOML basic string. */
export function tomlString(s: string): string {
  return JSON.stringify(s).replace(/\x7f/g, "\\u007f");
}

function tomlKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(k);
}

function isListParam(name: string): boolean {
  const def = paramDef(name);
  return def ? def.type === "list" : LISTISH.test(name);
}

function balanced(s: string): boolean {
  let d = 0;
  for (const ch of s) {
    if (ch === "{") d++;
    else if (ch === "}") d--;
    if (d < 0) return false;
  }
  return d === 0;
}

/** A port from a master.cf service name: "25", "smtp", "127.0.0.1:smtp", "[::1]:2525". */
function listenOf(name: string, readFile: (p: string) => string): { listen: string; key: string } | undefined {
  const m = /^(?:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?([A-Za-z0-9-]+)$/.exec(name);
  if (!m) return undefined;
  const host = m[1];
  const svc = m[2]!;
  let port: number | undefined = /^\d+$/.test(svc) ? Number(svc) : WELL_KNOWN_PORTS[svc];
  if (port === undefined) {
    try {
      const hit = new RegExp(`^${svc.replace(/[.-]/g, "\\$&")}\\s+(\\d+)/tcp`, "m").exec(readFile("/etc/services"));
      if (hit) port = Number(hit[1]);
    } catch {
      // no /etc/services: the name stays unresolved
    }
  }
  if (port === undefined || port <= 0 || port > 65535) return undefined;
  const key = host ? `${host.replace(/[[\]]/g, "")}-${svc}`.replace(/[^A-Za-z0-9_-]/g, "-") : svc;
  return { listen: host ? `${host}:${port}` : String(port), key };
}

class TomlWriter {
  readonly lines: string[] = [];
  /** Where each written key came from, by TOML line (1-based), and which key it is. */
  readonly origins = new Map<number, { key: string; origin: Origin }>();

  blank(): void {
    if (this.lines.length && this.lines[this.lines.length - 1] !== "") this.lines.push("");
  }
  comment(text: string): void {
    this.lines.push(text.startsWith("#") ? text : `# ${text}`);
  }
  /** Writes `key = value` (a string, or an array over several lines), commented out when asked. */
  pair(key: string, path: string, value: string | string[], origin: Origin, commentOut?: string): void {
    const first = this.lines.length + 1;
    const rendered =
      typeof value === "string"
        ? [`${tomlKey(key)} = ${tomlString(value)}`]
        : [`${tomlKey(key)} = [`, ...value.map((v) => `  ${tomlString(v)},`), "]"];
    if (commentOut !== undefined) {
      this.lines.push(`# not carried (postern import --force): ${commentOut}`);
      for (const l of rendered) this.lines.push(`# ${l}`);
      return;
    }
    this.lines.push(...rendered);
    for (let i = 0; i < rendered.length; i++) this.origins.set(first + i, { key: path, origin });
  }
}

export function convert(input: ConvertInput): Conversion {
  const readFile = input.readFile ?? ((p: string) => readFileSync(p, "utf8"));
  const w = new TomlWriter();
  const notes: Finding[] = [];
  const refusals: Finding[] = [];
  const at = (line?: number): Origin => ({ file: input.mainPath, ...(line !== undefined ? { line } : {}) });
  const atMaster = (line?: number): Origin => ({ file: input.masterPath, ...(line !== undefined ? { line } : {}) });
  const commentOut = input.commentOut ?? new Map<string, string>();
  const substituteConfigDir = (value: string, origin: Origin, subject: string): string => {
    const out = value.replace(/\$(\{config_directory\}|\(config_directory\)|config_directory\b)/g, input.postfixDir);
    if (out !== value) notes.push({ ...origin, subject, message: `$config_directory replaced with ${input.postfixDir} (postern's config_directory is ${input.configDir})` });
    return out;
  };

  w.comment(`# postern.toml, converted by \`postern import\` from ${input.mainPath}${input.master ? ` and ${input.masterPath}` : ""}.`);
  w.comment("# Comments are carried from main.cf where they stood; services follow at the end.");
  w.blank();

  // the last assignment wins in main.cf, as in Postfix
  const lastLine = new Map<string, number>();
  for (const item of input.main) if (item.kind === "param") lastLine.set(item.name, item.line);
  const mainValues = new Map<string, string>();
  let parameters = 0;

  for (const item of input.main) {
    if (item.kind === "blank") {
      w.blank();
      continue;
    }
    if (item.kind === "comment") {
      w.comment(item.text);
      continue;
    }
    const origin = at(item.line);
    if (item.name === "services") {
      refusals.push({ ...origin, subject: item.name, message: `"services" is the name of postern's service tables; rename the parameter` });
      continue;
    }
    if (lastLine.get(item.name) !== item.line) {
      notes.push({ ...origin, subject: item.name, message: `set again on line ${lastLine.get(item.name)}; the later value wins, as in Postfix` });
      w.comment(`# ${item.name} = ${item.value}    (set again below)`);
      continue;
    }
    let value = substituteConfigDir(item.value, origin, item.name);
    mainValues.set(item.name, value);
    if (item.name === "queue_directory" || item.name === "config_directory") {
      const why =
        item.name === "queue_directory"
          ? "Postfix's queue; postern keeps its own queue, in its own format, in its own queue_directory (empty Postfix's queue with `postfix flush` before switching)"
          : "postern's config_directory is where postern.toml is";
      w.comment(`# ${item.name} = ${item.value}    (not carried: ${why})`);
      notes.push({ ...origin, subject: item.name, message: `not carried: ${why}` });
      continue;
    }
    if (item.name === "myorigin" && value.startsWith("/")) {
      try {
        const domain = readFile(value).split("\n")[0]!.trim();
        if (domain) {
          w.comment(`# myorigin = ${value} in main.cf: Postfix reads the domain from that file; its content at import time:`);
          notes.push({ ...origin, subject: item.name, message: `${value} read at import: myorigin = ${domain}` });
          value = domain;
        }
      } catch (err) {
        notes.push({ ...origin, subject: item.name, message: `cannot read ${value}: ${(err as Error).message}` });
      }
    }
    const noted = NOTED_POSTFIX_PARAMS.get(item.name) ?? (paramDef(item.name)?.support?.kind === "install" ? "about where Postfix installs its own files" : undefined);
    if (noted) notes.push({ ...origin, subject: item.name, message: `carried as a note: ${noted}` });
    const pieces = item.pieces.map((p) => p.replace(/,\s*$/, "").trim()).filter(Boolean);
    const asList = isListParam(item.name) && pieces.length > 1 && pieces.every(balanced) && !item.value.includes("$config_directory");
    w.pair(item.name, item.name, asList ? pieces.map((p) => substituteConfigDir(p, origin, item.name)) : value, origin, commentOut.get(item.name));
    parameters++;
  }

  let services = 0;
  if (input.master) services = writeServices(input, w, notes, refusals, mainValues, readFile, commentOut, atMaster);
  else notes.push({ file: input.masterPath, subject: "master.cf", message: "no master.cf: postern's built-in services (smtp on port 25)" });

  const toml = w.lines.join("\n").replace(/\n*$/, "\n");
  // the same validation as `postern check`, each problem traced to its main.cf or master.cf line
  const config = new Config(configSourceFromText(toml, input.configDir));
  for (const problem of config.validate()) {
    const hit = problem.line !== undefined ? w.origins.get(problem.line) : undefined;
    const origin = hit?.origin ?? { file: input.mainPath };
    refusals.push({ ...origin, subject: hit?.key ?? "", message: problem.detail });
  }
  for (const name of config.unknownNames()) {
    const line = config.lineOf(name);
    const hit = line !== undefined ? w.origins.get(line) : undefined;
    notes.push({ ...(hit?.origin ?? at()), subject: name, message: "neither a Postfix nor a postern parameter: carried (a name other settings refer to as $name is fine)" });
  }
  const { postmap, postalias } = indexedTables(config);
  return { toml, refusals, notes, postmap, postalias, parameters, services };
}

function writeServices(
  input: ConvertInput,
  w: TomlWriter,
  notes: Finding[],
  refusals: Finding[],
  mainValues: Map<string, string>,
  readFile: (p: string) => string,
  commentOut: ReadonlyMap<string, string>,
  at: (line?: number) => Origin,
): number {
  const master = input.master!;
  w.blank();
  w.comment(`# Services, from ${input.masterPath}: each smtpd service is a [services.NAME] table (listen, role,`);
  w.comment("# process_limit, and master.cf's -o overrides as keys). Postfix's internal services are built into postern.");
  // maxproc of the delivery transports is postern's NAME_process_limit: top-level keys, before any table
  for (const e of master) {
    const pipe = e.type === "unix" && e.command === "pipe";
    if (((e.type === "unix" && ["smtp", "relay", "local", "virtual", "lmtp"].includes(e.name) && BUILT_IN[e.command] && TRANSPORT_NAMES[e.command]?.includes(e.name)) || pipe) && /^\d+$/.test(e.maxproc) && e.maxproc !== "0") {
      const name = `${e.name}_process_limit`;
      if (mainValues.has(name)) continue;
      w.comment(`# maxproc of the ${e.name} transport in master.cf`);
      w.pair(name, name, e.maxproc, at(e.line), commentOut.get(name));
    }
  }
  let count = 0;
  let smtpSeen = false;
  const chrooted: string[] = [];
  const builtIns: string[] = [];
  for (const e of master) {
    const origin = at(e.line);
    const subject = `${e.name}/${e.type}`;
    if (e.chroot === "y") chrooted.push(e.name);
    if (e.type === "inet") {
      if (e.command !== "smtpd") {
        refusals.push({ ...origin, subject, message: `service "${e.name}" runs ${e.command}(8), which postern does not have; postern's inet services run smtpd only` });
        continue;
      }
      const where = listenOf(e.name, readFile);
      if (!where) {
        refusals.push({ ...origin, subject, message: `service "${e.name}": cannot tell the port (use a number or a name in /etc/services)` });
        continue;
      }
      if (where.key !== e.name) notes.push({ ...origin, subject, message: `service "${e.name}" becomes [services.${where.key}] with listen = "${where.listen}"` });
      if (where.key === "smtp") smtpSeen = true;
      const path = (k: string) => `services.${where.key}.${k}`;
      w.blank();
      for (const c of e.comments) w.comment(c);
      w.lines.push(`[services.${tomlKey(where.key)}]`);
      w.pair("listen", path("listen"), where.listen, origin);
      w.pair("role", path("role"), "smtpd", origin);
      if (/^\d+$/.test(e.maxproc) && e.maxproc !== "0") w.pair("process_limit", path("process_limit"), e.maxproc, origin);
      else if (e.maxproc === "0") notes.push({ ...origin, subject, message: "maxproc 0 (no limit): postern's default_process_limit applies" });
      if (e.args.length) notes.push({ ...origin, subject, message: `smtpd arguments ${e.args.join(" ")} not carried (postern's smtpd takes no per-service flags)` });
      const given = new Set<string>();
      for (const o of e.overrides) {
        given.add(o.name);
        let value = o.value.replace(/\$(\{service_name\}|\(service_name\)|service_name\b)/g, where.key);
        if (value !== o.value) notes.push({ ...at(o.line), subject: `${subject} -o ${o.name}`, message: `$service_name replaced with "${where.key}"` });
        value = value.replace(/\$(\{config_directory\}|\(config_directory\)|config_directory\b)/g, input.postfixDir);
        w.pair(o.name, path(o.name), value, at(o.line), commentOut.get(path(o.name)));
      }
      // postern's built-in submission/smtps overrides would apply too: master.cf did not ask for them
      const builtin = BUILTIN_SERVICES[where.key];
      const reset = Object.keys(builtin?.overrides ?? {}).filter((k) => !given.has(k));
      if (reset.length) {
        w.comment(`# Postfix's ${e.name} has only the -o settings above; postern's built-in ${where.key} overrides are reset to main.cf's values:`);
        for (const k of reset) w.pair(k, path(k), mainValues.get(k) ?? (typeof paramDef(k)?.default === "string" ? (paramDef(k)!.default as string) : ""), origin);
      }
      count++;
      continue;
    }
    // unix, unix-dgram, fifo, pass: Postfix's plumbing, delivery agents and helpers
    const builtIn = BUILT_IN[e.command];
    const names = TRANSPORT_NAMES[e.command];
    if (e.type === "pass" && e.command === "smtpd") {
      notes.push({ ...origin, subject, message: "the smtpd behind postscreen: postern's smtpd services accept connections themselves" });
      continue;
    }
    if (builtIn && (!names || names.includes(e.name))) {
      builtIns.push(`${e.name} (line ${e.line}: ${builtIn})`);
      for (const o of e.overrides) {
        if (o.name === "syslog_name") notes.push({ ...at(o.line), subject: `${subject} -o ${o.name}`, message: "the log tag of a built-in service is postern's own" });
        else refusals.push({ ...at(o.line), subject: `${subject} -o ${o.name}`, message: `-o ${o.name}=${o.value} on the built-in ${e.name} service: postern has no per-service settings for its built-in roles; set it in main.cf if it should apply everywhere` });
      }
      if (e.args.length) notes.push({ ...origin, subject, message: `arguments ${e.args.join(" ")} not carried` });
      continue;
    }
    if (e.command === "pipe" && e.type === "unix") {
      const attrs = pipeArguments(e.args);
      if (typeof attrs === "string") {
        refusals.push({ ...origin, subject, message: attrs });
        continue;
      }
      for (const o of e.overrides) refusals.push({ ...at(o.line), subject: `${subject} -o ${o.name}`, message: `-o ${o.name}=${o.value} on a pipe service: postern's pipe services take no parameter overrides; set it in main.cf if it should apply everywhere` });
      const path = (k: string) => `services.${e.name}.${k}`;
      w.blank();
      for (const c of e.comments) w.comment(c);
      w.lines.push(`[services.${tomlKey(e.name)}]`);
      w.pair("role", path("role"), "pipe", origin);
      // Postfix's stock master.cf lists pipe services for users most machines lack (vmail, ftn, bsmtp, ...):
      // pipe(8) would fail at each delivery, and postern check refuses an enabled one, so it is written off
      const user = attrs.find(([k]) => k === "user")?.[1];
      const who = user !== undefined ? resolvePipeUser(user) : undefined;
      if (who && "error" in who && !/root/.test(who.error)) {
        w.pair("enable", path("enable"), "no", origin);
        notes.push({ ...origin, subject, message: `${who.error}: written with enable = no (Postfix's pipe(8) would fail at each delivery to it); create the user, then remove that line` });
      }
      for (const [k, v] of attrs) w.pair(k, path(k), v, origin);
      count++;
      continue;
    }
    const why =
      e.command === "spawn"
            ? "postern has no spawn(8) (policy servers must listen on a socket of their own)"
            : names
              ? `postern's ${e.command} client runs only as the transport${names.length > 1 ? "s" : ""} ${names.join(", ")}`
              : `postern has no ${e.command}(8)`;
    notes.push({ ...origin, subject, message: `not carried: ${why}; a setting that routes mail to "${e.name}" is refused` });
  }
  if (!smtpSeen) {
    w.blank();
    w.comment(`# ${input.masterPath} has no smtp inet service: postern's built-in one stays off.`);
    w.lines.push("[services.smtp]");
    w.pair("enable", "services.smtp.enable", "no", at());
    notes.push({ ...at(), subject: "smtp/inet", message: "no smtp inet service in master.cf: [services.smtp] enable = no" });
  }
  if (builtIns.length) notes.push({ ...at(), subject: "built in", message: `Postfix's internal services, done by postern itself: ${builtIns.join("; ")}` });
  if (chrooted.length) notes.push({ ...at(), subject: "chroot", message: `chroot column ignored for ${chrooted.join(", ")}: postern's daemons run as mail_owner without a chroot` });
  return count;
}

/**
 * A pipe(8) line's arguments (`flags=DRhu user=vmail argv=/usr/bin/maildrop -d ${recipient}`) as the
 * attributes of a postern pipe service: everything after `argv=` is the command. An attribute postern's
 * pipe lacks (chroot=, ...) is the refusal text.
 */
function pipeArguments(args: readonly string[]): Array<[string, string]> | string {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < args.length; i++) {
    const eq = args[i]!.indexOf("=");
    const key = eq > 0 ? args[i]!.slice(0, eq).toLowerCase() : "";
    const value = eq > 0 ? args[i]!.slice(eq + 1) : "";
    if (key === "argv") {
      out.push(["argv", [value, ...args.slice(i + 1)].join(" ").trim()]);
      return out;
    }
    if (!(PIPE_ATTRIBUTES as readonly string[]).includes(key)) return `pipe argument "${args[i]}" is not one postern's pipe services have (${PIPE_ATTRIBUTES.join(", ")})`;
    out.push([key, value]);
  }
  return "pipe service without argv=";
}

/** Indexed tables (hash:, btree:, lmdb:, cdb:, ...) named by the configuration, expanded. */
function indexedTables(config: Config): { postmap: string[]; postalias: string[] } {
  const postmap = new Set<string>();
  const postalias = new Set<string>();
  const aliasDatabases = new Set<string>();
  const scan = (text: string, into: Set<string>) => {
    for (const word of splitList(text)) {
      const w = word.replace(/^proxy:/, "");
      const m = /^([a-z0-9_]+):(\/\S+)$/.exec(w);
      if (m && INDEXED_TYPES.has(m[1]!)) into.add(`${m[1]}:${m[2]}`);
    }
  };
  const safe = (name: string) => {
    try {
      return config.str(name);
    } catch (err) {
      if (err instanceof ConfigError) return "";
      throw err;
    }
  };
  for (const name of config.setNames()) {
    // only parameters postern acts on: a noted cache database or an unsupported map needs no index
    if (NOTED_POSTFIX_PARAMS.has(name) || paramDef(name)?.support?.kind === "install" || paramDef(name)?.support?.kind === "unsupported" || !paramDef(name)) continue;
    if (name === "alias_database" || name === "alias_maps") scan(safe(name), aliasDatabases);
    else scan(safe(name), postmap);
  }
  for (const svc of config.services()) for (const [k, v] of svc.overrides) if (!svc.builtinOverrides.has(k)) scan(config.withOverrides(new Map([[k, v]])).str(k), postmap);
  for (const a of aliasDatabases) postalias.add(a);
  for (const a of postalias) postmap.delete(a);
  return { postmap: [...postmap].sort(), postalias: [...postalias].sort() };
}
