/**
 * The resolver a role builds from its configuration: /etc/resolv.conf's
 * servers, search list and `options timeout:/attempts:/ndots:`, with
 * postern's dns_servers, dns_timeout, dns_attempts and dns_cache_size over
 * them (tests point dns_servers at a fake server on 127.0.0.1). Also the
 * SMTP and LMTP clients' choice of host lookup (smtp_host_lookup,
 * lmtp_host_lookup, disable_dns_lookups).
 *
 * Reads resolv.conf once, synchronously: call it when a role starts, not
 * per connection.
 */
import type { Config } from "../config/config.ts";
import { ConfigError } from "../config/source.ts";
import { parseNameServer, readResolvConf, type NameServer } from "./resolv-conf.ts";
import { Resolver, type ResolverOptions } from "./resolver.ts";

export interface ResolverSettingsOptions {
  /** Where resolv.conf is (tests). */
  resolvConf?: string;
  /** Where the hosts file is; null for none (tests). */
  hostsFile?: string | null;
}

function configError(config: Config, name: string, problem: string): ConfigError {
  const line = config.lineOf(name);
  return new ConfigError(`${name}: ${problem}`, line !== undefined ? config.path : undefined, line);
}

/** The ResolverOptions a configuration asks for; a bad dns_servers entry is a ConfigError. */
export function resolverOptions(config: Config, opts: ResolverSettingsOptions = {}): ResolverOptions {
  const conf = readResolvConf(opts.resolvConf);
  const servers: NameServer[] = [];
  for (const word of config.list("dns_servers")) {
    const s = parseNameServer(word);
    if ("problem" in s) throw configError(config, "dns_servers", s.problem);
    servers.push(s);
  }
  const timeout = config.time("dns_timeout");
  const attempts = config.int("dns_attempts");
  return {
    servers: servers.length > 0 ? servers : conf.servers,
    timeoutMs: (timeout > 0 ? timeout : conf.timeout) * 1000,
    attempts: attempts > 0 ? attempts : conf.attempts,
    search: conf.search,
    ndots: conf.ndots,
    cacheSize: config.int("dns_cache_size"),
    ...(opts.hostsFile !== undefined ? { hostsFile: opts.hostsFile } : {}),
  };
}

export function resolverFromConfig(config: Config, opts: ResolverSettingsOptions = {}): Resolver {
  return new Resolver(resolverOptions(config, opts));
}

export type HostLookupMethod = "dns" | "native";

/**
 * How the SMTP or LMTP client finds a host's addresses, in order. disable_dns_lookups = yes, or
 * smtp_dns_support_level = disabled (which, when set, decides instead of it), means the system's lookups
 * only (and no MX lookups), as in Postfix.
 */
export function hostLookupMethods(config: Config, protocol: "smtp" | "lmtp"): HostLookupMethod[] {
  const support = config.str(`${protocol}_dns_support_level`).trim().toLowerCase();
  if (support === "disabled" || (support === "" && config.bool("disable_dns_lookups"))) return ["native"];
  const name = `${protocol}_host_lookup`;
  const methods: HostLookupMethod[] = [];
  for (const word of config.list(name).map((w) => w.toLowerCase())) {
    if (word !== "dns" && word !== "native") throw configError(config, name, `unknown host lookup method "${word}" (use dns or native)`);
    if (!methods.includes(word)) methods.push(word);
  }
  if (methods.length === 0) throw configError(config, name, "no host lookup method (use dns, native or both)");
  return methods;
}
