/**
 * Domain names between text and wire labels, and the reverse-lookup names
 * of IP addresses (in-addr.arpa, ip6.arpa).
 *
 * Text form: labels separated by dots, an optional trailing dot, `\.`,
 * `\\` and `\DDD` escapes for bytes that are not plain (as dig prints them).
 * Names are compared and cached in lower case; a name that does not fit
 * the wire limits (labels of 1-63 bytes, 255 bytes in all) is refused with a
 * reason instead of an exception.
 */
import { parseIpAddress, type IpAddress } from "../../util/net/cidr-match.ts";

export const MAX_LABEL = 63;
export const MAX_NAME_WIRE = 255;

/** Wire labels of a text name, or what is wrong with it. The root is [] ("." or ""). */
export function nameToLabels(text: string): Uint8Array[] | { problem: string } {
  if (text === "." || text === "") return [];
  const labels: Uint8Array[] = [];
  let current: number[] = [];
  let wire = 1;
  const close = (): string | undefined => {
    if (current.length === 0) return `empty label in domain name "${text}"`;
    if (current.length > MAX_LABEL) return `label longer than ${MAX_LABEL} bytes in domain name "${text}"`;
    wire += current.length + 1;
    labels.push(Uint8Array.from(current));
    current = [];
    return undefined;
  };
  const bytes = new TextEncoder().encode(text);
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x2e) {
      const problem = close();
      if (problem) return { problem };
      continue;
    }
    if (b === 0x5c) {
      // the digits are read from the bytes: character and byte offsets differ in a UTF-8 name
      const digits = String.fromCharCode(...bytes.subarray(i + 1, i + 4));
      if (/^\d{3}$/.test(digits)) {
        const v = Number(digits);
        if (v > 255) return { problem: `bad escape "\\${digits}" in domain name "${text}"` };
        current.push(v);
        i += 3;
        continue;
      }
      if (i + 1 >= bytes.length) return { problem: `trailing backslash in domain name "${text}"` };
      current.push(bytes[++i]!);
      continue;
    }
    current.push(b);
  }
  if (current.length > 0) {
    const problem = close();
    if (problem) return { problem };
  }
  if (wire > MAX_NAME_WIRE) return { problem: `domain name longer than ${MAX_NAME_WIRE} bytes: "${text}"` };
  return labels;
}

/** A wire label as text: lower case, dots, backslashes and unprintable bytes escaped. */
export function labelToText(label: Uint8Array): string {
  let out = "";
  for (const b of label) {
    if (b === 0x2e || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b >= 0x41 && b <= 0x5a) out += String.fromCharCode(b + 32);
    else if (b > 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\${String(b).padStart(3, "0")}`;
  }
  return out;
}

/** The text of labels ("." for the root). */
export function labelsToText(labels: readonly Uint8Array[]): string {
  return labels.length === 0 ? "." : labels.map(labelToText).join(".");
}

/** The canonical text of a name (lower case, no trailing dot, escapes normalized), or what is wrong with it. */
export function canonicalName(text: string): string | { problem: string } {
  const labels = nameToLabels(text);
  return Array.isArray(labels) ? labelsToText(labels) : labels;
}

/** Name equality as DNS has it: case-insensitive, trailing dot optional. */
export function sameName(a: string, b: string): boolean {
  const ca = canonicalName(a);
  const cb = canonicalName(b);
  return typeof ca === "string" && typeof cb === "string" && ca === cb;
}

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it carries. */
export function unmapIpv4(addr: IpAddress): IpAddress {
  if (addr.family !== 6) return addr;
  const b = addr.bytes;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return addr;
  if (b[10] !== 0xff || b[11] !== 0xff) return addr;
  return { family: 4, bytes: b.slice(12) };
}

/** The name a PTR (or a DNSBL) query uses for an address, without the zone: "4.3.2.1" or 32 nibbles. */
export function reversedAddressLabels(addr: IpAddress): string {
  if (addr.family === 4) return [...addr.bytes].reverse().join(".");
  const nibbles: string[] = [];
  for (const byte of addr.bytes) nibbles.push((byte >> 4).toString(16), (byte & 15).toString(16));
  return nibbles.reverse().join(".");
}

/** The PTR query name of an IP address text, e.g. "1.0.0.127.in-addr.arpa"; undefined when it is not an address. */
export function reverseName(ip: string): string | undefined {
  const parsed = parseIpAddress(ip);
  if (!parsed) return undefined;
  const addr = unmapIpv4(parsed);
  return `${reversedAddressLabels(addr)}.${addr.family === 4 ? "in-addr.arpa" : "ip6.arpa"}`;
}

/** The address a full in-addr.arpa or ip6.arpa name stands for (for /etc/hosts answers to PTR queries). */
export function addressOfReverseName(name: string): IpAddress | undefined {
  const n = name.toLowerCase().replace(/\.$/, "");
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa$/.exec(n);
  if (v4) {
    const text = [v4[4], v4[3], v4[2], v4[1]].join(".");
    return parseIpAddress(text);
  }
  const v6 = /^((?:[0-9a-f]\.){32})ip6\.arpa$/.exec(n);
  if (v6) {
    const nibbles = v6[1]!.split(".").filter(Boolean).reverse();
    const bytes = new Uint8Array(16);
    for (let i = 0; i < 16; i++) bytes[i] = (parseInt(nibbles[2 * i]!, 16) << 4) | parseInt(nibbles[2 * i + 1]!, 16);
    return { family: 6, bytes };
  }
  return undefined;
}
