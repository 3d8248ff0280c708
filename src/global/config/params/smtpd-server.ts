/**
 * SMTP server parameters beyond the few in smtpd.ts: protocol limits,
 * smuggling and pipelining protection, restrictions and their reply codes,
 * address classes for recipient validation, TLS, SASL and per-client rate
 * limits. Defaults are Postfix 3.7's except where a comment says otherwise
 * (test/e2e/postconf-vs-postfix.test.ts lists those differences).
 */
import { p, raw, t, refusing, unsupported, type ParamDef } from "../param-def.ts";
import { refuseServerTlsLevel } from "../value-checks.ts";

const SMTPD = ["smtpd"];

export const smtpdServerParams = (): ParamDef[] => [
  // protocol
  p("smtpd_junk_command_limit", "int", "${stress?{1}:{100}}", "NOOP, VRFY, ETRN or RSET commands before each counts as an error", SMTPD),
  p("smtpd_recipient_overshoot_limit", "int", "1000", "Recipients beyond smtpd_recipient_limit before each counts as an error", SMTPD),
  p("smtpd_discard_ehlo_keywords", "list", "", "EHLO keywords not announced (and the commands not offered)", SMTPD),
  // Postfix 3.9's default; 3.7 says "no"
  p("smtpd_forbid_bare_newline", "str", "normalize", "Bare <LF> line ends: normalize (only CRLF.CRLF ends DATA), reject, or no", SMTPD),
  p("smtpd_forbid_bare_newline_exclusions", "list", "$mynetworks", "Clients exempt from smtpd_forbid_bare_newline", SMTPD),
  p("smtpd_forbid_bare_newline_reject_code", "int", "550", "Reply code for a bare <LF> with smtpd_forbid_bare_newline = reject", SMTPD),
  // Postfix 3.9's default; 3.7 says "no"
  p("smtpd_forbid_unauth_pipelining", "bool", "yes", "Disconnect clients that pipeline commands where RFC 2920 does not allow it", SMTPD),
  p("smtpd_forbidden_commands", "list", "CONNECT GET POST regexp:{{/^[^A-Z]/ Bogus}}", "Commands that end the session at once (lines starting with a non-letter always do)", SMTPD),
  p("fast_flush_domains", "list", "$relay_domains", "Destinations that ETRN may ask to deliver", SMTPD),
  p("smtpd_client_port_logging", "bool", "no", "Log the client's port with its address", SMTPD),
  p("strict_rfc821_envelopes", "bool", "no", "Require <> around MAIL FROM and RCPT TO addresses", SMTPD),
  p("strict_smtputf8", "bool", "no", "Refuse non-ASCII addresses in MAIL FROM, RCPT TO and VRFY unless the client asked for SMTPUTF8", SMTPD),
  p("smtpd_null_access_lookup_key", "str", "<>", "The key that stands for the null sender in access maps", SMTPD),
  p("allow_untrusted_routing", "bool", "no", "Relay sender-routed addresses (user@domain@domain) from untrusted clients", SMTPD),
  p("smtpd_reject_unlisted_sender", "bool", "no", "Reject unknown sender addresses in our own domains", SMTPD),
  p("smtpd_reject_unlisted_recipient", "bool", "yes", "Reject unknown recipient addresses in our own domains", SMTPD),
  p("unknown_local_recipient_reject_code", "int", "550", "Reply code for an unknown user in a local domain", SMTPD),
  p("unknown_relay_recipient_reject_code", "int", "550", "Reply code for an unknown user in a relay domain", SMTPD),
  p("unknown_virtual_alias_reject_code", "int", "550", "Reply code for an unknown user in a virtual alias domain", SMTPD),
  p("unknown_virtual_mailbox_reject_code", "int", "550", "Reply code for an unknown user in a virtual mailbox domain", SMTPD),
  p("show_user_unknown_table_name", "bool", "yes", "Name the recipient table in \"User unknown\" replies", SMTPD),
  p("relay_recipient_maps", "list", "", "Valid recipients in relay_domains (empty: every one)", SMTPD),
  p("virtual_alias_domains", "list", "$virtual_alias_maps", "Domains whose addresses are all virtual aliases", ["smtpd", "qmgr"]),
  p("virtual_mailbox_domains", "list", "$virtual_mailbox_maps", "Domains delivered by the virtual mailbox transport", ["smtpd", "qmgr"]),
  p("virtual_mailbox_maps", "list", "", "Valid recipients in virtual_mailbox_domains", ["smtpd", "virtual"]),
  p("local_header_rewrite_clients", "list", "permit_inet_interfaces", "Clients whose mail gets local header rewriting and missing headers added", SMTPD),
  p("smtpd_reject_footer", "str", "", "Text appended to every 4xx and 5xx reply", SMTPD),
  p("smtpd_peername_lookup", "bool", "yes", "Look up the client's name in the DNS", SMTPD),

  // restrictions
  p("smtpd_delay_reject", "bool", "yes", "Apply client, HELO and sender restrictions at RCPT time", SMTPD),
  p("smtpd_client_restrictions", "list", "", "Restrictions on the client's name and address", SMTPD),
  p("smtpd_helo_restrictions", "list", "", "Restrictions on the HELO/EHLO name", SMTPD),
  p("smtpd_sender_restrictions", "list", "", "Restrictions on the MAIL FROM address", SMTPD),
  p(
    "smtpd_relay_restrictions",
    "list",
    "${{$compatibility_level} <level {1} ? {} : {permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination}}",
    "Relay control, applied at RCPT before smtpd_recipient_restrictions",
    SMTPD,
  ),
  p("smtpd_recipient_restrictions", "list", "", "Restrictions on the RCPT TO address (spam blocking)", SMTPD),
  p("smtpd_data_restrictions", "list", "", "Restrictions at the DATA command", SMTPD),
  p("smtpd_end_of_data_restrictions", "list", "", "Restrictions after the message content", SMTPD),
  p("smtpd_etrn_restrictions", "list", "", "Restrictions on the ETRN command", SMTPD),
  p("smtpd_restriction_classes", "list", "", "Names of restriction lists usable as access map results", SMTPD),
  p("smtpd_sender_login_maps", "list", "", "Which SASL login names own which sender addresses", SMTPD),
  p("access_map_reject_code", "int", "554", "Reply code for REJECT in an access map", SMTPD),
  p("access_map_defer_code", "int", "450", "Reply code for DEFER in an access map", SMTPD),
  p("reject_code", "int", "554", "Reply code of the reject restriction", SMTPD),
  p("defer_code", "int", "450", "Reply code of the defer restriction", SMTPD),
  p("relay_domains_reject_code", "int", "554", "Reply code of reject_unauth_destination", SMTPD),
  p("unknown_address_reject_code", "int", "450", "Reply code for a sender or recipient domain without DNS records", SMTPD),
  p("unknown_client_reject_code", "int", "450", "Reply code of reject_unknown_client_hostname", SMTPD),
  p("unknown_hostname_reject_code", "int", "450", "Reply code of reject_unknown_helo_hostname", SMTPD),
  p("invalid_hostname_reject_code", "int", "501", "Reply code of reject_invalid_helo_hostname", SMTPD),
  p("non_fqdn_reject_code", "int", "504", "Reply code of the reject_non_fqdn_* restrictions", SMTPD),
  p("maps_rbl_reject_code", "int", "554", "Reply code of reject_rbl_client and reject_rhsbl_*", SMTPD),
  p("unknown_address_tempfail_action", "str", "$reject_tempfail_action", "Action when a domain lookup fails temporarily", SMTPD),
  p("reject_tempfail_action", "str", "defer_if_permit", "Action when a restriction cannot be evaluated now", SMTPD),
  p("plaintext_reject_code", "int", "450", "Reply code when AUTH is refused without TLS", SMTPD),
  p("rbl_reply_maps", "list", "", "Tables with reply templates per RBL domain", SMTPD),
  raw(
    p(
      "default_rbl_reply",
      "str",
      "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}",
      "Reply template of the RBL restrictions",
      SMTPD,
    ),
  ),

  // TLS
  refusing(p("smtpd_tls_security_level", "str", "", "TLS: none, may (offer STARTTLS) or encrypt (require it)", SMTPD), refuseServerTlsLevel),
  p("smtpd_tls_cert_file", "str", "", "Server certificate (PEM, may hold the chain)", SMTPD),
  p("smtpd_tls_key_file", "str", "$smtpd_tls_cert_file", "Private key of the server certificate", SMTPD),
  p("smtpd_tls_chain_files", "list", "", "Files each holding a key followed by its certificate chain", SMTPD),
  p("smtpd_tls_auth_only", "bool", "no", "Offer AUTH only after STARTTLS", SMTPD),
  // modern defaults: Postfix 3.7 says ">=TLSv1"
  p("smtpd_tls_protocols", "str", ">=TLSv1.2", "TLS protocols allowed with opportunistic TLS", SMTPD),
  p("smtpd_tls_mandatory_protocols", "str", ">=TLSv1.2", "TLS protocols allowed with mandatory TLS", SMTPD),
  unsupported(p("smtpd_tls_ciphers", "str", "medium", "Cipher grade with opportunistic TLS", SMTPD), "the server uses the TLS library's default ciphers"),
  unsupported(p("smtpd_tls_mandatory_ciphers", "str", "medium", "Cipher grade with mandatory TLS", SMTPD), "the server uses the TLS library's default ciphers"),
  p("smtpd_tls_exclude_ciphers", "list", "", "Ciphers or cipher types excluded", SMTPD),
  p("smtpd_tls_loglevel", "int", "0", "TLS logging: 1 logs a summary of each handshake", SMTPD),
  p("smtpd_tls_received_header", "bool", "no", "Record the TLS protocol and cipher in the Received: header", SMTPD),
  p("smtpd_tls_wrappermode", "bool", "no", "Implicit TLS (the smtps service on port 465)", SMTPD),
  t("smtpd_starttls_timeout", "s", "${stress?{10}:{300}}s", "Time limit for the TLS handshake", SMTPD),
  p("tls_server_sni_maps", "list", "", "Tables from a server name (SNI) to the key and certificate files for it", SMTPD),

  // SASL
  p("smtpd_sasl_auth_enable", "bool", "no", "Offer and accept AUTH", SMTPD),
  // Postfix's default is cyrus, which postern does not have
  p("smtpd_sasl_type", "str", "builtin", "SASL backend: builtin (smtpd_sasl_users_maps) or dovecot", SMTPD),
  p("smtpd_sasl_path", "str", "smtpd", "The Dovecot auth socket (smtpd_sasl_type = dovecot), relative to queue_directory unless absolute", SMTPD),
  p("smtpd_sasl_users_maps", "list", "texthash:${config_directory}/sasl_users", "postern: tables of user names and their argon2 or bcrypt password hashes (smtpd_sasl_type = builtin)", SMTPD),
  p("smtpd_sasl_security_options", "list", "noanonymous", "SASL options without TLS: noplaintext hides PLAIN and LOGIN", SMTPD),
  p("smtpd_sasl_tls_security_options", "list", "$smtpd_sasl_security_options", "SASL options under TLS", SMTPD),
  p("broken_sasl_auth_clients", "bool", "no", "Also announce AUTH=PLAIN LOGIN for old Outlook clients", SMTPD),
  p("smtpd_sasl_authenticated_header", "bool", "no", "Record the SASL login name in the Received: header", SMTPD),
  p("smtpd_sasl_exceptions_networks", "list", "", "Clients that are not offered AUTH", SMTPD),
  p("smtpd_sasl_local_domain", "str", "", "Realm appended to SASL login names", SMTPD),
  p("smtpd_sasl_service", "str", "smtp", "Service name given to the SASL backend", SMTPD),
  p("smtpd_sasl_response_limit", "int", "12288", "Maximal length of a SASL client response", SMTPD),

  // limits (the in-process anvil)
  p("smtpd_client_connection_count_limit", "int", "50", "Simultaneous connections per client (0: no limit)", SMTPD),
  p("smtpd_client_connection_rate_limit", "int", "0", "Connections per client per anvil_rate_time_unit (0: no limit)", SMTPD),
  p("smtpd_client_message_rate_limit", "int", "0", "Messages per client per anvil_rate_time_unit (0: no limit)", SMTPD),
  p("smtpd_client_recipient_rate_limit", "int", "0", "Recipients per client per anvil_rate_time_unit (0: no limit)", SMTPD),
  p("smtpd_client_auth_rate_limit", "int", "0", "AUTH commands per client per anvil_rate_time_unit (0: no limit)", SMTPD),
  p("smtpd_client_connection_limit_exceptions", "list", "", "Clients exempt from the connection limits (empty: see smtpd_client_event_limit_exceptions)", SMTPD),
  p("smtpd_client_event_limit_exceptions", "list", "${smtpd_client_connection_limit_exceptions:$mynetworks}", "Clients exempt from the per-client limits", SMTPD),
  t("anvil_rate_time_unit", "s", "60s", "The time unit of the per-client rate limits", SMTPD),
];
