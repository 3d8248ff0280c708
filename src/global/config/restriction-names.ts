/**
 * The SMTP server restrictions postern implements, for `postern check`
 * (global code may not import the smtpd role). The one definition is the
 * RESTRICTIONS table in src/smtpd/restrictions/restrictions.ts;
 * test/unit/global/config/restriction-names.test.ts fails when the two
 * differ. Data only.
 */

/** Restrictions that take no argument. */
export const PLAIN_RESTRICTIONS: readonly string[] = [
  "permit", "ok", "dunno", "reject", "defer", "defer_if_permit", "defer_if_reject", "warn_if_reject",
  "permit_mynetworks", "permit_inet_interfaces", "permit_sasl_authenticated", "permit_tls_all_clientcerts",
  "reject_plaintext_session", "permit_auth_destination", "reject_unauth_destination", "defer_unauth_destination",
  "reject_unauth_pipelining", "reject_unlisted_recipient", "check_recipient_maps", "reject_unlisted_sender",
  "reject_unknown_sender_domain", "reject_unknown_recipient_domain", "reject_non_fqdn_sender", "reject_non_fqdn_recipient",
  "reject_non_fqdn_helo_hostname", "reject_non_fqdn_hostname", "reject_invalid_helo_hostname", "reject_invalid_hostname",
  "reject_unknown_helo_hostname", "reject_unknown_hostname", "reject_unknown_client_hostname", "reject_unknown_client",
  "reject_unknown_reverse_client_hostname", "reject_sender_login_mismatch", "reject_authenticated_sender_login_mismatch",
  "reject_unauthenticated_sender_login_mismatch", "reject_known_sender_login_mismatch",
];

/** Restrictions that take the next word as their argument. */
export const ARGUMENT_RESTRICTIONS: readonly string[] = [
  "sleep", "reject_rbl_client", "reject_rhsbl_client", "reject_rhsbl_reverse_client", "reject_rhsbl_sender", "reject_rhsbl_helo",
  "reject_rhsbl_recipient", "permit_dnswl_client", "check_client_access", "check_helo_access", "check_sender_access", "check_recipient_access",
  "check_policy_service",
];

/** Access-table actions postern does not implement (none left: FILTER, REDIRECT and BCC are done). */
export const MISSING_ACCESS_ACTIONS: readonly string[] = [];
