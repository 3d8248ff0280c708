/**
 * MTA-STS in the SMTP client (RFC 8461): postern's own parameters (Postfix
 * leaves MTA-STS to an outside policy server), named in Postfix's style.
 */
import { p, t, type ParamDef } from "../param-def.ts";

const SMTP = ["smtp"];

export const mtaStsParams = (): ParamDef[] => [
  p("smtp_mta_sts_enable", "bool", "no", "postern: apply the MTA-STS policies recipient domains publish (RFC 8461): enforce uses only the MX hosts the policy names, with verified TLS", SMTP),
  p("smtp_mta_sts_cache_file", "str", "$queue_directory/data/mta-sts-cache.json", "postern: where MTA-STS policies are kept across restarts (empty: in memory only)", SMTP),
  p("smtp_mta_sts_CAfile", "str", "", "postern: CA certificates trusted for MTA-STS policy hosts (empty: the system's)", SMTP),
  p("smtp_mta_sts_policy_port", "int", "443", "postern: HTTPS port of MTA-STS policy hosts (RFC 8461 says 443; another for a proxy or tests)", SMTP),
  t("smtp_mta_sts_fetch_timeout", "s", "30s", "postern: time limit for fetching one MTA-STS policy", SMTP),
];
