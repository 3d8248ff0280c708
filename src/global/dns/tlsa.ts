/**
 * TLSA records for DANE (RFC 6698, RFC 7672): `_PORT._PROTO.HOST`. The
 * result says whether the recursive resolver vouched for the answer (the AD
 * bit); DANE must only use authenticated TLSA records, and that policy, the
 * CNAME rules of RFC 7672 2.2.3 and the matching of certificates are the
 * SMTP client's.
 */
import type { RecordOf } from "./records.ts";
import type { DnsQuerier, DnsResult } from "./result.ts";

export function tlsaName(port: number, host: string, protocol = "tcp"): string {
  return `_${port}._${protocol}.${host.replace(/\.$/, "")}`;
}

export function lookupTlsa(dns: DnsQuerier, port: number, host: string, protocol = "tcp"): Promise<DnsResult<RecordOf<"TLSA">>> {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    return Promise.resolve({ status: "badname", message: `Bad port number "${port}"` });
  }
  return dns.query(tlsaName(port, host, protocol), "TLSA");
}
