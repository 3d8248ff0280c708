/**
 * The SMTP server's TLS settings: the certificate and key (smtpd_tls_cert_file
 * and smtpd_tls_key_file, or smtpd_tls_chain_files holding a key followed by
 * its chain), the protocols allowed (smtpd_tls_protocols, or
 * smtpd_tls_mandatory_protocols when TLS is required), and excluded ciphers,
 * as options for Bun's TLS (STARTTLS through src/util/net/connection.ts, and
 * the implicit-TLS listener of the smtps service).
 *
 * Key files are read while still root, before the privilege drop, so they
 * may stay readable by root only, as with Postfix.
 *
 * Certificates by name (tls_server_sni_maps) are sni.ts's. Known limit:
 * cipher grades (medium, high) keep BoringSSL's modern default list.
 */
import { readFileSync } from "node:fs";
import type { TLSOptions } from "bun";
import type { Config } from "../global/config/config.ts";
import { ConfigError } from "../global/config/source.ts";
import { tlsLevel } from "./protocol/settings.ts";
import type { TlsSummary } from "./protocol/types.ts";
import type { TlsInfo } from "../util/net/connection.ts";

/** OpenSSL/BoringSSL SSL_OP_NO_* bits. */
const NO_PROTOCOL: Record<string, number> = {
  SSLv3: 0x02000000,
  TLSv1: 0x04000000,
  "TLSv1.1": 0x10000000,
  "TLSv1.2": 0x08000000,
  "TLSv1.3": 0x20000000,
};
const ORDER = ["SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"];

/** Postfix's protocol syntax: ">=TLSv1.2", "<=TLSv1.2", "!SSLv3, !TLSv1", or a list of allowed names. */
export function allowedProtocols(spec: string, param = "smtpd_tls_protocols"): Set<string> {
  const words = spec.split(/[\s,:]+/).filter(Boolean);
  let allowed = new Set(ORDER.slice(1));
  const positive = words.filter((w) => !w.startsWith("!") && !w.startsWith(">=") && !w.startsWith("<="));
  if (positive.length) allowed = new Set();
  for (const w of words) {
    const bad = () => new ConfigError(`${param}: unknown TLS protocol "${w}"`);
    if (w === "SSLv2") continue;
    if (w.startsWith(">=") || w.startsWith("<=")) {
      const i = ORDER.indexOf(w.slice(2));
      if (i < 0) throw bad();
      for (const [j, p] of ORDER.entries()) if (w.startsWith(">=") ? j < i : j > i) allowed.delete(p);
    } else if (w.startsWith("!")) {
      if (w === "!SSLv2") continue;
      if (!ORDER.includes(w.slice(1))) throw bad();
      allowed.delete(w.slice(1));
    } else {
      if (!ORDER.includes(w)) throw bad();
      allowed.add(w);
    }
  }
  allowed.delete("SSLv3");
  if (allowed.size === 0) throw new ConfigError(`${param}: "${spec}" allows no TLS protocol`);
  return allowed;
}

export function secureOptionsFor(allowed: Set<string>): number {
  let bits = 0;
  for (const p of ORDER) if (!allowed.has(p)) bits |= NO_PROTOCOL[p]!;
  return bits;
}

function readPem(path: string, param: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${param}: cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Splits PEM text into its private key and its certificates. */
function splitPem(text: string): { key: string | undefined; certs: string } {
  const key = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/.exec(text)?.[0];
  const certs = [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => m[0]).join("\n");
  return { key, certs };
}

export interface ServerTls {
  level: "none" | "may" | "encrypt";
  /** Options for STARTTLS and the implicit-TLS listener; undefined when TLS is off or has no certificate. */
  options: TLSOptions | undefined;
}

/** Reads the certificate and key of a service; call before dropping privileges. */
export function loadServerTls(config: Config, warn: (text: string) => void): ServerTls {
  const wrapper = config.bool("smtpd_tls_wrappermode");
  const level = tlsLevel(config);
  if (level === "none" && !wrapper) return { level, options: undefined };
  let key: string | undefined;
  let cert = "";
  const chains = config.list("smtpd_tls_chain_files");
  if (chains.length) {
    const all = chains.map((f) => readPem(f, "smtpd_tls_chain_files")).join("\n");
    ({ key, certs: cert } = splitPem(all));
  } else {
    const certFile = config.str("smtpd_tls_cert_file");
    if (certFile) {
      cert = splitPem(readPem(certFile, "smtpd_tls_cert_file")).certs;
      const keyFile = config.str("smtpd_tls_key_file") || certFile;
      key = splitPem(readPem(keyFile, "smtpd_tls_key_file")).key;
    }
  }
  if (!cert || !key) {
    if (level === "encrypt" || wrapper) throw new ConfigError(`${wrapper ? "smtpd_tls_wrappermode" : "smtpd_tls_security_level = encrypt"} needs a certificate and key: set smtpd_tls_cert_file and smtpd_tls_key_file (or smtpd_tls_chain_files); "postern tls new-server-cert" makes a self-signed pair`);
    warn("cannot load a TLS certificate and key (smtpd_tls_cert_file, smtpd_tls_key_file): TLS is off for this service");
    return { level: "none", options: undefined };
  }
  const mandatory = level === "encrypt" || wrapper;
  const param = mandatory ? "smtpd_tls_mandatory_protocols" : "smtpd_tls_protocols";
  const allowed = allowedProtocols(config.str(param), param);
  const options: TLSOptions = { cert, key, secureOptions: secureOptionsFor(allowed) };
  const exclude = config.list("smtpd_tls_exclude_ciphers");
  if (exclude.length) options.ciphers = ["DEFAULT", ...exclude.map((c) => `!${c}`)].join(":");
  return { level: wrapper && level === "none" ? "may" : level, options };
}

/** The key size Postfix shows as "(256/256 bits)", from the cipher's name. */
function cipherBits(cipher: string): number | undefined {
  if (/AES_?256|AES256|CHACHA20/i.test(cipher)) return 256;
  if (/AES_?128|AES128/i.test(cipher)) return 128;
  return undefined;
}

export function tlsSummary(info: TlsInfo): TlsSummary {
  const bits = cipherBits(info.cipher);
  return {
    protocol: info.protocol,
    cipher: info.cipher,
    ...(bits ? { bits } : {}),
    ...(info.servername ? { servername: info.servername } : {}),
  };
}
