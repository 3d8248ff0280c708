/** DNS: postern's own resolver (postern-only names) and Postfix's host lookup switches. */
import { p, t, type ParamDef } from "../param-def.ts";

const ALL = ["all"];
const CLIENTS = ["smtp", "lmtp"];

export const dnsParams: ParamDef[] = [
  p("dns_servers", "list", "", "postern: name servers (IP or IP:port) used instead of /etc/resolv.conf's", ALL),
  t("dns_timeout", "s", "0s", "postern: time to wait for one name server's answer; 0 takes resolv.conf's timeout", ALL),
  p("dns_attempts", "int", "0", "postern: rounds over the name servers; 0 takes resolv.conf's attempts", ALL),
  p("dns_cache_size", "int", "10000", "postern: DNS answers cached per process (by their TTLs); 0 turns the cache off", ALL),
  p("disable_dns_lookups", "bool", "no", "Disable DNS lookups in the SMTP and LMTP clients (use the system's host lookups)", CLIENTS),
  p("smtp_host_lookup", "list", "dns", "How the SMTP client looks up host addresses: dns, native, or both in order", ["smtp"]),
  p("lmtp_host_lookup", "list", "dns", "How the LMTP client looks up host addresses: dns, native, or both in order", ["lmtp"]),
];
