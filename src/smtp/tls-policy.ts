/**
 * The SMTP client's TLS policy, as Postfix's smtp_tls_security_level and
 * smtp_tls_policy_maps define it: which level applies to a destination
 * (none, may, encrypt, verify, secure, fingerprint), which names the
 * server certificate must match (verify: the MX host name by default;
 * secure: the next-hop domain and its subdomains), the Bun TLS options for
 * the handshake (trust store, SNI), and how a finished handshake is judged
 * and logged ("Untrusted/Trusted/Verified TLS connection established to
 * ...").
 *
 * Certificates are judged here, not by Bun: the handshake always accepts
 * any certificate (rejectUnauthorized: false) so that "may" and "encrypt"
 * deliver to servers with self-signed or mismatched certificates, and the
 * levels that need more check chain trust and names themselves.
 *
 * The dane and dane-only levels are resolved per server by dane.ts (TLSA
 * records over DNSSEC) into "dane" with the records to match, a weaker
 * level where Postfix falls back, or a deferral.
 *
 * Policy tables are trusted configuration; the peer certificate is not.
 * Limits: protocols=, ciphers= and exclude= are accepted and ignored.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { TLSOptions } from "bun";
import type { TlsInfo } from "../util/net/connection.ts";
import { parseIpAddress } from "../util/net/cidr-match.ts";
import type { Table } from "../global/tables/table.ts";
import type { Destination } from "./nexthop.ts";
import type { Endpoint } from "./routing.ts";
import type { ClientSettings } from "./settings.ts";
import { verifyDane, type TlsaRecord } from "./dane.ts";

/** "dane-only" exists until dane.ts resolves it for a server: to "dane" or a deferral. */
export type PolicyLevel = "none" | "may" | "encrypt" | "verify" | "secure" | "fingerprint" | "dane" | "dane-only";

const LEVEL_ORDER: Record<PolicyLevel, number> = { none: 0, may: 1, encrypt: 2, fingerprint: 3, dane: 3, "dane-only": 3, verify: 4, secure: 5 };

export interface TlsPolicy {
  level: PolicyLevel;
  /** Names (verify, secure) or fingerprints (fingerprint) the certificate must match. */
  match: string[];
  /** SNI to send, "" for none. */
  servername: string;
  /** Set when the policy itself is broken: the delivery is deferred ("client TLS configuration problem"). */
  invalid?: string;
  /** The TLSA records (usable ones only) a "dane" level matches, and the reference names for DANE-TA. */
  dane?: { records: TlsaRecord[]; names: string[] };
  /** DANE says this server cannot be used now: defer with this. */
  defer?: { dsn: string; reason: string };
  /** The level came from an smtp_tls_policy_maps entry (the administrator's word, over MTA-STS). */
  fromTable?: boolean;
}

export function levelAtLeast(level: PolicyLevel, min: PolicyLevel): boolean {
  return LEVEL_ORDER[level] >= LEVEL_ORDER[min];
}

export function tlsRequired(level: PolicyLevel): boolean {
  return LEVEL_ORDER[level] >= LEVEL_ORDER.encrypt;
}

/** Keys Postfix looks a destination up with: as written, then for a bare domain its parents as ".parent". */
export function policyKeys(dest: Destination): string[] {
  const keys = [dest.text];
  if (!dest.bracketed && !dest.unix && !parseIpAddress(dest.host)) {
    let d = dest.host;
    if (dest.text !== d) keys.push(d);
    for (let dot = d.indexOf("."); dot >= 0; dot = d.indexOf(".")) {
      d = d.slice(dot + 1);
      if (d) keys.push(`.${d}`);
    }
  }
  return keys;
}

/** "verify match=hostname:nexthop" -> level and attributes. */
export function parsePolicyValue(value: string): { level: string; attrs: Map<string, string> } {
  const words = value.trim().split(/\s+/).filter(Boolean);
  const attrs = new Map<string, string>();
  for (const w of words.slice(1)) {
    const eq = w.indexOf("=");
    if (eq > 0) attrs.set(w.slice(0, eq).toLowerCase(), w.slice(eq + 1));
  }
  return { level: (words[0] ?? "").toLowerCase(), attrs };
}

function mapLevel(word: string): PolicyLevel | undefined {
  switch (word) {
    case "none":
    case "may":
    case "encrypt":
    case "verify":
    case "secure":
    case "fingerprint":
    case "dane":
    case "dane-only":
      return word;
    default:
      return undefined;
  }
}

function sniFor(setting: string, dest: Destination, ep: Endpoint): string {
  const s = setting.trim();
  if (s === "") return "";
  let name = s;
  if (s.toLowerCase() === "hostname") name = ep.host;
  else if (s.toLowerCase() === "nexthop") name = dest.host;
  // SNI carries host names only (RFC 6066 3)
  return parseIpAddress(name) || dest.unix !== undefined ? "" : name;
}

/** The policy for one server of a destination; a table error throws (the caller defers). */
export async function policyFor(settings: ClientSettings, tables: readonly Table[], dest: Destination, ep: Endpoint): Promise<TlsPolicy> {
  let levelWord = settings.tls.badLevel ?? settings.tls.level;
  let attrs = new Map<string, string>();
  let fromTable = false;
  if (tables.length) {
    outer: for (const key of policyKeys(dest)) {
      for (const t of tables) {
        const v = await t.lookup(key);
        if (v === undefined) continue;
        const parsed = parsePolicyValue(v);
        levelWord = parsed.level;
        attrs = parsed.attrs;
        fromTable = true;
        break outer;
      }
    }
  }
  const servername = sniFor(attrs.get("servername") ?? settings.tls.servername, dest, ep);
  const level = mapLevel(levelWord);
  if (!level) return { level: "none", match: [], servername, invalid: `unknown TLS security level "${levelWord}"` };
  let match: string[] = [];
  const given = attrs.get("match");
  if (level === "verify") match = given !== undefined ? given.split(":") : settings.tls.verifyCertMatch;
  else if (level === "secure") match = given !== undefined ? given.split(":") : settings.tls.secureCertMatch;
  else if (level === "fingerprint") match = (given ?? "").split("|").map((f) => f.trim()).filter(Boolean);
  if (level === "fingerprint" && match.length === 0) return { level, match, servername, invalid: "fingerprint level without match= fingerprints" };
  return { level, match: match.map((m) => m.toLowerCase()), servername, ...(fromTable ? { fromTable } : {}) };
}

// ---------------------------------------------------------------- trust store

const SYSTEM_BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];
const caCache = new Map<string, { stamp: string; pems: string[] }>();

function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function stampOf(paths: string[]): string {
  return paths
    .map((p) => {
      try {
        const st = statSync(p);
        return `${p}:${st.mtimeMs}:${st.size}`;
      } catch {
        return `${p}:-`;
      }
    })
    .join("|");
}

/** The CA certificates to trust: CAfile and CApath, else the system bundle; undefined keeps Bun's own roots. */
export function trustedCas(settings: ClientSettings): string[] | undefined {
  const files: string[] = [];
  if (settings.tls.caFile) files.push(settings.tls.caFile);
  if (settings.tls.caPath) {
    try {
      for (const name of readdirSync(settings.tls.caPath).sort()) files.push(join(settings.tls.caPath, name));
    } catch {
      // an unreadable CApath trusts nothing from it; the handshake still happens
    }
  }
  if (!settings.tls.caFile && !settings.tls.caPath) {
    const bundle = SYSTEM_BUNDLES.find((p) => existsSync(p));
    if (!bundle) return undefined;
    files.push(bundle);
  }
  const key = files.join("\0");
  const stamp = stampOf(files);
  const cached = caCache.get(key);
  if (cached && cached.stamp === stamp) return cached.pems;
  const pems: string[] = [];
  for (const f of files) {
    try {
      if (!statSync(f).isFile()) continue;
      pems.push(...pemBlocks(readFileSync(f, "utf8")));
    } catch {
      // unreadable: contributes nothing
    }
  }
  caCache.set(key, { stamp, pems });
  return pems;
}

/** Bun's TLS options for a handshake under `policy`. */
export function tlsOptions(settings: ClientSettings, policy: TlsPolicy): TLSOptions {
  const opts: TLSOptions = { rejectUnauthorized: false, servername: policy.servername };
  const cas = trustedCas(settings);
  if (cas?.length) opts.ca = cas;
  if (settings.tls.certFile) {
    try {
      opts.cert = readFileSync(settings.tls.certFile, "utf8");
      opts.key = readFileSync(settings.tls.keyFile || settings.tls.certFile, "utf8");
    } catch {
      // no client certificate then; servers rarely require one
    }
  }
  return opts;
}

// ---------------------------------------------------------------- judging the peer

interface PeerCertificate {
  subject?: Record<string, string | string[]>;
  subjectaltname?: string;
  fingerprint?: string;
  fingerprint256?: string;
  fingerprint512?: string;
}

/** DNS names of the certificate: subjectAltName DNS entries, else the subject CN (Postfix's order). */
export function certificateNames(cert: PeerCertificate | undefined): string[] {
  if (!cert) return [];
  const san = (cert.subjectaltname ?? "")
    .split(/,\s*/)
    .filter((e) => e.startsWith("DNS:"))
    .map((e) => e.slice(4).toLowerCase().replace(/\.$/, ""));
  if (san.length) return san;
  const cn = cert.subject?.CN;
  const cns = Array.isArray(cn) ? cn : cn ? [cn] : [];
  return cns.map((c) => c.toLowerCase().replace(/\.$/, ""));
}

/** One certificate name against one reference name; "*.example.com" matches exactly one label. */
function nameMatches(certName: string, wanted: string): boolean {
  if (certName === wanted) return true;
  if (certName.startsWith("*.")) {
    const suffix = certName.slice(1);
    if (!wanted.endsWith(suffix)) return false;
    const label = wanted.slice(0, -suffix.length);
    return label.length > 0 && !label.includes(".");
  }
  return false;
}

/** The reference names for verify/secure: hostname, nexthop, dot-nexthop, or literal names and ".domain". */
export function matchesPolicy(names: string[], policy: TlsPolicy, dest: Destination, ep: Endpoint): boolean {
  for (const rule of policy.match) {
    if (rule === "hostname") {
      if (names.some((n) => nameMatches(n, ep.host))) return true;
    } else if (rule === "nexthop") {
      if (names.some((n) => nameMatches(n, dest.host))) return true;
    } else if (rule === "dot-nexthop") {
      if (names.some((n) => n.endsWith(`.${dest.host}`))) return true;
    } else if (rule.startsWith(".")) {
      if (names.some((n) => n.endsWith(rule))) return true;
    } else if (names.some((n) => nameMatches(n, rule))) return true;
  }
  return false;
}

function normalizeFingerprint(f: string): string {
  return f.replace(/[^0-9a-f]/gi, "").toLowerCase();
}

export interface TlsVerdict {
  /** The chain verified against the trust store. */
  trusted: boolean;
  /** The names (or fingerprint) matched what the level asks. */
  matched: boolean;
  /** Postfix's adjective for the log line. */
  label: "Untrusted" | "Trusted" | "Verified" | "Anonymous";
  /** When the level's demands are not met: the reason to defer with. */
  failure?: string;
}

export function judgeTls(info: TlsInfo, policy: TlsPolicy, dest: Destination, ep: Endpoint, now: Date = new Date()): TlsVerdict {
  const cert = info.peerCertificate as PeerCertificate | undefined;
  // Bun checks the name against the SNI or address itself; that is not the chain's fault
  const trusted = info.authorized || info.authorizationCode === "ERR_TLS_CERT_ALTNAME_INVALID";
  if (policy.level === "dane" && policy.dane) {
    const dane = verifyDane(info.peerChain, policy.dane.records, policy.dane.names, now);
    if (dane.matched) return { trusted: true, matched: true, label: "Verified" };
    return { trusted, matched: false, label: trusted ? "Trusted" : "Untrusted", failure: "Server certificate not verified" };
  }
  if (!cert) return { trusted: false, matched: false, label: "Anonymous", ...(tlsRequiresMatch(policy) ? { failure: "Server certificate not verified" } : {}) };
  if (policy.level === "fingerprint") {
    const wanted = new Set(policy.match.map(normalizeFingerprint));
    const have = [cert.fingerprint, cert.fingerprint256, cert.fingerprint512].filter((f): f is string => !!f).map(normalizeFingerprint);
    const matched = have.some((f) => wanted.has(f));
    return matched ? { trusted, matched, label: "Verified" } : { trusted, matched, label: trusted ? "Trusted" : "Untrusted", failure: "Server certificate not verified" };
  }
  if (policy.level === "verify" || policy.level === "secure") {
    const matched = trusted && matchesPolicy(certificateNames(cert), policy, dest, ep);
    if (matched) return { trusted, matched, label: "Verified" };
    return { trusted, matched, label: trusted ? "Trusted" : "Untrusted", failure: trusted ? "Server certificate not verified" : "Server certificate not trusted" };
  }
  return { trusted, matched: false, label: trusted ? "Trusted" : "Untrusted" };
}

function tlsRequiresMatch(policy: TlsPolicy): boolean {
  return policy.level === "verify" || policy.level === "secure" || policy.level === "fingerprint" || (policy.level === "dane" && policy.dane !== undefined);
}

/** Secret bits of a cipher suite, from its name. */
export function cipherBits(cipher: string): number | undefined {
  const c = cipher.toUpperCase();
  if (/AES_?256|AES256|CHACHA20/.test(c)) return 256;
  if (/AES_?128|AES128/.test(c)) return 128;
  if (/3DES|DES_CBC3|DES-CBC3/.test(c)) return 168;
  return undefined;
}

/** "Trusted TLS connection established to mx.example.com[192.0.2.1]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)". */
export function tlsLogLine(verdict: TlsVerdict, namaddrport: string, info: TlsInfo): string {
  const bits = cipherBits(info.cipher);
  return `${verdict.label} TLS connection established to ${namaddrport}: ${info.protocol} with cipher ${info.cipher}${bits ? ` (${bits}/${bits} bits)` : ""}`;
}
