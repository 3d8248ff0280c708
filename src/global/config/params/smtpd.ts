/** SMTP server parameters (the server itself arrives with its own issue). */
import { p, t, type ParamDef } from "../param-def.ts";

const SMTPD = ["smtpd"];

export const smtpdParams = (): ParamDef[] => [
  p("smtpd_banner", "str", "$myhostname ESMTP $mail_name", "Text after 220 in the greeting", SMTPD),
  p("disable_vrfy_command", "bool", "no", "Disable the VRFY command", SMTPD),
  p("smtpd_recipient_limit", "int", "1000", "Maximal recipients per message", SMTPD),
  t("smtpd_timeout", "s", "${stress?{10}:{300}}s", "Time limit for a client command or data", SMTPD),
  p("smtpd_per_request_deadline", "bool", "${smtpd_per_record_deadline?{$smtpd_per_record_deadline}:{${stress?{yes}:{no}}}}", "smtpd_timeout and smtpd_starttls_timeout limit a whole request, not each read", SMTPD),
  // Postfix 2.9-3.6's name of smtpd_per_request_deadline; empty (Postfix's built-in default) unless set
  p("smtpd_per_record_deadline", "str", "", "Old name of smtpd_per_request_deadline: when set, its value", SMTPD),
  p("smtpd_min_data_rate", "int", "500", "With smtpd_per_request_deadline: bytes per second of content that earn one more second, up to smtpd_timeout", SMTPD),
  p("smtpd_helo_required", "bool", "no", "Require HELO or EHLO before MAIL", SMTPD),
  p("smtpd_hard_error_limit", "int", "${stress?{1}:{20}}", "Errors after which the session is ended", SMTPD),
  p("smtpd_soft_error_limit", "int", "10", "Errors after which each reply is delayed", SMTPD),
  t("smtpd_error_sleep_time", "s", "1s", "Delay of an error reply past the soft limit", SMTPD),
  p("smtp_destination_recipient_limit", "int", "$default_destination_recipient_limit", "Maximal recipients per SMTP delivery", ["qmgr", "smtp"]),
];
