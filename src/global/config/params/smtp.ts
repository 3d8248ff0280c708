/**
 * The SMTP and LMTP client's parameters (Postfix's smtp(8) and lmtp(8)),
 * with Postfix 3.7's defaults. Most exist twice, once per protocol: the
 * table below is written once and turned into `smtp_NAME` and `lmtp_NAME`
 * (the LMTP greeting is LHLO, so smtp_helo_name is lmtp_lhlo_name).
 *
 * smtp_destination_concurrency_limit and smtp_destination_recipient_limit
 * live in qmgr.ts and smtpd.ts; smtp_host_lookup and disable_dns_lookups
 * belong to the resolver's parameters.
 */
import { p, t, unsupported, refusing, type ParamDef, type ParamType } from "../param-def.ts";
import { clientTlsLevelCheck } from "../value-checks.ts";
import type { TimeUnit } from "../../../util/duration.ts";

const CLIENT = ["smtp", "lmtp", "qmgr"];

interface Both {
  /** Name after the "smtp_" / "lmtp_" prefix; "helo" becomes "lhlo" for LMTP. */
  suffix: string;
  type: ParamType;
  smtp: string;
  /** The LMTP default when it differs. */
  lmtp?: string;
  doc: string;
  unit?: TimeUnit;
  /** How postern treats it (see ParamDef.support); applied to both names. */
  mark?: (def: ParamDef) => ParamDef;
}

/** A function, as the params files are: built only when the registry needs this file (registry.ts). */
const both = (): Both[] => [
  { suffix: "helo_name", type: "str", smtp: "$myhostname", doc: "Host name sent in EHLO/HELO (LHLO)" },
  { suffix: "helo_timeout", type: "time", unit: "s", smtp: "300s", doc: "Time limit for the greeting and the EHLO/HELO (LHLO) reply" },
  { suffix: "connect_timeout", type: "time", unit: "s", smtp: "30s", lmtp: "0s", doc: "Time limit for a TCP connection (0: the system's)" },
  { suffix: "mail_timeout", type: "time", unit: "s", smtp: "300s", doc: "Time limit for the MAIL FROM reply" },
  { suffix: "rcpt_timeout", type: "time", unit: "s", smtp: "300s", doc: "Time limit for a RCPT TO reply" },
  { suffix: "data_init_timeout", type: "time", unit: "s", smtp: "120s", doc: "Time limit for the DATA reply" },
  { suffix: "data_xfer_timeout", type: "time", unit: "s", smtp: "180s", doc: "Time limit for sending the message content" },
  { suffix: "data_done_timeout", type: "time", unit: "s", smtp: "600s", doc: "Time limit for the reply to the end of the message" },
  { suffix: "rset_timeout", type: "time", unit: "s", smtp: "20s", doc: "Time limit for the RSET reply" },
  { suffix: "quit_timeout", type: "time", unit: "s", smtp: "300s", doc: "Time limit for the QUIT reply" },
  { suffix: "starttls_timeout", type: "time", unit: "s", smtp: "300s", doc: "Time limit for the STARTTLS reply and the TLS handshake" },
  { suffix: "tcp_port", type: "str", smtp: "smtp", lmtp: "24", doc: "Server port used when a destination names none" },
  { suffix: "bind_address", type: "str", smtp: "", doc: "Local IPv4 address for outgoing connections" },
  { suffix: "bind_address6", type: "str", smtp: "", doc: "Local IPv6 address for outgoing connections" },
  { suffix: "bind_address_enforce", type: "bool", smtp: "no", doc: "Defer instead of connecting from another address when the bind address cannot be used", mark: (d) => unsupported(d, "postern does not bind the client to an address", ["no"]) },
  { suffix: "fallback_relay", type: "list", smtp: "$fallback_relay", lmtp: "", doc: "Relays tried when the destination cannot be found or reached" },
  { suffix: "mx_address_limit", type: "int", smtp: "5", doc: "Maximal number of server addresses tried per destination" },
  { suffix: "mx_session_limit", type: "int", smtp: "2", doc: "Maximal number of SMTP sessions per destination before giving up" },
  { suffix: "randomize_addresses", type: "bool", smtp: "yes", doc: "Shuffle server addresses of equal preference" },
  { suffix: "skip_5xx_greeting", type: "bool", smtp: "yes", doc: "Treat a 5xx greeting as temporary and try the next server" },
  { suffix: "skip_quit_response", type: "bool", smtp: "yes", lmtp: "no", doc: "Do not wait for the reply to QUIT" },
  { suffix: "line_length_limit", type: "int", smtp: "998", doc: "Longer content lines are broken with CRLF and a space (0: no limit)" },
  { suffix: "connection_cache_on_demand", type: "bool", smtp: "yes", doc: "Keep connections open for more mail to the same destination" },
  { suffix: "connection_cache_destinations", type: "list", smtp: "", doc: "Destinations whose connections are always kept open for reuse" },
  { suffix: "connection_cache_time_limit", type: "time", unit: "s", smtp: "2s", doc: "Time an idle connection is kept open" },
  { suffix: "connection_reuse_time_limit", type: "time", unit: "s", smtp: "300s", doc: "Age after which a connection is no longer reused" },
  { suffix: "connection_reuse_count_limit", type: "int", smtp: "0", doc: "Maximal number of transactions per connection (0: no limit)" },
  { suffix: "sender_dependent_authentication", type: "bool", smtp: "no", doc: "Look SASL passwords up by sender address first" },
  { suffix: "sasl_auth_enable", type: "bool", smtp: "no", doc: "Authenticate to servers with SASL" },
  { suffix: "generic_maps", type: "list", smtp: "", doc: "Tables rewriting the envelope and header addresses of outgoing mail (generic(5))" },
  { suffix: "sasl_password_maps", type: "list", smtp: "", doc: "Tables with username:password per server, destination or sender" },
  { suffix: "sasl_security_options", type: "list", smtp: "noplaintext, noanonymous", doc: "SASL mechanism restrictions on plaintext connections" },
  { suffix: "sasl_tls_security_options", type: "list", smtp: "$PREFIX_sasl_security_options", doc: "SASL mechanism restrictions under TLS" },
  { suffix: "sasl_tls_verified_security_options", type: "list", smtp: "$PREFIX_sasl_tls_security_options", doc: "SASL mechanism restrictions under verified TLS" },
  { suffix: "sasl_mechanism_filter", type: "list", smtp: "", doc: "Server mechanisms the client may use (empty: all)" },
  { suffix: "sasl_auth_soft_bounce", type: "bool", smtp: "yes", doc: "Defer instead of bounce when authentication fails" },
  { suffix: "sasl_xoauth2_token_file", type: "str", smtp: "", doc: "File holding the XOAUTH2 access token (postern)" },
  { suffix: "sasl_xoauth2_token_command", type: "str", smtp: "", doc: "Command whose output is the XOAUTH2 access token (postern)" },
  { suffix: "tls_security_level", type: "str", smtp: "", doc: "Default TLS level: none, may, encrypt, verify, secure, dane, dane-only (empty: none)", mark: (d) => refusing(d, clientTlsLevelCheck(d.name.startsWith("lmtp") ? "lmtp" : "smtp")) },
  { suffix: "tls_wrappermode", type: "bool", smtp: "no", doc: "TLS from the first byte (port 465) instead of STARTTLS" },
  { suffix: "tls_CAfile", type: "str", smtp: "", doc: "Trusted CA certificates (empty with tls_CApath: the system store)" },
  { suffix: "tls_CApath", type: "str", smtp: "", doc: "Directory of trusted CA certificates" },
  { suffix: "tls_cert_file", type: "str", smtp: "", doc: "Client certificate presented to servers that ask" },
  { suffix: "tls_key_file", type: "str", smtp: "$PREFIX_tls_cert_file", doc: "Key of the client certificate" },
  { suffix: "tls_policy_maps", type: "list", smtp: "", doc: "Per-destination TLS levels and attributes" },
  { suffix: "tls_loglevel", type: "int", smtp: "0", doc: "TLS logging: 0 only problems, 1 a summary per connection, 2 more" },
  { suffix: "tls_servername", type: "str", smtp: "", doc: "SNI sent in the handshake: empty (none), hostname, nexthop or a name" },
  { suffix: "tls_verify_cert_match", type: "list", smtp: "hostname", doc: "Names the certificate must match at the verify level" },
  { suffix: "tls_secure_cert_match", type: "list", smtp: "nexthop, dot-nexthop", lmtp: "nexthop", doc: "Names the certificate must match at the secure level" },
  { suffix: "tls_connection_reuse", type: "bool", smtp: "no", doc: "Reuse connections that use TLS" },
  { suffix: "tls_note_starttls_offer", type: "bool", smtp: "no", doc: "Log servers that offer STARTTLS when it is not used" },
  { suffix: "never_send_ehlo", type: "bool", smtp: "no", doc: "Send HELO instead of EHLO" },
];

function build(prefix: "smtp" | "lmtp", table: readonly Both[]): ParamDef[] {
  const out: ParamDef[] = [];
  for (const b of table) {
    if (prefix === "lmtp" && b.suffix === "never_send_ehlo") continue;
    // plain string operations, no regular expressions: every command builds these at start
    const suffix = prefix === "lmtp" && b.suffix.startsWith("helo_") ? `lhlo_${b.suffix.slice(5)}` : b.suffix;
    const dflt = (prefix === "lmtp" && b.lmtp !== undefined ? b.lmtp : b.smtp).replaceAll("PREFIX", prefix);
    const doc = prefix === "lmtp" ? b.doc.replace("EHLO/HELO (LHLO)", "LHLO").replaceAll("SMTP", "LMTP") : b.doc.replace(" (LHLO)", "");
    const name = `${prefix}_${suffix}`;
    const def = b.type === "time" ? t(name, b.unit ?? "s", dflt, doc, CLIENT) : p(name, b.type, dflt, doc, CLIENT);
    out.push(b.mark ? b.mark(def) : def);
  }
  return out;
}

export const smtpParams = (table = both()): ParamDef[] => [
  ...build("smtp", table),
  ...build("lmtp", table),
  p("fallback_relay", "list", "", "Obsolete name of smtp_fallback_relay", CLIENT),
  unsupported(p("smtp_always_send_ehlo", "bool", "yes", "Send EHLO even when the greeting does not say ESMTP", CLIENT), "the client always sends EHLO unless smtp_never_send_ehlo is set", ["yes"]),
  p("sender_dependent_relayhost_maps", "list", "", "Per-sender overrides of relayhost", ["qmgr", "smtp"]),
  p("empty_address_relayhost_maps_lookup_key", "str", "<>", "Key of the null sender in sender_dependent_relayhost_maps", ["qmgr", "smtp"]),
  p("lmtp_destination_recipient_limit", "int", "$default_destination_recipient_limit", "Maximal recipients per LMTP delivery", ["qmgr"]),
  p("lmtp_destination_concurrency_limit", "int", "$default_destination_concurrency_limit", "Parallel LMTP deliveries to one destination", ["qmgr"]),
];
