import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultsOnlyConfig, loadConfig } from "../../../../src/global/config/config.ts";
import { ConfigError } from "../../../../src/global/config/source.ts";
import { hostLookupMethods, resolverFromConfig, resolverOptions } from "../../../../src/global/dns/settings.ts";
import { lookupHostAddresses } from "../../../../src/global/dns/host-lookup.ts";
import { startFakeDns } from "../../../helpers/fake-dns.ts";
import { configDir, removeDir, tempDir } from "../../../helpers/run.ts";

const dir = tempDir("postern-dns-settings-");
afterAll(() => removeDir(dir));
const resolvConf = join(dir, "resolv.conf");
writeFileSync(resolvConf, "nameserver 192.0.2.53\nsearch corp.example\noptions timeout:3 attempts:4 ndots:2\n");

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe("resolver settings", () => {
  test("by default: resolv.conf's servers, timeout, attempts, search and ndots; Postfix's host lookup defaults", () => {
    const config = defaultsOnlyConfig();
    expect(resolverOptions(config, { resolvConf })).toEqual({
      servers: [{ address: "192.0.2.53", port: 53, family: 4 }],
      timeoutMs: 3000,
      attempts: 4,
      search: ["corp.example"],
      ndots: 2,
      cacheSize: 10000,
    });
    expect(config.str("smtp_host_lookup")).toBe("dns");
    expect(config.str("lmtp_host_lookup")).toBe("dns");
    expect(config.bool("disable_dns_lookups")).toBe(false);
  });

  test("dns_servers, dns_timeout, dns_attempts and dns_cache_size override resolv.conf", () => {
    const config = defaultsOnlyConfig().withOverrides({ dns_servers: "127.0.0.1:5353, [::1]:5354 127.0.0.2", dns_timeout: "1s", dns_attempts: "1", dns_cache_size: "0" });
    expect(resolverOptions(config, { resolvConf, hostsFile: null })).toMatchObject({
      servers: [
        { address: "127.0.0.1", port: 5353, family: 4 },
        { address: "::1", port: 5354, family: 6 },
        { address: "127.0.0.2", port: 53, family: 4 },
      ],
      timeoutMs: 1000,
      attempts: 1,
      cacheSize: 0,
      hostsFile: null,
    });
  });

  test("a bad dns_servers entry is a configuration error naming the file and line", () => {
    const conf = configDir('myhostname = "mx.example"\ndns_servers = ["127.0.0.1:5353", "ns.example"]\n');
    try {
      const err = thrown(() => resolverOptions(loadConfig(conf), { resolvConf }));
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toBe(`${join(conf, "postern.toml")}, line 2: dns_servers: bad name server address "ns.example"`);
    } finally {
      removeDir(conf);
    }
  });

  test("smtp_host_lookup and lmtp_host_lookup; disable_dns_lookups means native lookups only", () => {
    const d = defaultsOnlyConfig();
    expect(hostLookupMethods(d, "smtp")).toEqual(["dns"]);
    expect(hostLookupMethods(d.withOverrides({ smtp_host_lookup: "native, dns" }), "smtp")).toEqual(["native", "dns"]);
    expect(hostLookupMethods(d.withOverrides({ lmtp_host_lookup: "native" }), "lmtp")).toEqual(["native"]);
    expect(hostLookupMethods(d.withOverrides({ disable_dns_lookups: "yes" }), "smtp")).toEqual(["native"]);
    expect(thrown(() => hostLookupMethods(d.withOverrides({ smtp_host_lookup: "dns, nis" }), "smtp"))).toMatchObject({
      message: 'smtp_host_lookup: unknown host lookup method "nis" (use dns or native)',
    });
  });

  test("a resolver built from the configuration asks the configured server", async () => {
    const fake = await startFakeDns({ "relay.example": { A: ["192.0.2.25"] } });
    const resolver = resolverFromConfig(defaultsOnlyConfig().withOverrides({ dns_servers: fake.server, dns_timeout: "2s", dns_attempts: "1" }), { hostsFile: null });
    expect(await resolver.lookupAddresses("relay.example", ["ipv4"])).toMatchObject({ status: "ok", addresses: [{ address: "192.0.2.25" }] });
    expect(fake.queriesFor("relay.example", "A")).toHaveLength(1);
  });

  test("host lookups by method: dns, then native (the system's getaddrinfo) when DNS finds nothing", async () => {
    const fake = await startFakeDns({ "relay.example": { A: ["192.0.2.25"] } });
    const resolver = resolverFromConfig(defaultsOnlyConfig().withOverrides({ dns_servers: fake.server }), { hostsFile: null });
    expect(await lookupHostAddresses(resolver, "relay.example", ["ipv4"], ["dns"])).toMatchObject({ status: "ok", addresses: [{ address: "192.0.2.25" }] });
    // "localhost" is answered locally by both methods: the native one through /etc/hosts
    expect(await lookupHostAddresses(resolver, "localhost", ["ipv4"], ["native"])).toMatchObject({ status: "ok", addresses: [{ family: 4, address: "127.0.0.1" }] });
    expect(await lookupHostAddresses(resolver, "192.0.2.9", ["ipv4"], ["native"])).toMatchObject({ status: "ok", addresses: [{ address: "192.0.2.9" }] });
    expect(fake.queriesFor("localhost")).toEqual([]);
  });
});
