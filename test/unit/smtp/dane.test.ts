/**
 * DANE's certificate matching (src/smtp/dane.ts) on its own: the chain
 * checks behind DANE-TA, the dates, the digests tls_dane_digests allows,
 * and the configuration check that keeps "dane" from meaning "may".
 */
import { describe, expect, test } from "bun:test";
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { usableTlsa, verifyDane, type TlsaRecord } from "../../../src/smtp/dane.ts";
import { clientTlsLevelCheck, refuseDaneDigests } from "../../../src/global/config/value-checks.ts";

const FIXTURES = join(import.meta.dir, "../../fixtures");
const pem = (name: string) => readFileSync(join(FIXTURES, name), "utf8");
const CA = new X509Certificate(pem("test-ca/ca.crt"));
const MX = new X509Certificate(pem("test-ca/mx.dane.example.crt"));
const OTHER = new X509Certificate(pem("tls/localhost.crt"));
const raw = (c: X509Certificate) => new Uint8Array(c.raw);
const sha256 = (b: Uint8Array) => new Uint8Array(createHash("sha256").update(b).digest());
const record = (usage: number, selector: number, matchingType: number, data: Uint8Array): TlsaRecord => ({ usage, selector, matchingType, data });

const NOW = new Date(Date.UTC(2030, 0, 1));
const NAMES = ["mx.dane.example"];

describe("verifyDane", () => {
  test("DANE-TA needs the trust anchor to have signed the chain: a matching certificate that signed nothing is not enough", () => {
    const ta = record(2, 0, 1, sha256(raw(OTHER)));
    expect(verifyDane([raw(MX), raw(OTHER)], [ta], NAMES, NOW)).toEqual({ matched: false });
    expect(verifyDane([raw(MX), raw(CA)], [record(2, 0, 1, sha256(raw(CA)))], NAMES, NOW)).toEqual({ matched: true, how: "DANE-TA" });
  });

  test("DANE-TA checks the server certificate's dates; DANE-EE does not (RFC 7672 3.1.1)", () => {
    const after = new Date(Date.UTC(2200, 0, 1));
    expect(verifyDane([raw(MX), raw(CA)], [record(2, 0, 1, sha256(raw(CA)))], NAMES, after)).toEqual({ matched: false });
    expect(verifyDane([raw(MX)], [record(3, 0, 1, sha256(raw(MX)))], NAMES, after)).toEqual({ matched: true, how: "DANE-EE" });
  });

  test("the server's own certificate is not its trust anchor, and garbage in the chain matches nothing", () => {
    expect(verifyDane([raw(MX)], [record(2, 0, 1, sha256(raw(MX)))], NAMES, NOW)).toEqual({ matched: false });
    expect(verifyDane([new Uint8Array([0x30, 0x03, 1, 2, 3])], [record(3, 1, 1, new Uint8Array(32))], NAMES, NOW)).toEqual({ matched: false });
    expect(verifyDane(undefined, [record(3, 0, 1, sha256(raw(MX)))], NAMES, NOW)).toEqual({ matched: false });
  });
});

describe("which TLSA records SMTP uses", () => {
  test("usages 2 and 3 only, selectors 0 and 1, digests of the right length that tls_dane_digests allows", () => {
    const d32 = new Uint8Array(32);
    const d64 = new Uint8Array(64);
    const both = ["sha256", "sha512"] as const;
    expect([0, 1, 2, 3].map((u) => usableTlsa(record(u, 1, 1, d32), both))).toEqual([false, false, true, true]);
    expect(usableTlsa(record(3, 2, 1, d32), both)).toBe(false);
    expect(usableTlsa(record(3, 1, 1, d64), both)).toBe(false);
    expect(usableTlsa(record(3, 1, 2, d64), both)).toBe(true);
    expect(usableTlsa(record(3, 1, 2, d64), ["sha256"])).toBe(false);
    expect(usableTlsa(record(3, 1, 3, d32), both)).toBe(false);
    expect(usableTlsa(record(3, 0, 0, new Uint8Array(0)), both)).toBe(false);
  });
});

describe("postern check", () => {
  test("dane and dane-only need smtp_dns_support_level = dnssec; digests postern cannot compute are refused", () => {
    const check = clientTlsLevelCheck("smtp");
    const params = (values: Record<string, string>) => ({ str: (n: string) => values[n] ?? "" });
    expect(check("dane", params({}))).toContain("set smtp_dns_support_level = dnssec");
    expect(check("dane-only", params({ smtp_dns_support_level: "enabled" }))).toContain("needs DNSSEC-validated DNS answers");
    expect(check("dane", params({ smtp_dns_support_level: "dnssec" }))).toBeUndefined();
    expect(check("dane", params({ smtp_dns_support_level: "disabled" }))).toBeDefined();
    expect(check("may", params({}))).toBeUndefined();
    expect(check("half-dane", params({}))).toContain("unknown TLS security level");
    expect(refuseDaneDigests("sha512 sha256")).toBeUndefined();
    expect(refuseDaneDigests("sha1")).toContain("sha1");
  });
});
