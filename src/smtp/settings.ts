/**
 * The SMTP or LMTP client's parameters, read once per configuration into
 * one typed object (`smtp_*` or `lmtp_*`, see params/smtp.ts). Values come
 * from the trusted configuration; a bad value throws ConfigError at read
 * time, which the agent reports as a deferral.
 */
import type { Config } from "../global/config/config.ts";
import { hostLookupMethods, type HostLookupMethod } from "../global/dns/settings.ts";
import { parsePort } from "./nexthop.ts";
import type { DaneDigest, DaneSettings } from "./dane.ts";

export type TlsLevel = "none" | "may" | "encrypt" | "verify" | "secure" | "dane" | "dane-only";

export const TLS_LEVELS: readonly TlsLevel[] = ["none", "may", "encrypt", "verify", "secure", "dane", "dane-only"];

export interface ClientSettings {
  lmtp: boolean;
  /** "smtp" or "lmtp": the parameter prefix. */
  prefix: "smtp" | "lmtp";
  heloName: string;
  myhostname: string;
  queueDirectory: string;
  defaultPort: number;
  timeouts: {
    connect: number;
    helo: number;
    mail: number;
    rcpt: number;
    dataInit: number;
    dataXfer: number;
    dataDone: number;
    rset: number;
    quit: number;
    starttls: number;
  };
  fallbackRelay: string[];
  mxAddressLimit: number;
  mxSessionLimit: number;
  randomizeAddresses: boolean;
  skip5xxGreeting: boolean;
  skipQuitResponse: boolean;
  neverSendEhlo: boolean;
  lineLengthLimit: number;
  /** smtp_generic_maps / lmtp_generic_maps (generic(5)). */
  genericMaps: string[];
  bindAddress: string;
  bindAddress6: string;
  cacheOnDemand: boolean;
  cacheDestinations: string[];
  cacheTimeLimit: number;
  reuseTimeLimit: number;
  reuseCountLimit: number;
  hostLookup: HostLookupMethod[];
  inetProtocols: Array<"ipv4" | "ipv6">;
  sasl: {
    enable: boolean;
    passwordMaps: string[];
    senderDependent: boolean;
    securityOptions: string[];
    tlsSecurityOptions: string[];
    tlsVerifiedSecurityOptions: string[];
    mechanismFilter: string[];
    softBounce: boolean;
    xoauth2TokenFile: string;
    xoauth2TokenCommand: string;
  };
  tls: {
    level: TlsLevel;
    /** The configured level was not a known word. */
    badLevel?: string;
    wrapperMode: boolean;
    caFile: string;
    caPath: string;
    certFile: string;
    keyFile: string;
    policyMaps: string[];
    logLevel: number;
    servername: string;
    verifyCertMatch: string[];
    secureCertMatch: string[];
    connectionReuse: boolean;
    noteStarttlsOffer: boolean;
    /** What DANE needs: believe the AD bit, the insecure-MX rule, the TLSA digests (dane.ts). */
    dane: DaneSettings;
  };
  senderDependentRelayhostMaps: string[];
  emptyAddressRelayhostKey: string;
  relayhost: string;
  smtputf8Enable: boolean;
  syslogName: string;
}

export function readClientSettings(config: Config, lmtp: boolean): ClientSettings {
  const prefix = lmtp ? "lmtp" : "smtp";
  const n = (suffix: string) => `${prefix}_${suffix}`;
  const ms = (suffix: string) => config.time(n(suffix)) * 1000;
  const portText = config.str(n("tcp_port"));
  const levelText = config.str(n("tls_security_level")).trim().toLowerCase();
  const level = (levelText === "" ? "none" : levelText) as TlsLevel;
  const badLevel = TLS_LEVELS.includes(level) ? undefined : levelText;
  const protocols = new Set<"ipv4" | "ipv6">();
  for (const w of config.list("inet_protocols").map((x) => x.toLowerCase())) {
    if (w === "all") {
      protocols.add("ipv4");
      protocols.add("ipv6");
    } else if (w === "ipv4" || w === "ipv6") protocols.add(w);
  }
  return {
    lmtp,
    prefix,
    heloName: config.str(lmtp ? "lmtp_lhlo_name" : "smtp_helo_name"),
    myhostname: config.str("myhostname"),
    queueDirectory: config.str("queue_directory"),
    defaultPort: parsePort(portText) ?? (lmtp ? 24 : 25),
    timeouts: {
      connect: ms("connect_timeout"),
      helo: ms(lmtp ? "lhlo_timeout" : "helo_timeout"),
      mail: ms("mail_timeout"),
      rcpt: ms("rcpt_timeout"),
      dataInit: ms("data_init_timeout"),
      dataXfer: ms("data_xfer_timeout"),
      dataDone: ms("data_done_timeout"),
      rset: ms("rset_timeout"),
      quit: ms("quit_timeout"),
      starttls: ms("starttls_timeout"),
    },
    fallbackRelay: config.list(n("fallback_relay")),
    mxAddressLimit: config.int(n("mx_address_limit")),
    mxSessionLimit: config.int(n("mx_session_limit")),
    randomizeAddresses: config.bool(n("randomize_addresses")),
    skip5xxGreeting: config.bool(n("skip_5xx_greeting")),
    skipQuitResponse: config.bool(n("skip_quit_response")),
    neverSendEhlo: lmtp ? false : config.bool("smtp_never_send_ehlo"),
    lineLengthLimit: config.int(n("line_length_limit")),
    genericMaps: config.list(n("generic_maps")),
    bindAddress: config.str(n("bind_address")),
    bindAddress6: config.str(n("bind_address6")),
    cacheOnDemand: config.bool(n("connection_cache_on_demand")),
    cacheDestinations: config.list(n("connection_cache_destinations")),
    cacheTimeLimit: ms("connection_cache_time_limit"),
    reuseTimeLimit: ms("connection_reuse_time_limit"),
    reuseCountLimit: config.int(n("connection_reuse_count_limit")),
    hostLookup: hostLookupMethods(config, prefix),
    inetProtocols: protocols.size ? [...protocols] : ["ipv4"],
    sasl: {
      enable: config.bool(n("sasl_auth_enable")),
      passwordMaps: config.list(n("sasl_password_maps")),
      senderDependent: config.bool(n("sender_dependent_authentication")),
      securityOptions: config.list(n("sasl_security_options")).map((w) => w.toLowerCase()),
      tlsSecurityOptions: config.list(n("sasl_tls_security_options")).map((w) => w.toLowerCase()),
      tlsVerifiedSecurityOptions: config.list(n("sasl_tls_verified_security_options")).map((w) => w.toLowerCase()),
      mechanismFilter: config.list(n("sasl_mechanism_filter")).map((w) => w.toUpperCase()),
      softBounce: config.bool(n("sasl_auth_soft_bounce")),
      xoauth2TokenFile: config.str(n("sasl_xoauth2_token_file")),
      xoauth2TokenCommand: config.str(n("sasl_xoauth2_token_command")),
    },
    tls: {
      level: badLevel ? "none" : level,
      ...(badLevel !== undefined ? { badLevel } : {}),
      wrapperMode: config.bool(n("tls_wrappermode")),
      caFile: config.str(n("tls_CAfile")),
      caPath: config.str(n("tls_CApath")),
      certFile: config.str(n("tls_cert_file")),
      keyFile: config.str(n("tls_key_file")),
      policyMaps: config.list(n("tls_policy_maps")),
      logLevel: config.int(n("tls_loglevel")),
      servername: config.str(n("tls_servername")),
      verifyCertMatch: config.list(n("tls_verify_cert_match")).map((w) => w.toLowerCase()),
      secureCertMatch: config.list(n("tls_secure_cert_match")).map((w) => w.toLowerCase()),
      connectionReuse: config.bool(n("tls_connection_reuse")),
      noteStarttlsOffer: config.bool(n("tls_note_starttls_offer")),
      dane: daneSettings(config, prefix, level),
    },
    senderDependentRelayhostMaps: config.list("sender_dependent_relayhost_maps"),
    emptyAddressRelayhostKey: config.str("empty_address_relayhost_maps_lookup_key"),
    relayhost: config.str("relayhost"),
    smtputf8Enable: config.raw("smtputf8_enable") === undefined ? true : config.bool("smtputf8_enable"),
    syslogName: config.str("syslog_name"),
  };
}

/** smtp_dns_support_level = dnssec with DNS lookups on; the insecure-MX policy; tls_dane_digests. */
function daneSettings(config: Config, prefix: "smtp" | "lmtp", level: string): DaneSettings {
  const support = config.str(`${prefix}_dns_support_level`).trim().toLowerCase();
  const mxPolicyText = config.str("smtp_tls_dane_insecure_mx_policy").trim().toLowerCase();
  const mxPolicy = mxPolicyText === "may" || mxPolicyText === "encrypt" || mxPolicyText === "dane" ? mxPolicyText : level === "dane" ? "dane" : "may";
  const digests = config.list("tls_dane_digests").map((w) => w.toLowerCase()).filter((w): w is DaneDigest => w === "sha256" || w === "sha512");
  return { dnssec: support === "dnssec" && hostLookupMethods(config, prefix).includes("dns"), insecureMxPolicy: mxPolicy, digests };
}
