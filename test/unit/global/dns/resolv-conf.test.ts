import { describe, expect, test } from "bun:test";
import { parseNameServer, parseResolvConf, readResolvConf } from "../../../../src/global/dns/resolv-conf.ts";

describe("resolv.conf", () => {
  test("servers, search list and options", () => {
    const conf = parseResolvConf(
      [
        "# comment",
        "nameserver 192.0.2.53",
        "nameserver 2001:db8::53",
        "domain old.example",
        "search Example.COM. corp.example ; trailing comment",
        "options ndots:2 timeout:3 attempts:4 rotate",
      ].join("\n"),
    );
    expect(conf).toEqual({
      servers: [
        { address: "192.0.2.53", port: 53, family: 4 },
        { address: "2001:db8::53", port: 53, family: 6 },
      ],
      search: ["example.com", "corp.example"],
      timeout: 3,
      attempts: 4,
      ndots: 2,
    });
  });

  test("glibc's defaults, limits and caps", () => {
    const conf = parseResolvConf("nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nnameserver 10.0.0.4\noptions timeout:99 attempts:0 ndots:40");
    expect(conf.servers.map((s) => s.address)).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    expect([conf.timeout, conf.attempts, conf.ndots]).toEqual([30, 1, 15]);
    const empty = parseResolvConf("");
    expect(empty).toEqual({ servers: [{ address: "127.0.0.1", port: 53, family: 4 }], search: [], timeout: 5, attempts: 2, ndots: 1 });
    expect(parseResolvConf("nameserver not-an-ip\nnameserver 10.0.0.9:5353").servers).toEqual([{ address: "127.0.0.1", port: 53, family: 4 }]);
  });

  test("a missing file gives the defaults", () => {
    expect(readResolvConf("/nonexistent/resolv.conf").servers).toEqual([{ address: "127.0.0.1", port: 53, family: 4 }]);
  });

  test("dns_servers syntax: IP, IP:port, [IPv6]:port", () => {
    expect(parseNameServer("127.0.0.1:5353")).toEqual({ address: "127.0.0.1", port: 5353, family: 4 });
    expect(parseNameServer("192.0.2.1")).toEqual({ address: "192.0.2.1", port: 53, family: 4 });
    expect(parseNameServer("[::1]:5300")).toEqual({ address: "::1", port: 5300, family: 6 });
    expect(parseNameServer("2001:DB8::1")).toEqual({ address: "2001:db8::1", port: 53, family: 6 });
    expect(parseNameServer("dns.example:53")).toEqual({ problem: expect.stringContaining('"dns.example:53"') });
    expect(parseNameServer("127.0.0.1:0")).toEqual({ problem: expect.stringContaining("port") });
    expect(parseNameServer("127.0.0.1:70000")).toEqual({ problem: expect.stringContaining("port") });
  });
});
