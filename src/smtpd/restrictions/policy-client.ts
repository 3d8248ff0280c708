/**
 * The client side of Postfix's policy delegation protocol
 * (SMTPD_POLICY_README): `name=value` lines, an empty line, and one reply
 * of the same shape whose `action=` attribute the restriction evaluates.
 *
 *   check_policy_service inet:127.0.0.1:10023
 *   check_policy_service unix:private/policy          (relative to queue_directory)
 *   check_policy_service { unix:/run/policyd.sock, timeout=10s, default_action=DUNNO }
 *
 * Connections are kept for reuse, one per request in flight (the smtpd
 * process serves many sessions at once, each request waits for its own
 * answer): an idle connection is closed after max_idle, any connection
 * after max_ttl or request_limit requests. A request that fails (no
 * connection, timeout, closed, malformed reply) is tried again up to
 * try_limit times, retry_delay apart; then the caller applies
 * default_action.
 *
 * Runs in smtpd as mail_owner. The policy server is the administrator's,
 * but its replies are bounded all the same (REPLY_LIMIT bytes, lines of at
 * most LINE_LIMIT) and must be `name=value` lines; values sent to it are
 * the client's data with newlines made impossible (a value holding one
 * would start an attribute of the client's choosing).
 */
import { connect, type Socket } from "node:net";
import { isAbsolute, join } from "node:path";
import type { Config } from "../../global/config/config.ts";
import { splitList } from "../../global/config/value-text.ts";
import { parseInteger, parseTime } from "../../util/duration.ts";

/** Largest reply accepted, all lines together (characters of its UTF-8 text). */
export const REPLY_LIMIT = 16 * 1024;
/** Longest reply line. */
export const LINE_LIMIT = 4096;

export type PolicyEndpoint = { kind: "inet"; host: string; port: number } | { kind: "unix"; path: string };

export interface PolicyServiceSettings {
  timeoutMs: number;
  defaultAction: string;
  maxIdleMs: number;
  maxTtlMs: number;
  tryLimit: number;
  retryDelayMs: number;
  /** 0: no limit. */
  requestLimit: number;
  policyContext: string;
}

export interface PolicyService {
  /** As written in the restriction list: names the service in log lines. */
  label: string;
  endpoint: PolicyEndpoint;
  settings: PolicyServiceSettings;
}

const ENTRY_NAMES: Record<string, keyof PolicyServiceSettings> = {
  timeout: "timeoutMs",
  default_action: "defaultAction",
  max_idle: "maxIdleMs",
  max_ttl: "maxTtlMs",
  try_limit: "tryLimit",
  retry_delay: "retryDelayMs",
  request_limit: "requestLimit",
  policy_context: "policyContext",
};

function parseEndpoint(text: string, config: Config): PolicyEndpoint | string {
  const colon = text.indexOf(":");
  const kind = colon < 0 ? "" : text.slice(0, colon).toLowerCase();
  const rest = colon < 0 ? text : text.slice(colon + 1);
  if (kind === "unix") {
    if (!rest) return `policy service "${text}": no socket path`;
    return { kind: "unix", path: isAbsolute(rest) ? rest : join(config.str("queue_directory"), rest) };
  }
  if (kind === "inet") {
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(rest);
    const port = m ? Number(m[3]) : 0;
    if (!m || port < 1 || port > 65535) return `policy service "${text}": expected inet:host:port`;
    return { kind: "inet", host: m[1] ?? m[2]!, port };
  }
  return `policy service "${text}": expected inet:host:port or unix:pathname`;
}

/** The restriction's argument, with the smtpd_policy_service_* parameters for what the entry does not set. */
export function parsePolicyService(arg: string, config: Config): PolicyService | string {
  const settings: PolicyServiceSettings = {
    timeoutMs: config.time("smtpd_policy_service_timeout") * 1000,
    defaultAction: config.str("smtpd_policy_service_default_action"),
    maxIdleMs: config.time("smtpd_policy_service_max_idle") * 1000,
    maxTtlMs: config.time("smtpd_policy_service_max_ttl") * 1000,
    tryLimit: config.int("smtpd_policy_service_try_limit"),
    retryDelayMs: config.time("smtpd_policy_service_retry_delay") * 1000,
    requestLimit: config.int("smtpd_policy_service_request_limit"),
    policyContext: config.str("smtpd_policy_service_policy_context"),
  };
  let target = arg.trim();
  if (target.startsWith("{")) {
    if (!target.endsWith("}")) return `policy service "${arg}": missing "}"`;
    const words = splitList(target.slice(1, -1));
    target = words.shift() ?? "";
    for (const word of words) {
      const item = word.startsWith("{") && word.endsWith("}") ? word.slice(1, -1) : word;
      const eq = item.indexOf("=");
      const name = eq < 0 ? "" : item.slice(0, eq).trim().toLowerCase();
      const value = eq < 0 ? "" : item.slice(eq + 1).trim();
      const key = Object.hasOwn(ENTRY_NAMES, name) ? ENTRY_NAMES[name] : undefined;
      if (!key) return `policy service "${arg}": unknown attribute "${item}"`;
      if (key === "defaultAction" || key === "policyContext") settings[key] = value;
      else if (key === "tryLimit" || key === "requestLimit") {
        const n = parseInteger(value);
        if (n === undefined) return `policy service "${arg}": bad ${name} value "${value}"`;
        settings[key] = n;
      } else {
        const s = parseTime(value, "s");
        if (s === undefined) return `policy service "${arg}": bad ${name} value "${value}"`;
        settings[key] = s * 1000;
      }
    }
  }
  const endpoint = parseEndpoint(target, config);
  if (typeof endpoint === "string") return endpoint;
  settings.tryLimit = Math.max(1, settings.tryLimit);
  return { label: target, endpoint, settings };
}

/** Attribute values go on one line each: CR, LF and NUL would end or corrupt the request. */
export function encodeRequest(attrs: ReadonlyArray<readonly [string, string]>): string {
  return `${attrs.map(([n, v]) => `${n}=${v.replace(/[\r\n\0]/g, "?")}`).join("\n")}\n\n`;
}

/** Reads `name=value` lines up to the empty line; undefined until it is complete; throws on a malformed reply. */
export function decodeReply(buffer: string): Map<string, string> | undefined {
  const end = buffer.indexOf("\n\n");
  const complete = end >= 0 || buffer === "\n";
  if (!complete) {
    if (buffer.length > REPLY_LIMIT) throw new Error(`reply longer than ${REPLY_LIMIT} bytes`);
    const lastLine = buffer.slice(buffer.lastIndexOf("\n") + 1);
    if (lastLine.length > LINE_LIMIT) throw new Error(`reply line longer than ${LINE_LIMIT} bytes`);
    return undefined;
  }
  if (end + 2 < buffer.length) throw new Error("data after the end of the reply");
  const attrs = new Map<string, string>();
  for (const line of buffer.slice(0, Math.max(0, end)).split("\n")) {
    if (line.length > LINE_LIMIT) throw new Error(`reply line longer than ${LINE_LIMIT} bytes`);
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`malformed reply line "${line.slice(0, 60)}"`);
    attrs.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return attrs;
}

class PolicyConnection {
  readonly openedAt = Date.now();
  requests = 0;
  #socket: Socket;
  #buffer = "";
  #closed = false;
  #failure: Error | undefined;
  #wake: (() => void) | undefined;
  idleTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      this.#buffer += d;
      this.#wake?.();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#wake?.();
    });
    socket.on("error", (err) => {
      this.#failure ??= err;
      this.#closed = true;
      this.#wake?.();
    });
  }

  static open(endpoint: PolicyEndpoint, signal: AbortSignal): Promise<PolicyConnection> {
    return new Promise((resolve, reject) => {
      const socket = endpoint.kind === "unix" ? connect({ path: endpoint.path }) : connect({ host: endpoint.host, port: endpoint.port });
      const onAbort = () => {
        socket.destroy();
        reject(new Error("timeout while connecting"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      socket.once("connect", () => {
        signal.removeEventListener("abort", onAbort);
        resolve(new PolicyConnection(socket));
      });
      socket.once("error", (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      });
    });
  }

  get usable(): boolean {
    return !this.#closed && this.#buffer === "";
  }

  async request(text: string, signal: AbortSignal): Promise<Map<string, string>> {
    this.requests++;
    this.#buffer = "";
    // a write the kernel does not take at once leaves with the event loop; the reply proves it arrived
    this.#socket.write(text, "utf8");
    for (;;) {
      if (signal.aborted) throw new Error("timeout while waiting for the reply");
      const reply = decodeReply(this.#buffer);
      if (reply) {
        this.#buffer = "";
        return reply;
      }
      if (this.#closed) throw this.#failure ?? new Error("connection closed before the reply");
      await new Promise<void>((resolve) => {
        const done = () => {
          this.#wake = undefined;
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.#wake = done;
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  close(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.#closed = true;
    this.#socket.destroy();
  }
}

/** Idle connections per endpoint, for reuse by later requests of this process. */
const idle = new Map<string, PolicyConnection[]>();

function endpointKey(e: PolicyEndpoint): string {
  return e.kind === "unix" ? `unix:${e.path}` : `inet:${e.host}:${e.port}`;
}

function takeIdle(key: string, s: PolicyServiceSettings): PolicyConnection | undefined {
  const list = idle.get(key);
  while (list?.length) {
    const c = list.pop()!;
    if (c.idleTimer) clearTimeout(c.idleTimer);
    if (c.usable && Date.now() - c.openedAt < s.maxTtlMs) return c;
    c.close();
  }
  return undefined;
}

function giveBack(key: string, c: PolicyConnection, s: PolicyServiceSettings): void {
  if (!c.usable || Date.now() - c.openedAt >= s.maxTtlMs || (s.requestLimit > 0 && c.requests >= s.requestLimit)) {
    c.close();
    return;
  }
  const list = idle.get(key) ?? [];
  idle.set(key, list);
  list.push(c);
  c.idleTimer = setTimeout(() => {
    const i = list.indexOf(c);
    if (i >= 0) list.splice(i, 1);
    c.close();
  }, s.maxIdleMs);
  c.idleTimer.unref?.();
}

/**
 * Sends one request and returns the reply's attributes, trying up to try_limit times; throws the
 * last failure when every attempt failed (the caller then applies default_action).
 */
export async function queryPolicyService(service: PolicyService, attrs: ReadonlyArray<readonly [string, string]>): Promise<Map<string, string>> {
  const s = service.settings;
  const key = endpointKey(service.endpoint);
  const text = encodeRequest(attrs);
  let last: Error = new Error("no attempt made");
  for (let attempt = 0; attempt < s.tryLimit; attempt++) {
    if (attempt > 0 && s.retryDelayMs > 0) await Bun.sleep(s.retryDelayMs);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), s.timeoutMs);
    let conn: PolicyConnection | undefined;
    try {
      conn = takeIdle(key, s) ?? (await PolicyConnection.open(service.endpoint, controller.signal));
      const reply = await conn.request(text, controller.signal);
      giveBack(key, conn, s);
      return reply;
    } catch (err) {
      conn?.close();
      last = err as Error;
    } finally {
      clearTimeout(timer);
    }
  }
  throw last;
}

/** Closes every idle connection (tests; a process that ends closes them anyway). */
export function closeIdlePolicyConnections(): void {
  for (const list of idle.values()) for (const c of list.splice(0)) c.close();
}
