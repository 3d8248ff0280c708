/**
 * Mail authentication: DKIM signing (pickup and smtpd) and the checks of
 * mail received over SMTP (SPF, DKIM, DMARC, ARC). postern's own names,
 * in Postfix's style; Postfix leaves all this to milters (OpenDKIM,
 * OpenDMARC, policyd-spf). docs/authentication.md describes them.
 */
import { p, refusing, type ParamDef } from "../param-def.ts";

const SIGNERS = ["pickup", "smtpd"];
const SMTPD = ["smtpd"];

/** The recommended set of RFC 6376 5.4.1. */
const SIGNED_HEADERS =
  "From, Sender, Reply-To, Subject, Date, Message-ID, To, Cc, MIME-Version, Content-Type, Content-Transfer-Encoding, Content-ID, Content-Description, " +
  "Resent-Date, Resent-From, Resent-Sender, Resent-To, Resent-Cc, Resent-Message-ID, In-Reply-To, References, " +
  "List-Id, List-Help, List-Unsubscribe, List-Unsubscribe-Post, List-Subscribe, List-Post, List-Owner, List-Archive";

/** dkim_canonicalization: HEADER/BODY, each relaxed or simple (a single word is HEADER/simple, RFC 6376 3.5). */
export function refuseCanonicalization(value: string): string | undefined {
  return /^(relaxed|simple)(\/(relaxed|simple))?$/i.test(value.trim()) ? undefined : `"${value}" is not relaxed/relaxed, relaxed/simple, simple/relaxed or simple/simple`;
}

export const dkimParams = (): ParamDef[] => [
  p("dkim_key_directory", "str", "$config_directory/dkim", "postern: where the DKIM private keys are (DOMAIN.SELECTOR.key, read as root at start)", SIGNERS),
  p("dkim_sign_maps", "list", "", "postern: tables from the author (From:) domain to the DKIM selector, or SIGNING_DOMAIN:SELECTOR", SIGNERS),
  p("dkim_default_key", "str", "", "postern: SIGNING_DOMAIN:SELECTOR for mail whose domain dkim_sign_maps does not list (empty: such mail is not signed)", SIGNERS),
  p("dkim_signed_headers", "list", SIGNED_HEADERS, "postern: header fields a DKIM signature covers", SIGNERS),
  p("dkim_oversigned_headers", "list", "From", "postern: header fields signed once more than present, so that none can be added", SIGNERS),
  refusing(p("dkim_canonicalization", "str", "relaxed/relaxed", "postern: DKIM canonicalization, header/body", SIGNERS), refuseCanonicalization),
  p("dkim_sign_clients", "list", "permit_mynetworks, permit_sasl_authenticated", "postern: SMTP clients whose mail is signed (local submissions always are)", SMTPD),
  p("smtpd_mail_authentication", "bool", "yes", "postern: check SPF, DKIM, DMARC and ARC of mail from other clients and add Authentication-Results:", SMTPD),
  p(
    "smtpd_mail_authentication_exempt_clients",
    "list",
    "permit_mynetworks, permit_sasl_authenticated",
    "postern: SMTP clients whose mail is not checked (no Authentication-Results: header)",
    SMTPD,
  ),
  p("smtpd_dmarc_reject", "bool", "no", "postern: reject at the end of DATA mail that fails DMARC with policy reject", SMTPD),
  p("smtpd_spf_reject", "bool", "no", "postern: reject at RCPT mail whose SPF result is fail", SMTPD),
  p("smtpd_arc_seal_key", "str", "", "postern: SIGNING_DOMAIN:SELECTOR of the key (in dkim_key_directory) that ARC-seals the mail smtpd checked; empty: no seal", SMTPD),
];
