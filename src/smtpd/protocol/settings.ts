/**
 * The protocol engine's settings from a service's configuration (the main
 * parameters with the service's overrides), read once per (re)load so a
 * bad value fails when the service starts, not in the middle of a session.
 * smtpd_forbid_bare_newline_exclusions is applied per client by the caller.
 *
 * Runs in smtpd and in sendmail -bs; the configuration is trusted.
 */
import type { Config } from "../../global/config/config.ts";
import { ConfigError } from "../../global/config/source.ts";
import type { BareNewlineMode } from "./input.ts";
import type { SessionSettings } from "./types.ts";

export function bareNewlineMode(config: Config): BareNewlineMode {
  const v = config.str("smtpd_forbid_bare_newline").toLowerCase();
  switch (v) {
    case "normalize":
    case "yes":
      return "normalize";
    case "reject":
      return "reject";
    case "no":
      return "no";
    default:
      throw new ConfigError(`smtpd_forbid_bare_newline: invalid value "${v}" (use normalize, reject or no)`);
  }
}

export function tlsLevel(config: Config): "none" | "may" | "encrypt" {
  const v = config.str("smtpd_tls_security_level").toLowerCase();
  if (v === "" || v === "none") return "none";
  if (v === "may") return "may";
  if (v === "encrypt") return "encrypt";
  throw new ConfigError(`smtpd_tls_security_level: invalid value "${v}" (use none, may or encrypt)`);
}

/** smtpd_forbidden_commands: the command words (table entries in the list are not supported and ignored). */
function forbiddenCommands(config: Config): Set<string> {
  const raw = config.raw("smtpd_forbidden_commands") ?? "";
  return new Set(
    raw
      .replace(/\S+:\{\{.*?\}\}/g, "")
      .split(/[\s,]+/)
      .filter((w) => w && !w.includes(":"))
      .map((w) => w.toUpperCase()),
  );
}

function minDataRate(config: Config): number {
  const rate = config.int("smtpd_min_data_rate");
  if (rate < 1) throw new ConfigError(`smtpd_min_data_rate: invalid value "${rate}" (use a number of bytes per second, at least 1)`);
  return rate;
}

export function sessionSettings(config: Config, opts: { standAlone?: boolean; tlsAvailable?: boolean } = {}): SessionSettings {
  const level = tlsLevel(config);
  return {
    myhostname: config.str("myhostname"),
    banner: config.str("smtpd_banner"),
    mailName: config.str("mail_name"),
    messageSizeLimit: config.int("message_size_limit"),
    lineLengthLimit: Math.max(512, config.int("line_length_limit")),
    recipientLimit: config.int("smtpd_recipient_limit"),
    recipientOvershootLimit: config.int("smtpd_recipient_overshoot_limit"),
    hardErrorLimit: config.int("smtpd_hard_error_limit"),
    softErrorLimit: config.int("smtpd_soft_error_limit"),
    errorSleepMs: config.time("smtpd_error_sleep_time") * 1000,
    junkCommandLimit: config.int("smtpd_junk_command_limit"),
    timeoutMs: config.time("smtpd_timeout") * 1000,
    starttlsTimeoutMs: config.time("smtpd_starttls_timeout") * 1000,
    requestDeadline: config.bool("smtpd_per_request_deadline"),
    minDataRate: minDataRate(config),
    heloRequired: config.bool("smtpd_helo_required"),
    disableVrfy: config.bool("disable_vrfy_command"),
    discardEhloKeywords: new Set(config.list("smtpd_discard_ehlo_keywords").map((k) => k.toLowerCase())),
    bareNewline: bareNewlineMode(config),
    bareNewlineRejectCode: config.int("smtpd_forbid_bare_newline_reject_code"),
    forbidUnauthPipelining: config.bool("smtpd_forbid_unauth_pipelining"),
    forbiddenCommands: forbiddenCommands(config),
    strictRfc821: config.bool("strict_rfc821_envelopes"),
    smtputf8: config.bool("smtputf8_enable"),
    strictSmtputf8: config.bool("strict_smtputf8"),
    tlsLevel: opts.tlsAvailable === false ? "none" : level,
    tlsAuthOnly: config.bool("smtpd_tls_auth_only"),
    tlsReceivedHeader: config.bool("smtpd_tls_received_header"),
    tlsLogLevel: config.int("smtpd_tls_loglevel"),
    saslEnabled: config.bool("smtpd_sasl_auth_enable"),
    saslAuthenticatedHeader: config.bool("smtpd_sasl_authenticated_header"),
    brokenSaslAuthClients: config.bool("broken_sasl_auth_clients"),
    saslResponseLimit: config.int("smtpd_sasl_response_limit"),
    rejectFooter: config.str("smtpd_reject_footer"),
    clientPortLogging: config.bool("smtpd_client_port_logging"),
    standAlone: opts.standAlone === true,
  };
}
