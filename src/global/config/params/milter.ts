/**
 * Milter parameters (Postfix's MILTER_README): the lists of milters, the
 * protocol, timeouts, the default action and the macros of each stage.
 * smtpd_milters is honoured by smtpd (src/smtpd/milters.ts),
 * non_smtpd_milters by pickup's cleanup (src/cleanup/milters.ts).
 */
import { p, refusing, t, type ParamDef } from "../param-def.ts";
import { DEFAULT_ACTIONS, MilterSpecError, parseMilterList, parseMilterProtocol } from "../../milter/spec.ts";

const MILTER = ["smtpd", "pickup"];

function refuseMilterList(value: string): string | undefined {
  try {
    parseMilterList(value, { connectTimeoutMs: 1, commandTimeoutMs: 1, contentTimeoutMs: 1, protocol: 6, noHeaderReply: false, defaultAction: "tempfail" });
    return undefined;
  } catch (err) {
    if (err instanceof MilterSpecError) return err.message;
    throw err;
  }
}

export const milterParams = (): ParamDef[] => [
  refusing(p("smtpd_milters", "str", "", "Milters (inet:host:port, unix:/path, { name, attr=value ... }) for mail the SMTP server receives", MILTER), refuseMilterList),
  refusing(p("non_smtpd_milters", "str", "", "Milters for mail not received by the SMTP server (sendmail, postsuper -r: in pickup's cleanup)", ["pickup"]), refuseMilterList),
  refusing(p("milter_protocol", "str", "6", "Milter protocol version offered (2, 3, 4 or 6), optionally with no_header_reply", MILTER), (v) => {
    try {
      parseMilterProtocol(v);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }),
  refusing(p("milter_default_action", "str", "tempfail", "What happens when a milter is down, times out or errs: accept, reject, tempfail, quarantine or shutdown", MILTER), (v) =>
    (DEFAULT_ACTIONS as readonly string[]).includes(v.trim().toLowerCase()) ? undefined : `"${v}" is not one of ${DEFAULT_ACTIONS.join(", ")}`,
  ),
  t("milter_connect_timeout", "s", "30s", "Time limit for connecting to a milter (its negotiation has milter_command_timeout)", MILTER),
  t("milter_command_timeout", "s", "30s", "Time limit for a milter's reply to a connect, HELO, MAIL, RCPT, DATA or unknown command event", MILTER),
  t("milter_content_timeout", "s", "300s", "Time limit for a milter's reply to a header, the end of headers, a body chunk or the end of the message", MILTER),
  p("milter_connect_macros", "str", "j {daemon_name} {daemon_addr} v _", "Macros sent to milters with the connect event", MILTER),
  p("milter_helo_macros", "str", "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}", "Macros sent to milters with HELO/EHLO", MILTER),
  p("milter_mail_macros", "str", "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}", "Macros sent to milters with MAIL FROM", MILTER),
  p("milter_rcpt_macros", "str", "i {rcpt_addr} {rcpt_host} {rcpt_mailer}", "Macros sent to milters with RCPT TO", MILTER),
  p("milter_data_macros", "str", "i", "Macros sent to milters with DATA", MILTER),
  p("milter_end_of_header_macros", "str", "i", "Macros sent to milters at the end of the headers", MILTER),
  p("milter_end_of_data_macros", "str", "i", "Macros sent to milters at the end of the message", MILTER),
  p("milter_unknown_command_macros", "str", "", "Macros sent to milters with an unknown SMTP command", MILTER),
  p("milter_macro_daemon_name", "str", "$myhostname", "The {daemon_name} macro's value", MILTER),
  p("milter_macro_v", "str", "$mail_name $mail_version", "The v macro's value", MILTER),
  p("milter_macro_defaults", "str", "", "name=value defaults for macros that have no value", MILTER),
];
