/**
 * DANE for the SMTP client (RFC 7672, RFC 7671), as Postfix's "dane" and
 * "dane-only" TLS levels: which TLSA records apply to one server, and
 * whether the certificate chain the server sent matches them.
 *
 * resolveDane() turns the level into what the handshake must do, following
 * Postfix's rules: DANE needs DNSSEC-validated answers all the way (the MX
 * RRset, the host's addresses, the TLSA RRset, each vouched for by the AD
 * bit of a validating resolver that smtp_dns_support_level = dnssec says to
 * trust). Without them "dane" falls back to opportunistic TLS ("may") and
 * "dane-only" defers; TLSA records that exist but that SMTP cannot use
 * (PKIX usages 0 and 1, unknown selectors, digests not in tls_dane_digests)
 * mean TLS without authentication ("encrypt"), or a deferral for
 * "dane-only"; a TLSA lookup that fails defers at both levels.
 *
 * verifyDane() matches the chain: DANE-EE (usage 3) against the server's
 * own certificate, with no name or date checks (RFC 7672 3.1.1); DANE-TA
 * (usage 2) against a certificate the server sent after its own (or, for a
 * full public key, the key that signed one of them), with the signatures of
 * the chain up to it checked, the certificates below it within their dates,
 * and the server certificate's names matched against the TLSA base domain
 * (RFC 7672 3.1.2).
 *
 * Runs in the SMTP client (the queue manager's process, as mail_owner).
 * Distrusts the DNS answers (already validated by the resolver's wire
 * parser; only their AD bit is believed, and only with dnssec configured)
 * and the peer's certificates: malformed DER is "not matched", never an
 * exception.
 */
import { createHash, createPublicKey, X509Certificate, type KeyObject } from "node:crypto";
import type { RecordOf } from "../global/dns/records.ts";
import { isTemporary, type DnsQuerier } from "../global/dns/result.ts";
import { lookupTlsa } from "../global/dns/tlsa.ts";
import type { Endpoint } from "./routing.ts";

export type TlsaRecord = Pick<RecordOf<"TLSA">, "usage" | "selector" | "matchingType" | "data">;

export type DaneDigest = "sha256" | "sha512";

export interface DaneSettings {
  /** smtp_dns_support_level = dnssec, with DNS lookups on: the AD bit is believed. */
  dnssec: boolean;
  /** smtp_tls_dane_insecure_mx_policy: what a DNSSEC-secure server behind an insecure MX RRset gets. */
  insecureMxPolicy: "may" | "encrypt" | "dane";
  /** tls_dane_digests: the digests TLSA matching types 1 and 2 may use. */
  digests: readonly DaneDigest[];
}

export type DaneOutcome =
  /** Authenticate the server with these records; `names` are the reference names for DANE-TA. */
  | { kind: "dane"; records: TlsaRecord[]; names: string[] }
  /** No DANE for this server: use this level instead; `warn` when it is the configuration's fault. */
  | { kind: "downgrade"; level: "may" | "encrypt"; why: string; warn: boolean }
  /** Defer the delivery to this server with this reason. */
  | { kind: "defer"; dsn: string; reason: string }
  /** The configuration cannot do DANE here: a configuration problem. */
  | { kind: "invalid"; why: string };

type Fault = "config" | "destination" | "cannot-authenticate";

/** Postfix's dane_incompat(): what each kind of problem means at each level. */
function incompatible(level: "dane" | "dane-only", fault: Fault, why: string): DaneOutcome {
  if (level === "dane") return { kind: "downgrade", level: fault === "cannot-authenticate" ? "encrypt" : "may", why, warn: fault === "config" };
  if (fault === "config") return { kind: "invalid", why };
  return { kind: "defer", dsn: "4.7.5", reason: why };
}

/** A TLSA record SMTP can use (RFC 7672 3.1.3: PKIX usages are not), with a digest that is enabled. */
export function usableTlsa(r: TlsaRecord, digests: readonly DaneDigest[]): boolean {
  if (r.usage !== 2 && r.usage !== 3) return false;
  if (r.selector !== 0 && r.selector !== 1) return false;
  switch (r.matchingType) {
    case 0:
      return r.data.length > 0;
    case 1:
      return digests.includes("sha256") && r.data.length === 32;
    case 2:
      return digests.includes("sha512") && r.data.length === 64;
    default:
      return false;
  }
}

/** The DANE policy for one server of a destination. */
export async function resolveDane(level: "dane" | "dane-only", dest: string, ep: Endpoint, dns: DnsQuerier, settings: DaneSettings): Promise<DaneOutcome> {
  if (ep.family === "unix") return { kind: "invalid", why: `${dest}: the "${level}" security level is invalid for delivery via unix-domain sockets` };
  if (!settings.dnssec) return incompatible(level, "config", `${dest}: ${level} configured with dnssec lookups disabled`);
  const mxInsecure = ep.dnssec?.mx === false;
  if (mxInsecure && (level === "dane-only" || settings.insecureMxPolicy === "may")) return incompatible(level, "destination", "non DNSSEC destination");
  // TLSA records of a host whose addresses are not secure cannot be trusted to belong to it
  if (!ep.dnssec?.address) return incompatible(level, "destination", "no TLSA records found");
  const result = await lookupTlsa(dns, ep.port, ep.host);
  if (result.status !== "ok") {
    if (isTemporary(result) || result.status === "formerr" || result.status === "rcode") return { kind: "defer", dsn: "4.7.5", reason: `TLSA lookup error for ${ep.host}:${ep.port}` };
    return incompatible(level, "destination", "no TLSA records found");
  }
  if (!result.authenticated) return incompatible(level, "destination", "no TLSA records found");
  const records = result.records.filter((r) => usableTlsa(r, settings.digests));
  if (records.length === 0) return incompatible(level, "cannot-authenticate", "TLSA records unusable");
  if (mxInsecure && settings.insecureMxPolicy === "encrypt") return incompatible(level, "cannot-authenticate", "Verification not possible, MX RRset is insecure");
  return { kind: "dane", records, names: [ep.host.toLowerCase().replace(/\.$/, "")] };
}

// ---------------------------------------------------------------- matching a chain

function parse(der: Uint8Array): X509Certificate | undefined {
  try {
    return new X509Certificate(der);
  } catch {
    return undefined;
  }
}

function spkiOf(cert: X509Certificate): Uint8Array | undefined {
  try {
    return new Uint8Array(cert.publicKey.export({ type: "spki", format: "der" }));
  } catch {
    return undefined;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Whether the certificate's selected part (selector) matches the record's data (matching type). */
export function tlsaMatches(der: Uint8Array, r: TlsaRecord): boolean {
  let selected: Uint8Array | undefined = der;
  if (r.selector === 1) {
    const cert = parse(der);
    selected = cert && spkiOf(cert);
  }
  if (!selected) return false;
  switch (r.matchingType) {
    case 0:
      return sameBytes(selected, r.data);
    case 1:
      return sameBytes(new Uint8Array(createHash("sha256").update(selected).digest()), r.data);
    case 2:
      return sameBytes(new Uint8Array(createHash("sha512").update(selected).digest()), r.data);
    default:
      return false;
  }
}

/** DNS names of a certificate: subjectAltName DNS entries, else the subject CN. */
function namesOf(cert: X509Certificate): string[] {
  const san = (cert.subjectAltName ?? "")
    .split(/,\s*/)
    .filter((e) => e.startsWith("DNS:"))
    .map((e) => e.slice(4).toLowerCase().replace(/\.$/, ""));
  if (san.length) return san;
  return [...cert.subject.matchAll(/(?:^|\n)CN=([^\n]*)/g)].map((m) => m[1]!.toLowerCase().replace(/\.$/, ""));
}

/** "*.example.com" matches exactly one label (RFC 6125), as the verify level does. */
function nameMatches(certName: string, wanted: string): boolean {
  if (certName === wanted) return true;
  if (!certName.startsWith("*.")) return false;
  const suffix = certName.slice(1);
  if (!wanted.endsWith(suffix)) return false;
  const label = wanted.slice(0, -suffix.length);
  return label.length > 0 && !label.includes(".");
}

function withinDates(cert: X509Certificate, now: Date): boolean {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return Number.isFinite(from) && Number.isFinite(to) && from <= now.getTime() && now.getTime() <= to;
}

/** Certificates 0..top-1 each signed by the next, and within their dates. */
function chainHolds(certs: X509Certificate[], top: number, now: Date): boolean {
  for (let i = 0; i < top; i++) {
    const child = certs[i]!;
    const parent = certs[i + 1]!;
    if (!withinDates(child, now)) return false;
    try {
      if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) return false;
    } catch {
      return false;
    }
  }
  return true;
}

function keyOf(spki: Uint8Array): KeyObject | undefined {
  try {
    return createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  } catch {
    return undefined;
  }
}

export interface DaneVerdict {
  matched: boolean;
  /** How: "DANE-EE" or "DANE-TA", for the log. */
  how?: string;
}

/** Whether the chain (leaf first, DER) matches one of the records. */
export function verifyDane(chain: readonly Uint8Array[] | undefined, records: readonly TlsaRecord[], names: readonly string[], now: Date): DaneVerdict {
  if (!chain?.length) return { matched: false };
  const leaf = chain[0]!;
  for (const r of records) {
    if (r.usage === 3 && tlsaMatches(leaf, r)) return { matched: true, how: "DANE-EE" };
  }
  const taRecords = records.filter((r) => r.usage === 2);
  if (taRecords.length === 0) return { matched: false };
  const certs: X509Certificate[] = [];
  for (const der of chain) {
    const c = parse(der);
    if (!c) break;
    certs.push(c);
  }
  if (certs.length === 0) return { matched: false };
  const leafNames = namesOf(certs[0]!);
  if (!names.some((n) => leafNames.some((c) => nameMatches(c, n)))) return { matched: false };
  for (const r of taRecords) {
    // a trust anchor the server sent
    for (let i = 1; i < certs.length; i++) {
      if (tlsaMatches(chain[i]!, r) && chainHolds(certs, i, now)) return { matched: true, how: "DANE-TA" };
    }
    // a trust anchor published as its full public key, which signed a certificate the server sent
    if (r.selector === 1 && r.matchingType === 0) {
      const key = keyOf(r.data);
      if (!key) continue;
      for (let i = 0; i < certs.length; i++) {
        let signed = false;
        try {
          signed = certs[i]!.verify(key);
        } catch {
          signed = false;
        }
        if (signed && withinDates(certs[i]!, now) && chainHolds(certs, i, now)) return { matched: true, how: "DANE-TA" };
      }
    }
  }
  return { matched: false };
}
