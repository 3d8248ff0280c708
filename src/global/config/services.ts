/**
 * Services: Postfix's master.cf as TOML tables in postern.toml.
 *
 *     [services.submission]
 *     listen = "0.0.0.0:587"            # or a list; a bare port means every inet_interfaces address
 *     process_limit = 4
 *     smtpd_tls_security_level = "encrypt"   # any parameter: an override, like master.cf's -o
 *
 * smtp is enabled by default on port 25 of $inet_interfaces; submission and
 * smtps are known with Postfix's example overrides but stay off until their
 * table exists. `enable = false` turns a service off.
 *
 *     [services.mylist]                 # master.cf's pipe(8) line: a transport named mylist
 *     role = "pipe"
 *     flags = "FR"
 *     user = "list"                     # never root
 *     argv = "/usr/bin/list ${sender} ${recipient}"
 *
 * A pipe service listens on nothing and takes no parameter overrides (docs/pipe.md).
 * Read by every role as plain data; the file is the administrator's, but
 * every attribute is still checked here (root, flags, sizes, paths).
 */
import { ConfigError } from "./source.ts";
import { tomlValueToText } from "./value-text.ts";
import { POSTERN_TRANSPORTS } from "./value-checks.ts";

/** The attributes of a `role = "pipe"` service (master.cf's pipe(8) arguments). */
export const PIPE_ATTRIBUTES = ["argv", "user", "flags", "size", "null_sender", "directory", "eol"] as const;

/** Flags postern's pipe(8) acts on; any other letter is refused (pipe(8) stops on an unknown flag). */
export const PIPE_FLAGS = "BFORD.>Xhqu";

/** A pipe(8) service's delivery settings, as written (the user is resolved when mail is delivered). */
export interface PipeServiceDef {
  /** The command and its arguments, split at white space as master.cf does; `${name}` macros unexpanded. */
  argv: string[];
  /** user=name[:group] or uid:gid; never root. */
  user: string;
  flags: string;
  /** Largest message in bytes; 0 is no limit. */
  size: number;
  /** What ${sender} is for the null sender (null_sender=, default MAILER-DAEMON; may be empty). */
  nullSender: string;
  /** The command's working directory (directory=, absolute); undefined: "/". */
  directory?: string;
  /** The record delimiter (eol=, unescaped as Postfix's unescape(): "\\r\\n" is CR LF); default "\n". */
  eol: string;
}

export const SERVICE_ROLES = ["smtpd", "pipe"] as const;
export type ServiceRole = (typeof SERVICE_ROLES)[number];

/** Keys of a service table that are not parameter overrides. */
export const SERVICE_ATTRIBUTES = ["listen", "role", "process_limit", "enable", ...PIPE_ATTRIBUTES] as const;

export interface ServiceDef {
  name: string;
  role: ServiceRole;
  /** As written: "host:port", "[v6]:port", or a bare port for every inet_interfaces address. */
  listen: string[];
  /** undefined means $default_process_limit. */
  processLimit: number | undefined;
  enabled: boolean;
  /** Whether the file has a table for it. */
  configured: boolean;
  overrides: Map<string, { text: string; line?: number }>;
  /** Override names that come from the built-in defaults rather than the file. */
  builtinOverrides: Set<string>;
  /** role "pipe": its delivery settings. */
  pipe?: PipeServiceDef;
  line?: number;
}

interface BuiltinService {
  role: ServiceRole;
  listen: string[];
  enabled: boolean;
  overrides: Record<string, string>;
}

/** Built-in services, after Postfix's stock master.cf (submission and smtps as its commented examples). */
export const BUILTIN_SERVICES: Record<string, BuiltinService> = {
  smtp: { role: "smtpd", listen: ["25"], enabled: true, overrides: {} },
  submission: {
    role: "smtpd",
    listen: ["587"],
    enabled: false,
    overrides: {
      syslog_name: "postfix/submission",
      smtpd_tls_security_level: "encrypt",
      smtpd_sasl_auth_enable: "yes",
      smtpd_tls_auth_only: "yes",
      smtpd_reject_unlisted_recipient: "no",
      smtpd_relay_restrictions: "permit_sasl_authenticated, reject",
      smtpd_recipient_restrictions: "",
    },
  },
  smtps: {
    role: "smtpd",
    listen: ["465"],
    enabled: false,
    overrides: {
      syslog_name: "postfix/smtps",
      smtpd_tls_wrappermode: "yes",
      smtpd_sasl_auth_enable: "yes",
      smtpd_reject_unlisted_recipient: "no",
      smtpd_relay_restrictions: "permit_sasl_authenticated, reject",
      smtpd_recipient_restrictions: "",
    },
  },
};

export function parseServices(
  table: unknown,
  file: string,
  lines: { get(key: string): number | undefined },
): { services: ServiceDef[]; problems: ConfigError[] } {
  const problems: ConfigError[] = [];
  const fromFile: Record<string, unknown> = table && typeof table === "object" && !Array.isArray(table) ? (table as Record<string, unknown>) : {};
  if (table !== undefined && fromFile !== table) problems.push(new ConfigError("services: must be a table of [services.NAME] tables", file, lines.get("services")));
  const names = [...new Set([...Object.keys(BUILTIN_SERVICES), ...Object.keys(fromFile)])];
  const services: ServiceDef[] = [];
  for (const name of names) {
    const builtin = BUILTIN_SERVICES[name];
    const raw = fromFile[name];
    const at = (key?: string) => lines.get(key ? `services.${name}.${key}` : `services.${name}`);
    const svc: ServiceDef = {
      name,
      role: builtin?.role ?? "smtpd",
      listen: builtin ? [...builtin.listen] : [],
      processLimit: undefined,
      enabled: builtin?.enabled ?? true,
      configured: raw !== undefined,
      overrides: new Map(Object.entries(builtin?.overrides ?? {}).map(([k, v]) => [k, { text: v }])),
      builtinOverrides: new Set(Object.keys(builtin?.overrides ?? {})),
      line: raw !== undefined ? at() : undefined,
    };
    if (raw !== undefined) {
      if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
        problems.push(new ConfigError(`services.${name}: must be a table`, file, at()));
        continue;
      }
      svc.enabled = true;
      const pipeAttrs = new Map<string, string>();
      for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
        const where = at(key);
        const text = tomlValueToText(value);
        if (text === undefined) {
          problems.push(new ConfigError(`services.${name}.${key}: must be a string, number, boolean or array`, file, where));
          continue;
        }
        switch (key) {
          case "listen":
            svc.listen = Array.isArray(value) ? value.map(String) : text.split(/[\s,]+/).filter(Boolean);
            break;
          case "role":
            if (!(SERVICE_ROLES as readonly string[]).includes(text)) problems.push(new ConfigError(`services.${name}.role: unknown service role "${text}" (known: ${SERVICE_ROLES.join(", ")})`, file, where));
            else svc.role = text as ServiceRole;
            break;
          case "process_limit": {
            const n = /^\d+$/.test(text) ? Number(text) : NaN;
            if (!Number.isSafeInteger(n)) problems.push(new ConfigError(`services.${name}.process_limit: invalid integer value "${text}"`, file, where));
            else svc.processLimit = n;
            break;
          }
          case "enable":
            if (typeof value !== "boolean" && !/^(yes|no)$/i.test(text)) problems.push(new ConfigError(`services.${name}.enable: invalid boolean value "${text}"`, file, where));
            else svc.enabled = value === true || /^yes$/i.test(text);
            break;
          case "argv":
          case "user":
          case "flags":
          case "size":
          case "null_sender":
          case "directory":
          case "eol":
            pipeAttrs.set(key, Array.isArray(value) ? value.map(String).join(" ") : text);
            break;
          default:
            svc.overrides.set(key, { text, line: where });
            svc.builtinOverrides.delete(key);
        }
      }
      if (svc.role === "pipe") {
        // the transport name must be its own: a pipe "smtp" or "local" would shadow the built-in agent
        if (POSTERN_TRANSPORTS.includes(name.toLowerCase()) || BUILTIN_SERVICES[name]) {
          problems.push(new ConfigError(`services.${name}.role: "${name}" is a built-in transport or service of postern; give the pipe service another name`, file, at("role")));
          continue;
        }
        const parsed = parsePipeService(pipeAttrs);
        // what a pipe service would not act on is refused, never ignored
        for (const key of svc.overrides.keys()) {
          const why = "a pipe service takes no parameter overrides in postern yet; set the parameter globally";
          problems.push(new ConfigError(`services.${name}.${key}: ${why}`, file, at(key)));
        }
        if (svc.processLimit !== undefined) problems.push(new ConfigError(`services.${name}.process_limit: set ${name}_process_limit instead (the queue manager's limit for this transport)`, file, at("process_limit")));
        if (typeof parsed === "string") problems.push(new ConfigError(`services.${name}: ${parsed}`, file, at()));
        else svc.pipe = parsed;
        if (svc.listen.length > 0) problems.push(new ConfigError(`services.${name}.listen: a pipe service listens on nothing (the queue manager hands it mail)`, file, at("listen")));
        services.push(svc);
        continue;
      }
      for (const key of pipeAttrs.keys()) problems.push(new ConfigError(`services.${name}.${key}: only a pipe service (role = "pipe") takes ${key}`, file, at(key)));
      if (svc.listen.length === 0) problems.push(new ConfigError(`services.${name}.listen: no listen address`, file, at("listen") ?? at()));
      for (const l of svc.listen) if (!isListenAddress(l)) problems.push(new ConfigError(`services.${name}.listen: invalid address "${l}" (use host:port, [ipv6]:port or a port)`, file, at("listen")));
    }
    services.push(svc);
  }
  return { services, problems };
}

/** A pipe service's attributes, or why they are wrong (pipe(8) refuses to start on each of these). */
export function parsePipeService(attrs: ReadonlyMap<string, string>): PipeServiceDef | string {
  const argv = (attrs.get("argv") ?? "").trim().split(/[ \t\r\n]+/).filter(Boolean);
  if (argv.length === 0) return "missing argv command";
  const user = (attrs.get("user") ?? "").trim();
  if (user === "") return "missing user= command-line attribute";
  const [name, group] = user.split(":", 2);
  if (name === "root" || name === "0" || group === "0" || group === "root") return `user= command-line attribute specifies root privileges (${user}); name another user`;
  const flags = attrs.get("flags") ?? "";
  for (const f of flags) if (!PIPE_FLAGS.includes(f)) return `flags: unknown flag "${f}" (postern's pipe has ${PIPE_FLAGS.split("").join(" ")})`;
  const sizeText = (attrs.get("size") ?? "0").trim();
  const size = /^\d{1,15}$/.test(sizeText) ? Number(sizeText) : NaN;
  if (!Number.isSafeInteger(size)) return `size: bad size limit "${sizeText}"`;
  const directory = attrs.get("directory")?.trim();
  if (directory !== undefined && !directory.startsWith("/")) return `directory: "${directory}" must be an absolute path`;
  const eol = unescape(attrs.get("eol") ?? "\n");
  if (eol === "" || eol.length > 16) return `eol: bad record delimiter "${attrs.get("eol")}" (one to 16 characters)`;
  return { argv, user, flags, size, nullSender: attrs.get("null_sender") ?? "MAILER-DAEMON", ...(directory !== undefined ? { directory } : {}), eol };
}

/** Postfix's unescape(): \\a \\b \\f \\n \\r \\t \\v, \\ooo octal, \\x -> x. */
export function unescape(text: string): string {
  const named: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v" };
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== "\\") {
      out += c;
      continue;
    }
    const n = text[++i];
    if (n === undefined) break;
    if (n in named) out += named[n];
    else if (/[0-7]/.test(n)) {
      let v = Number(n);
      for (let k = 0; k < 2 && /[0-7]/.test(text[i + 1] ?? ""); k++) v = (v << 3) | Number(text[++i]);
      out += String.fromCharCode(v & 0xff);
    } else out += n;
  }
  return out;
}

/** The per-transport parameters a pipe service NAME reads as NAME_<param> (Postfix's transport-specific settings). */
export const PIPE_TRANSPORT_PARAMS = ["destination_recipient_limit", "destination_concurrency_limit", "process_limit", "time_limit"];

/** Every NAME_<param> of PIPE_TRANSPORT_PARAMS for the enabled pipe services: read by name, neither unknown nor refused. */
export function pipeTransportParamNames(services: readonly ServiceDef[]): Set<string> {
  return new Set([...pipeServices(services).keys()].flatMap((t) => PIPE_TRANSPORT_PARAMS.map((p) => `${t}_${p}`)));
}

/** The enabled pipe services by name. */
export function pipeServices(services: readonly ServiceDef[]): Map<string, PipeServiceDef> {
  const out = new Map<string, PipeServiceDef>();
  for (const s of services) if (s.role === "pipe" && s.enabled && s.pipe) out.set(s.name, s.pipe);
  return out;
}

/** "25", "127.0.0.1:2525", "[::1]:25", "localhost:25". */
export function isListenAddress(text: string): boolean {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(text);
  return !!m && Number(m[2]) > 0 && Number(m[2]) < 65536;
}

/**
 * How a service's process_limit (Postfix: at most that many clients at once,
 * one per process) maps onto postern's smtpd, which serves many sessions
 * in one process: one process per service, admitting up to process_limit
 * sessions at once. A limit of 0 means no limit, as in Postfix.
 *
 * Why one (issue 16): with one process per 20 sessions (up to one per
 * core) each process could admit only its share of the limit, and the
 * kernel's SO_REUSEPORT hash does not share connections evenly, so 100
 * sessions against process_limit = 100 met 421 4.3.2 in the process that
 * got more than 50; and a second process cost 15-30 MB and more CPU per
 * message than it saved (bench/README.md, "Issue 16 (session 4)").
 */
export function smtpdProcessPlan(processLimit: number): { processes: number; sessionsPerProcess: number } {
  return { processes: 1, sessionsPerProcess: Math.max(0, processLimit) };
}
