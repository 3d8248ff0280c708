/**
 * The addresses a service listens on: each `listen` entry of its table is
 * "host:port", "[ipv6]:port", or a bare port that stands for every address
 * in inet_interfaces ("all": the IPv4 and IPv6 wildcards, "loopback-only":
 * 127.0.0.1 and ::1, or a list of addresses), limited by inet_protocols
 * (ipv4, ipv6, all).
 *
 * The master binds them as root (ports below 1024) and passes them to the
 * service's smtpd, which it starts on demand (src/master/smtpd-sockets.ts);
 * a service the master cannot hold them for binds them itself, with
 * SO_REUSEPORT, before it drops to mail_owner. Used by both, so they agree.
 * The configuration is trusted.
 */
import type { Config } from "./config.ts";
import { ConfigError } from "./source.ts";
import { parseIpAddress } from "../../util/net/cidr-match.ts";

export interface ListenAddress {
  hostname: string;
  port: number;
}

export function protocolsOf(config: Config): { v4: boolean; v6: boolean } {
  const words = config.list("inet_protocols").map((w) => w.toLowerCase());
  if (words.includes("all")) return { v4: true, v6: true };
  const v4 = words.includes("ipv4");
  const v6 = words.includes("ipv6");
  if (!v4 && !v6) throw new ConfigError(`inet_protocols: "${words.join(", ")}" names no protocol (use ipv4, ipv6 or all)`);
  return { v4, v6 };
}

function interfaceHosts(config: Config): string[] {
  const { v4, v6 } = protocolsOf(config);
  const words = config.list("inet_interfaces").map((w) => w.toLowerCase());
  const out: string[] = [];
  const add = (h: string) => {
    if (!out.includes(h)) out.push(h);
  };
  for (const w of words) {
    if (w === "all") {
      if (v4) add("0.0.0.0");
      if (v6) add("::");
    } else if (w === "loopback-only" || w === "localhost") {
      if (v4) add("127.0.0.1");
      if (v6) add("::1");
    } else {
      const bare = w.replace(/^\[|\]$/g, "");
      const ip = parseIpAddress(bare);
      if (!ip) throw new ConfigError(`inet_interfaces: "${w}" is not an address (host names are not supported; use addresses, all or loopback-only)`);
      if ((ip.family === 4 && v4) || (ip.family === 6 && v6)) add(bare);
    }
  }
  if (out.length === 0) throw new ConfigError("inet_interfaces: no address to listen on with these inet_protocols");
  return out;
}

export function listenAddresses(config: Config, entries: readonly string[]): ListenAddress[] {
  const out: ListenAddress[] = [];
  for (const entry of entries) {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(entry);
    if (m) {
      const host = m[1] ?? m[2]!;
      out.push({ hostname: host === "localhost" ? "127.0.0.1" : host, port: Number(m[3]) });
    } else if (/^\d{1,5}$/.test(entry)) {
      for (const host of interfaceHosts(config)) out.push({ hostname: host, port: Number(entry) });
    } else throw new ConfigError(`listen: invalid address "${entry}"`);
  }
  return out;
}
