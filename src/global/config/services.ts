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
 */
import { ConfigError } from "./source.ts";
import { tomlValueToText } from "./value-text.ts";

export const SERVICE_ROLES = ["smtpd"] as const;
export type ServiceRole = (typeof SERVICE_ROLES)[number];

/** Keys of a service table that are not parameter overrides. */
export const SERVICE_ATTRIBUTES = ["listen", "role", "process_limit", "enable"] as const;

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
          default:
            svc.overrides.set(key, { text, line: where });
            svc.builtinOverrides.delete(key);
        }
      }
      if (svc.listen.length === 0) problems.push(new ConfigError(`services.${name}.listen: no listen address`, file, at("listen") ?? at()));
      for (const l of svc.listen) if (!isListenAddress(l)) problems.push(new ConfigError(`services.${name}.listen: invalid address "${l}" (use host:port, [ipv6]:port or a port)`, file, at("listen")));
    }
    services.push(svc);
  }
  return { services, problems };
}

/** "25", "127.0.0.1:2525", "[::1]:25", "localhost:25". */
export function isListenAddress(text: string): boolean {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(text);
  return !!m && Number(m[2]) > 0 && Number(m[2]) < 65536;
}

/** Sessions of process_limit that one smtpd process takes before the master starts another (up to one per core). */
export const SESSIONS_PER_PROCESS = 20;

/**
 * How a service's process_limit (Postfix: at most that many clients at once,
 * one per process) is spread over postern's smtpd processes, which serve
 * many sessions each: one process per SESSIONS_PER_PROCESS sessions, at
 * most one per core, and each process admits its share of the limit.
 * A limit of 0 means no limit, as in Postfix.
 */
export function smtpdProcessPlan(processLimit: number, cores: number): { processes: number; sessionsPerProcess: number } {
  if (processLimit <= 0) return { processes: Math.max(1, cores), sessionsPerProcess: 0 };
  const processes = Math.max(1, Math.min(cores, Math.ceil(processLimit / SESSIONS_PER_PROCESS)));
  return { processes, sessionsPerProcess: Math.ceil(processLimit / processes) };
}
