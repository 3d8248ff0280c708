/**
 * DANE in the SMTP client (smtp_tls_security_level = dane and dane-only,
 * RFC 7672), against a fake SMTP server with STARTTLS and the fake DNS
 * server, whose answers carry the AD bit where a zone entry says
 * `authenticated`. The server presents test/fixtures/test-ca/mx.dane.example.crt
 * (mx.dane.example, issued by test/fixtures/test-ca/ca.crt); the TLSA records
 * are computed here from those certificates.
 */
import { describe, expect, test } from "bun:test";
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type Params, useAgentTests } from "../../helpers/smtp-client-bench.ts";
import { useFakeDns, type ZoneEntry } from "../../helpers/fake-dns.ts";
import type { FakeSmtpOptions } from "../../helpers/smtp-server.ts";

const FIXTURES = join(import.meta.dir, "../../fixtures/test-ca");
const CA = readFileSync(join(FIXTURES, "ca.crt"), "utf8");
const MX_CERT = readFileSync(join(FIXTURES, "mx.dane.example.crt"), "utf8");
const MX_KEY = readFileSync(join(FIXTURES, "mx.dane.example.key"), "utf8");

const der = (pem: string) => new X509Certificate(pem).raw;
const spki = (pem: string) => new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" });
const hex = (b: Uint8Array | Buffer) => Buffer.from(b).toString("hex");
const sha256 = (b: Uint8Array | Buffer) => createHash("sha256").update(b).digest("hex");
const sha512 = (b: Uint8Array | Buffer) => createHash("sha512").update(b).digest("hex");

type Tlsa = [number, number, number, string];
const EE_SPKI_SHA256: Tlsa = [3, 1, 1, sha256(spki(MX_CERT))];
const TA_CERT_SHA256: Tlsa = [2, 0, 1, sha256(der(CA))];
const WRONG: Tlsa = [3, 1, 1, "00".repeat(32)];

const dns = useFakeDns({
  "dane.example": { MX: [[10, "mx.dane.example"]], authenticated: true },
  "insecure-mx.example": { MX: [[10, "mx.dane.example"]] },
  "mx.dane.example": { A: ["127.0.0.1"], authenticated: true },
  "plain.example": { MX: [[10, "mx.plain.example"]], authenticated: true },
  "mx.plain.example": { A: ["127.0.0.1"] },
});

const tests = useAgentTests({ dns, server: { tls: { cert: `${MX_CERT}\n${CA}`, key: MX_KEY }, starttls: true } });

/** A server for mx.dane.example, its TLSA RRset (or a fault), and a bench that sends to its port with DNSSEC on. */
function setUp(tlsa: { records?: Tlsa[]; authenticated?: boolean; rcode?: ZoneEntry["rcode"] }, params: Params = {}, server: FakeSmtpOptions = {}) {
  const s = tests.server(server);
  const name = `_${s.port}._tcp.mx.dane.example`;
  dns.set(name, { ...(tlsa.records ? { TLSA: tlsa.records } : {}), ...(tlsa.rcode ? { rcode: tlsa.rcode } : {}), authenticated: tlsa.authenticated ?? true });
  tests.defer(() => dns.remove(name));
  const b = tests.bench({ smtp_tcp_port: s.port, smtp_dns_support_level: "dnssec", smtp_tls_security_level: "dane", smtp_tls_loglevel: 1, ...params });
  return { s, b };
}

const established = (lines: string[]) => lines.filter((l) => l.includes("TLS connection established"));

describe("smtp_tls_security_level = dane", () => {
  test("DANE-EE (3 1 1) that matches the server's key: Verified, delivered over TLS", async () => {
    const { s, b } = setUp({ records: [EE_SPKI_SHA256] });
    const [r] = await b.deliver({ nexthop: "dane.example", recipients: ["user@dane.example"] });
    expect(r).toMatchObject({ status: "sent", relay: `mx.dane.example[127.0.0.1]:${s.port}` });
    expect(s.messages[0]!.tls).toBe(true);
    expect(established(b.logLines())[0]).toContain(`Verified TLS connection established to mx.dane.example[127.0.0.1]:${s.port}: TLSv1.`);
  });

  test("DANE-EE forms: the whole certificate (3 0 0) and the key's SHA-512 (3 1 2)", async () => {
    for (const record of [[3, 0, 0, hex(der(MX_CERT))], [3, 1, 2, sha512(spki(MX_CERT))]] as Tlsa[]) {
      const { s, b } = setUp({ records: [record] });
      const [r] = await b.deliver({ nexthop: "dane.example", recipients: ["user@dane.example"] });
      expect(r!.status).toBe("sent");
      expect(established(b.logLines())[0]).toContain("Verified TLS connection established");
      expect(s.messages).toHaveLength(1);
    }
  });

  test("a TLSA record that does not match: deferred, no mail sent, Untrusted in the log", async () => {
    const { s, b } = setUp({ records: [WRONG] });
    const [r] = await b.deliver({ nexthop: "dane.example", recipients: ["user@dane.example"] });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.5", reason: "Server certificate not verified" });
    expect(s.transactions).toBe(0);
    expect(established(b.logLines())[0]).toContain("Untrusted TLS connection established");
  });

  test("DANE-TA (2 0 1) with the issuer the server sent, and the server's name: Verified", async () => {
    const { s, b } = setUp({ records: [TA_CERT_SHA256] });
    const [r] = await b.deliver({ nexthop: "dane.example", recipients: ["user@dane.example"] });
    expect(r!.status).toBe("sent");
    expect(s.messages[0]!.tls).toBe(true);
    expect(established(b.logLines())[0]).toContain("Verified TLS connection established");
  });

  test("DANE-TA published as the full key (2 1 0) while the server sends only its own certificate: Verified", async () => {
    const { s, b } = setUp({ records: [[2, 1, 0, hex(spki(CA))]] }, {}, { tls: { cert: MX_CERT, key: MX_KEY } });
    const [r] = await b.deliver({ nexthop: "dane.example", recipients: ["user@dane.example"] });
    expect(r!.status).toBe("sent");
    expect(s.messages).toHaveLength(1);
  });

  test("DANE-TA does not vouch for a certificate that names another host", async () => {
    // the TA signed mx.dane.example's certificate, but the TLSA base is another name: a [host] next hop
    const s = tests.server();
    dns.set("other.dane.example", { A: ["127.0.0.1"], authenticated: true });
    dns.set(`_${s.port}._tcp.other.dane.example`, { TLSA: [TA_CERT_SHA256], authenticated: true });
    tests.defer(() => {
      dns.remove("other.dane.example");
      dns.remove(`_${s.port}._tcp.other.dane.example`);
    });
    const b = tests.bench({ smtp_dns_support_level: "dnssec", smtp_tls_security_level: "dane" });
    const [r] = await b.deliver({ nexthop: `[other.dane.example]:${s.port}`, recipients: ["user@dane.example"] });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.5", reason: "Server certificate not verified" });
    expect(s.transactions).toBe(0);
  });

  test("TLSA records that are not DNSSEC-validated are not used: opportunistic TLS", async () => {
    const { s, b } = setUp({ records: [WRONG], authenticated: false });
    const [r] = await b.deliver({ nexthop: "dane.example", recipients: ["user@dane.example"] });
    expect(r!.status).toBe("sent");
    expect(s.messages[0]!.tls).toBe(true);
    expect(established(b.logLines())[0]).toContain("Untrusted TLS connection established");
  });

  test("a server whose addresses are not DNSSEC-validated gets opportunistic TLS, and no TLSA lookup", async () => {
    const s = tests.server();
    const b = tests.bench({ smtp_tcp_port: s.port, smtp_dns_support_level: "dnssec", smtp_tls_security_level: "dane" });
    dns.clearQueries();
    const [r] = await b.deliver({ nexthop: "plain.example", recipients: ["user@plain.example"] });
    expect(r!.status).toBe("sent");
    expect(s.messages[0]!.tls).toBe(true);
    expect(dns.queries.filter((q) => q.type === "TLSA")).toEqual([]);
  });

  test("only PKIX usages (0, 1), which SMTP cannot use: TLS is required but not authenticated", async () => {
    const { s, b } = setUp({ records: [[1, 1, 1, sha256(spki(MX_CERT))]] }, {}, { starttls: false });
    const [r] = await b.deliver({ nexthop: "dane.example", recipients: ["user@dane.example"] });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.4", reason: `TLS is required, but was not offered by host mx.dane.example[127.0.0.1]` });
    expect(s.transactions).toBe(0);
  });

  test("usable TLSA records and a server without STARTTLS: deferred, never sent in plaintext", async () => {
    const { s, b } = setUp({ records: [EE_SPKI_SHA256] }, {}, { starttls: false });
    const [r] = await b.deliver({ nexthop: "dane.example", recipients: ["user@dane.example"] });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.4" });
    expect(s.transactions).toBe(0);
  });

  test("a TLSA lookup that fails defers, with Postfix's warning", async () => {
    const { s, b } = setUp({ rcode: "SERVFAIL" });
    const [r] = await b.deliver({ nexthop: "dane.example", recipients: ["user@dane.example"] });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.5", reason: `TLSA lookup error for mx.dane.example:${s.port}` });
    expect(s.connections).toBe(0);
    expect(b.logLines().some((l) => l.includes(`warning: TLS policy lookup for dane.example/mx.dane.example: TLSA lookup error for mx.dane.example:${s.port}`))).toBe(true);
  });

  test("an MX RRset that is not signed, with the default insecure-MX policy for dane: the host's TLSA records still apply", async () => {
    const { s, b } = setUp({ records: [WRONG] });
    const [r] = await b.deliver({ nexthop: "insecure-mx.example", recipients: ["user@insecure-mx.example"] });
    expect(r).toMatchObject({ status: "deferred", reason: "Server certificate not verified" });
    expect(s.transactions).toBe(0);
  });

  test("smtp_tls_dane_insecure_mx_policy = may: an unsigned MX RRset means opportunistic TLS", async () => {
    const { s, b } = setUp({ records: [WRONG] }, { smtp_tls_dane_insecure_mx_policy: "may" });
    const [r] = await b.deliver({ nexthop: "insecure-mx.example", recipients: ["user@insecure-mx.example"] });
    expect(r!.status).toBe("sent");
    expect(s.messages).toHaveLength(1);
  });

  test("per destination in smtp_tls_policy_maps, over a global may", async () => {
    const { s, b } = setUp({ records: [WRONG] }, { smtp_tls_security_level: "may", smtp_tls_policy_maps: "inline:{ dane.example=dane }" });
    const [r] = await b.deliver({ nexthop: "dane.example", recipients: ["user@dane.example"] });
    expect(r).toMatchObject({ status: "deferred", reason: "Server certificate not verified" });
    expect(s.transactions).toBe(0);
  });
});

describe("smtp_tls_security_level = dane-only", () => {
  test("matching records: delivered", async () => {
    const { s, b } = setUp({ records: [EE_SPKI_SHA256] }, { smtp_tls_security_level: "dane-only" });
    const [r] = await b.deliver({ nexthop: "dane.example", recipients: ["user@dane.example"] });
    expect(r!.status).toBe("sent");
    expect(s.messages[0]!.tls).toBe(true);
  });

  test("no TLSA records: deferred without connecting", async () => {
    const { s, b } = setUp({ records: [] }, { smtp_tls_security_level: "dane-only" });
    const [r] = await b.deliver({ nexthop: "dane.example", recipients: ["user@dane.example"] });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.5", reason: "no TLSA records found" });
    expect(s.connections).toBe(0);
  });

  test("an unsigned MX RRset: deferred as a non-DNSSEC destination", async () => {
    const { s, b } = setUp({ records: [EE_SPKI_SHA256] }, { smtp_tls_security_level: "dane-only" });
    const [r] = await b.deliver({ nexthop: "insecure-mx.example", recipients: ["user@insecure-mx.example"] });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.5", reason: "non DNSSEC destination" });
    expect(s.connections).toBe(0);
  });

  test("only unusable records: deferred", async () => {
    const { s, b } = setUp({ records: [[0, 0, 1, sha256(der(CA))]] }, { smtp_tls_security_level: "dane-only" });
    const [r] = await b.deliver({ nexthop: "dane.example", recipients: ["user@dane.example"] });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.5", reason: "TLSA records unusable" });
    expect(s.connections).toBe(0);
  });
});

describe("without smtp_dns_support_level = dnssec", () => {
  test("dane in a policy table falls back to may with a warning; dane-only is a configuration problem", async () => {
    const { s, b } = setUp({ records: [WRONG] }, { smtp_dns_support_level: "enabled", smtp_tls_security_level: "may", smtp_tls_policy_maps: "inline:{ dane.example=dane }" });
    const [r] = await b.deliver({ nexthop: "dane.example", recipients: ["user@dane.example"] });
    expect(r!.status).toBe("sent");
    expect(s.messages[0]!.tls).toBe(true);
    expect(b.logLines().some((l) => l.includes("warning: dane.example: dane configured with dnssec lookups disabled"))).toBe(true);

    const only = tests.bench({ smtp_tcp_port: s.port, smtp_tls_security_level: "may", smtp_tls_policy_maps: "inline:{ dane.example=dane-only }" });
    const [r2] = await only.deliver({ nexthop: "dane.example", recipients: ["user@dane.example"] });
    expect(r2).toMatchObject({ status: "deferred", dsn: "4.7.0", reason: "client TLS configuration problem" });
    expect(s.messages).toHaveLength(1);
  });
});
