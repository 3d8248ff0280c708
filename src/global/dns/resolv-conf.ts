/**
 * /etc/resolv.conf as the C library reads it: `nameserver` (at most three),
 * `search` and `domain` (the last one wins), and `options timeout:N
 * attempts:N ndots:N` with glibc's defaults and caps. Other options are
 * ignored. Also parses the `IP` / `IP:port` / `[IPv6]:port` server syntax of
 * postern's dns_servers parameter.
 *
 * The file is trusted as the administrator's, but read defensively: bad
 * lines are skipped, numbers are capped.
 */
import { readFileSync } from "node:fs";
import { parseIpAddress, formatIpAddress } from "../../util/net/cidr-match.ts";

export interface NameServer {
  /** An IP address (IPv6 without brackets; a %zone suffix is kept). */
  address: string;
  port: number;
  family: 4 | 6;
}

export interface ResolvConf {
  servers: NameServer[];
  search: string[];
  /** Seconds to wait for one server's answer. */
  timeout: number;
  attempts: number;
  ndots: number;
}

const MAXNS = 3;
const MAX_SEARCH = 6;

export const RESOLV_CONF_DEFAULTS: Readonly<ResolvConf> = {
  servers: [{ address: "127.0.0.1", port: 53, family: 4 }],
  search: [],
  timeout: 5,
  attempts: 2,
  ndots: 1,
};

/** `IP`, `IP:port`, `[IP]` or `[IP]:port` (a bare IPv6 address has no port); a reason when it is none of those. */
export function parseNameServer(text: string, defaultPort = 53): NameServer | { problem: string } {
  const t = text.trim();
  let host = t;
  let port = defaultPort;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  const v4port = /^([0-9.]+):(\d+)$/.exec(t);
  if (bracket) {
    host = bracket[1]!;
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else if (v4port) {
    host = v4port[1]!;
    port = Number(v4port[2]);
  }
  const [bare, zone] = host.split("%", 2) as [string, string | undefined];
  const addr = parseIpAddress(bare);
  if (!addr) return { problem: `bad name server address "${text}"` };
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { problem: `bad name server port in "${text}"` };
  return { address: formatIpAddress(addr) + (zone ? `%${zone}` : ""), port, family: addr.family };
}

/** The settings in resolv.conf text, over glibc's defaults. */
export function parseResolvConf(text: string): ResolvConf {
  const servers: NameServer[] = [];
  let search: string[] = [];
  let { timeout, attempts, ndots } = RESOLV_CONF_DEFAULTS;
  for (const rawLine of text.split("\n")) {
    const line = rawLine.replace(/[#;].*/, "").trim();
    const [keyword, ...args] = line.split(/\s+/);
    if (keyword === "nameserver" && args[0] && servers.length < MAXNS) {
      const s = parseNameServer(args[0]);
      // resolv.conf has no port syntax: "1.2.3.4:53" there is a bad line, as for libc
      if (!("problem" in s) && !args[0].includes("]") && !/^\d+\.\d+\.\d+\.\d+:/.test(args[0])) servers.push(s);
    } else if (keyword === "search") {
      search = args.filter(Boolean).slice(0, MAX_SEARCH);
    } else if (keyword === "domain" && args[0]) {
      search = [args[0]];
    } else if (keyword === "options") {
      for (const opt of args) {
        const m = /^(timeout|attempts|ndots):(\d+)$/.exec(opt);
        if (!m) continue;
        const n = Number(m[2]);
        if (m[1] === "timeout") timeout = Math.min(Math.max(n, 1), 30);
        else if (m[1] === "attempts") attempts = Math.min(Math.max(n, 1), 5);
        else ndots = Math.min(n, 15);
      }
    }
  }
  return {
    servers: servers.length > 0 ? servers : [...RESOLV_CONF_DEFAULTS.servers],
    search: search.map((s) => s.replace(/\.$/, "").toLowerCase()).filter((s) => s.length > 0),
    timeout,
    attempts,
    ndots,
  };
}

/** Reads resolv.conf; a missing or unreadable file gives the defaults (a server on 127.0.0.1), as in libc. */
export function readResolvConf(path = "/etc/resolv.conf"): ResolvConf {
  try {
    return parseResolvConf(readFileSync(path, "utf8"));
  } catch {
    return { ...RESOLV_CONF_DEFAULTS, servers: [...RESOLV_CONF_DEFAULTS.servers] };
  }
}
