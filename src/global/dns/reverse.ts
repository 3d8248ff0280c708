/**
 * The SMTP server's client names, by Postfix's rules: the reverse name is
 * what the PTR record says; the (verified) client name is that name only
 * when it resolves back to the client's address (forward-confirmed reverse
 * DNS), "unknown" otherwise. The statuses drive
 * reject_unknown_reverse_client_hostname (reverseNameStatus) and
 * reject_unknown_client_hostname (nameStatus): `temp` for a lookup that may
 * succeed later, `perm` when there is no usable PTR name, `forged` when the
 * PTR name does not lead back to the address.
 *
 * Distrusts the PTR data: a name that is not a valid host name, or that is
 * itself a numeric address, is not used. When several PTR records exist,
 * each (up to 8) is tried for confirmation, where Postfix takes the one the
 * system library returns. The address family of the forward check is the
 * client's (an IPv4-mapped IPv6 address counts as IPv4).
 */
import { formatIpAddress, parseIpAddress } from "../../util/net/cidr-match.ts";
import { reverseName as ptrName, unmapIpv4 } from "./names.ts";
import type { DnsFailure, DnsQuerier } from "./result.ts";
import { isTemporary } from "./result.ts";

export type NameStatus = "ok" | "temp" | "perm" | "forged";

export interface ClientNames {
  /** The forward-confirmed name, or "unknown". */
  name: string;
  nameStatus: NameStatus;
  /** The PTR name without confirmation, or "unknown". */
  reverseName: string;
  reverseNameStatus: NameStatus;
  /** A line for the log when the check failed in a way Postfix warns about. */
  warning?: string;
}

const MAX_PTR_NAMES = 8;
const UNKNOWN = "unknown";

/** A host name as Postfix's valid_hostname has it: LDH labels (underscore allowed) of 1-63, at most 255 in all, not all numeric. */
export function isValidHostname(name: string): boolean {
  if (name.length === 0 || name.length > 255) return false;
  const labels = name.split(".");
  for (const label of labels) {
    if (label.length === 0 || label.length > 63) return false;
    if (!/^[a-z0-9_-]+$/i.test(label) || label.startsWith("-") || label.endsWith("-")) return false;
  }
  return !labels.every((l) => /^\d+$/.test(l));
}

/** getaddrinfo's words for a failed forward lookup, as Postfix logs them. */
function forwardFailureText(f: DnsFailure): string {
  if (isTemporary(f)) return "Temporary failure in name resolution";
  if (f.status === "nodata") return "No address associated with hostname";
  return "Name or service not known";
}

export async function reverseLookup(dns: DnsQuerier, ip: string): Promise<ClientNames> {
  const parsed = parseIpAddress(ip);
  if (!parsed) return { name: UNKNOWN, nameStatus: "perm", reverseName: UNKNOWN, reverseNameStatus: "perm" };
  const addr = unmapIpv4(parsed);
  const addrText = formatIpAddress(addr);
  const ptr = await dns.query(ptrName(addrText)!, "PTR");
  if (ptr.status !== "ok") {
    const status: NameStatus = isTemporary(ptr) ? "temp" : "perm";
    return { name: UNKNOWN, nameStatus: status, reverseName: UNKNOWN, reverseNameStatus: status };
  }
  const names = ptr.records.map((r) => r.target).filter((n, i, all) => all.indexOf(n) === i);
  const first = names[0]!;
  if (parseIpAddress(first)) {
    return { name: UNKNOWN, nameStatus: "perm", reverseName: UNKNOWN, reverseNameStatus: "perm", warning: `numeric hostname: ${first}` };
  }
  const usable = names.filter((n) => isValidHostname(n) && !parseIpAddress(n)).slice(0, MAX_PTR_NAMES);
  if (usable.length === 0) return { name: UNKNOWN, nameStatus: "perm", reverseName: UNKNOWN, reverseNameStatus: "perm" };
  const reverseName = usable[0]!;
  const type = addr.family === 4 ? "A" : "AAAA";
  let temporary = false;
  let firstFailure: DnsFailure | undefined;
  for (const candidate of usable) {
    const forward = await dns.query(candidate, type);
    if (forward.status === "ok") {
      if (forward.records.some((r) => sameAddress(r.address, addr.family, addrText))) {
        return { name: candidate, nameStatus: "ok", reverseName, reverseNameStatus: "ok" };
      }
      continue;
    }
    if (isTemporary(forward)) temporary = true;
    if (candidate === reverseName) firstFailure = forward;
  }
  const nameStatus: NameStatus = temporary ? "temp" : "forged";
  const warning = firstFailure
    ? `hostname ${reverseName} does not resolve to address ${addrText}: ${forwardFailureText(firstFailure)}`
    : `hostname ${reverseName} does not resolve to address ${addrText}`;
  return { name: UNKNOWN, nameStatus, reverseName, reverseNameStatus: "ok", warning };
}

function sameAddress(text: string, family: 4 | 6, want: string): boolean {
  const a = parseIpAddress(text);
  return a !== undefined && a.family === family && formatIpAddress(a) === want;
}
