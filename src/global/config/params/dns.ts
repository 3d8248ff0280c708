/** DNS: postern's own resolver (postern-only names) and Postfix's host lookup switches. */
import { p, refusing, t, type ParamDef } from "../param-def.ts";
import { refuseDaneDigests, refuseDnsSupportLevel, refuseInsecureMxPolicy } from "../value-checks.ts";

const ALL = ["all"];
const CLIENTS = ["smtp", "lmtp"];

export const dnsParams = (): ParamDef[] => [
  p("dns_servers", "list", "", "postern: name servers (IP or IP:port) used instead of /etc/resolv.conf's", ALL),
  t("dns_timeout", "s", "0s", "postern: time to wait for one name server's answer; 0 takes resolv.conf's timeout", ALL),
  p("dns_attempts", "int", "0", "postern: rounds over the name servers; 0 takes resolv.conf's attempts", ALL),
  p("dns_cache_size", "int", "10000", "postern: DNS answers cached per process (by their TTLs); 0 turns the cache off", ALL),
  p("disable_dns_lookups", "bool", "no", "Disable DNS lookups in the SMTP and LMTP clients (use the system's host lookups)", CLIENTS),
  p("smtp_host_lookup", "list", "dns", "How the SMTP client looks up host addresses: dns, native, or both in order", ["smtp"]),
  p("lmtp_host_lookup", "list", "dns", "How the LMTP client looks up host addresses: dns, native, or both in order", ["lmtp"]),
  refusing(p("smtp_dns_support_level", "str", "", "DNS in the SMTP client: disabled, enabled, or dnssec (believe a validating resolver's AD bit, which DANE needs); empty: disable_dns_lookups decides", ["smtp"]), refuseDnsSupportLevel),
  refusing(p("lmtp_dns_support_level", "str", "", "DNS in the LMTP client: disabled, enabled, or dnssec; empty: disable_dns_lookups decides", ["lmtp"]), refuseDnsSupportLevel),
  refusing(p("smtp_tls_dane_insecure_mx_policy", "str", "${{$smtp_tls_security_level} == {dane} ? {dane} : {may}}", "TLS for a DNSSEC-signed MX host named by an unsigned MX RRset: may, encrypt or dane", CLIENTS), refuseInsecureMxPolicy),
  refusing(p("tls_dane_digests", "list", "sha512 sha256", "Digests DANE TLSA records may use (matching types 2 and 1)", CLIENTS), refuseDaneDigests),
];
