import { describe, expect, test } from "bun:test";
import { defaultsOnlyConfig } from "../../../src/global/config/config.ts";
import { allowedProtocols, secureOptionsFor } from "../../../src/smtpd/tls.ts";
import { listenAddresses } from "../../../src/global/config/listen-addresses.ts";

describe("TLS protocols in Postfix's syntax", () => {
  test(">=, <=, exclusions and lists", () => {
    expect([...allowedProtocols(">=TLSv1.2")].sort()).toEqual(["TLSv1.2", "TLSv1.3"]);
    expect([...allowedProtocols("!SSLv2, !SSLv3, !TLSv1, !TLSv1.1")].sort()).toEqual(["TLSv1.2", "TLSv1.3"]);
    expect([...allowedProtocols("<=TLSv1.2")].sort()).toEqual(["TLSv1", "TLSv1.1", "TLSv1.2"]);
    expect([...allowedProtocols("TLSv1.3")]).toEqual(["TLSv1.3"]);
    expect(() => allowedProtocols("TLSv9")).toThrow('smtpd_tls_protocols: unknown TLS protocol "TLSv9"');
    expect(() => allowedProtocols("!TLSv1, !TLSv1.1, !TLSv1.2, !TLSv1.3")).toThrow("allows no TLS protocol");
  });

  test("the SSL_OP_NO_* bits for what is not allowed", () => {
    const bits = secureOptionsFor(new Set(["TLSv1.2", "TLSv1.3"]));
    expect(bits & 0x04000000).toBeTruthy(); // TLSv1
    expect(bits & 0x10000000).toBeTruthy(); // TLSv1.1
    expect(bits & 0x08000000).toBe(0); // TLSv1.2
    expect(bits & 0x20000000).toBe(0); // TLSv1.3
  });
});

describe("listen addresses", () => {
  const cfg = (o: Record<string, string>) => defaultsOnlyConfig().withOverrides(o);
  test("host:port and [ipv6]:port as written", () => {
    expect(listenAddresses(cfg({}), ["127.0.0.1:2525", "[::1]:2525", "localhost:25"])).toEqual([
      { hostname: "127.0.0.1", port: 2525 },
      { hostname: "::1", port: 2525 },
      { hostname: "127.0.0.1", port: 25 },
    ]);
  });
  test("a bare port: every inet_interfaces address of the inet_protocols", () => {
    expect(listenAddresses(cfg({ inet_interfaces: "all", inet_protocols: "all" }), ["25"])).toEqual([
      { hostname: "0.0.0.0", port: 25 },
      { hostname: "::", port: 25 },
    ]);
    expect(listenAddresses(cfg({ inet_interfaces: "all", inet_protocols: "ipv4" }), ["587"])).toEqual([{ hostname: "0.0.0.0", port: 587 }]);
    expect(listenAddresses(cfg({ inet_interfaces: "loopback-only", inet_protocols: "ipv6" }), ["25"])).toEqual([{ hostname: "::1", port: 25 }]);
    expect(listenAddresses(cfg({ inet_interfaces: "192.0.2.1, [2001:db8::1]", inet_protocols: "all" }), ["25"])).toEqual([
      { hostname: "192.0.2.1", port: 25 },
      { hostname: "2001:db8::1", port: 25 },
    ]);
    expect(() => listenAddresses(cfg({ inet_interfaces: "mail.example.com" }), ["25"])).toThrow("inet_interfaces");
  });
});
