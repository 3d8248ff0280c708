import { describe, expect, test } from "bun:test";
import { certificateNames, cipherBits, judgeTls, matchesPolicy, parsePolicyValue, policyKeys, tlsLogLine, type TlsPolicy } from "../../../src/smtp/tls-policy.ts";
import { parseDestination, type Destination } from "../../../src/smtp/nexthop.ts";
import type { Endpoint } from "../../../src/smtp/routing.ts";

const opts = { lmtp: false, defaultPort: 25, queueDirectory: "/q" };
const dest = (t: string) => parseDestination(t, opts) as Destination;
const ep = (host: string): Endpoint => ({ host, address: "192.0.2.1", port: 25, family: 4, pref: 10 });
const policy = (level: TlsPolicy["level"], match: string[]): TlsPolicy => ({ level, match, servername: "" });

describe("policy table keys", () => {
  test("a domain: itself, then its parent domains with a leading dot", () => {
    expect(policyKeys(dest("mail.example.com"))).toEqual(["mail.example.com", ".example.com", ".com"]);
  });
  test("a domain with a port: as written first", () => {
    expect(policyKeys(dest("example.com:2525"))).toEqual(["example.com:2525", "example.com", ".com"]);
  });
  test("[host]:port only as written", () => {
    expect(policyKeys(dest("[smtp.example.com]:587"))).toEqual(["[smtp.example.com]:587"]);
  });
  test("values: the level, then attributes", () => {
    const v = parsePolicyValue("secure match=example.com:.example.com protocols=>=TLSv1.2");
    expect(v.level).toBe("secure");
    expect(v.attrs.get("match")).toBe("example.com:.example.com");
    expect(v.attrs.get("protocols")).toBe(">=TLSv1.2");
  });
});

describe("certificate names", () => {
  test("DNS subjectAltNames win over the CN", () => {
    expect(certificateNames({ subject: { CN: "cn.example.com" }, subjectaltname: "DNS:a.example.com, IP Address:192.0.2.1, DNS:*.b.example.com" })).toEqual(["a.example.com", "*.b.example.com"]);
  });
  test("the CN when there is no DNS subjectAltName", () => {
    expect(certificateNames({ subject: { CN: "Mail.Example.COM" } })).toEqual(["mail.example.com"]);
  });

  test("verify matches the MX host name, a wildcard one label deep", () => {
    const d = dest("example.com");
    expect(matchesPolicy(["mx1.example.com"], policy("verify", ["hostname"]), d, ep("mx1.example.com"))).toBe(true);
    expect(matchesPolicy(["*.example.com"], policy("verify", ["hostname"]), d, ep("mx1.example.com"))).toBe(true);
    expect(matchesPolicy(["*.example.com"], policy("verify", ["hostname"]), d, ep("a.mx1.example.com"))).toBe(false);
    expect(matchesPolicy(["other.example.net"], policy("verify", ["hostname"]), d, ep("mx1.example.com"))).toBe(false);
  });

  test("secure matches the next hop and its subdomains, not the MX name from DNS", () => {
    const d = dest("example.com");
    const p = policy("secure", ["nexthop", "dot-nexthop"]);
    expect(matchesPolicy(["example.com"], p, d, ep("mx.evil.example"))).toBe(true);
    expect(matchesPolicy(["mx.example.com"], p, d, ep("mx.evil.example"))).toBe(true);
    expect(matchesPolicy(["mx.evil.example"], p, d, ep("mx.evil.example"))).toBe(false);
  });

  test("explicit names and .domain patterns", () => {
    const d = dest("example.com");
    expect(matchesPolicy(["smtp.provider.net"], policy("secure", ["smtp.provider.net"]), d, ep("x"))).toBe(true);
    expect(matchesPolicy(["a.provider.net"], policy("secure", [".provider.net"]), d, ep("x"))).toBe(true);
    expect(matchesPolicy(["provider.net"], policy("secure", [".provider.net"]), d, ep("x"))).toBe(false);
  });
});

describe("judging a handshake", () => {
  const cert = { subject: { CN: "mx1.example.com" }, subjectaltname: "DNS:mx1.example.com", fingerprint256: "AA:BB:CC" };
  const info = (authorized: boolean, code?: string) => ({ protocol: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", authorized, ...(code ? { authorizationCode: code, authorizationError: code } : {}), peerCertificate: cert });

  test("may and encrypt take any certificate and say how trusted it was", () => {
    expect(judgeTls(info(false, "DEPTH_ZERO_SELF_SIGNED_CERT"), policy("may", []), dest("example.com"), ep("mx1.example.com"))).toMatchObject({ label: "Untrusted" });
    expect(judgeTls(info(true), policy("encrypt", []), dest("example.com"), ep("mx1.example.com"))).toMatchObject({ label: "Trusted" });
    // Bun's own name check against the SNI or address is not a chain failure
    expect(judgeTls(info(false, "ERR_TLS_CERT_ALTNAME_INVALID"), policy("may", []), dest("example.com"), ep("mx1.example.com"))).toMatchObject({ label: "Trusted", trusted: true });
  });

  test("verify needs a trusted chain and a matching name", () => {
    const d = dest("example.com");
    expect(judgeTls(info(true), policy("verify", ["hostname"]), d, ep("mx1.example.com"))).toMatchObject({ label: "Verified", matched: true });
    expect(judgeTls(info(true), policy("verify", ["hostname"]), d, ep("mx2.example.com"))).toMatchObject({ label: "Trusted", failure: "Server certificate not verified" });
    expect(judgeTls(info(false, "DEPTH_ZERO_SELF_SIGNED_CERT"), policy("verify", ["hostname"]), d, ep("mx1.example.com"))).toMatchObject({ label: "Untrusted", failure: "Server certificate not trusted" });
  });

  test("fingerprint matches the certificate digest", () => {
    expect(judgeTls(info(false, "X_Y"), policy("fingerprint", ["aabbcc"]), dest("example.com"), ep("x"))).toMatchObject({ label: "Verified" });
    expect(judgeTls(info(false, "X_Y"), policy("fingerprint", ["ddeeff"]), dest("example.com"), ep("x"))).toMatchObject({ failure: "Server certificate not verified" });
  });

  test("Postfix's log line", () => {
    const v = judgeTls(info(true), policy("may", []), dest("example.com"), ep("mx1.example.com"));
    expect(tlsLogLine(v, "mx1.example.com[192.0.2.1]:25", info(true))).toBe(
      "Trusted TLS connection established to mx1.example.com[192.0.2.1]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
    );
    expect([cipherBits("TLS_AES_128_GCM_SHA256"), cipherBits("TLS_CHACHA20_POLY1305_SHA256"), cipherBits("ECDHE-RSA-AES256-GCM-SHA384"), cipherBits("NULL")]).toEqual([128, 256, 256, undefined]);
  });
});

describe("DANE levels are kept for the per-server DANE step, never downgraded here", () => {
  test("dane and dane-only come out of policyFor as written (agent-dane.test.ts covers what follows)", async () => {
    const { defaultsOnlyConfig } = await import("../../../src/global/config/config.ts");
    const { readClientSettings } = await import("../../../src/smtp/settings.ts");
    const { policyFor } = await import("../../../src/smtp/tls-policy.ts");
    for (const level of ["dane", "dane-only"]) {
      const settings = readClientSettings(defaultsOnlyConfig().withOverrides({ smtp_tls_security_level: level, smtp_dns_support_level: "dnssec" }), false);
      const p = await policyFor(settings, [], dest("example.com"), ep("mx.example.com"));
      expect(p).toMatchObject({ level });
      expect(p.invalid).toBeUndefined();
    }
  });
});
