/**
 * IPv4 and IPv6 addresses and networks as Postfix's cidr: tables (and
 * mynetworks-style lists) read them: an address is four decimal octets
 * without leading zeros, or IPv6 text (::, embedded IPv4 tail, any case);
 * a network is `address/prefix` with no bits set beyond the prefix;
 * `[address]` brackets are accepted in patterns. An IPv6 address never
 * matches an IPv4 network (::ffff:1.2.3.4 is IPv6 here, as in Postfix).
 *
 * Input is untrusted text; parsers return undefined (or a complaint)
 * instead of throwing.
 */

export interface IpAddress {
  family: 4 | 6;
  bytes: Uint8Array;
}

export interface IpNetwork extends IpAddress {
  prefix: number;
}

const V4_OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => V4_OCTET.test(p))) return undefined;
  return Uint8Array.from(parts.map(Number));
}

export function parseIPv6(text: string): Uint8Array | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const words = (s: string): number[] | undefined => {
    if (s === "") return [];
    const out: number[] = [];
    const groups = s.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (i === groups.length - 1 && g.includes(".")) {
        const v4 = parseIPv4(g);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(g)) out.push(parseInt(g, 16));
      else return undefined;
    }
    return out;
  };
  const head = words(halves[0]!);
  const tail = halves.length === 2 ? words(halves[1]!) : [];
  if (!head || !tail) return undefined;
  let all: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else all = head;
  if (all.length !== 8) return undefined;
  const bytes = new Uint8Array(16);
  all.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  });
  return bytes;
}

export function parseIpAddress(text: string): IpAddress | undefined {
  if (text.includes(":")) {
    const b = parseIPv6(text);
    return b ? { family: 6, bytes: b } : undefined;
  }
  const b = parseIPv4(text);
  return b ? { family: 4, bytes: b } : undefined;
}

export function formatIpAddress(a: IpAddress): string {
  if (a.family === 4) return [...a.bytes].join(".");
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((a.bytes[i]! << 8) | a.bytes[i + 1]!);
  // compress the longest run of two or more zero words
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(":");
  if (best < 0) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
}

/** Parses `address`, `address/prefix`, `[address]` or `[address]/prefix`, or says what is wrong (Postfix's words). */
export function parseNetwork(text: string): IpNetwork | { problem: string } {
  const m = /^(?:\[([^\]]*)\]|([^/]*))(?:\/(.*))?$/.exec(text);
  const addrText = m ? (m[1] ?? m[2]!) : text;
  const addr = m ? parseIpAddress(addrText) : undefined;
  if (!addr) return { problem: `bad address pattern: "${text}"` };
  const bits = addr.family === 4 ? 32 : 128;
  let prefix = bits;
  if (m![3] !== undefined) {
    if (!/^\d{1,3}$/.test(m![3]) || Number(m![3]) > bits) return { problem: `bad mask length in "${text}"` };
    prefix = Number(m![3]);
  }
  const net = { ...addr, prefix };
  const masked = maskAddress(addr.bytes, prefix);
  if (!masked.every((b, i) => b === addr.bytes[i])) {
    const suggestion = formatIpAddress({ family: addr.family, bytes: masked });
    return { problem: `non-null host address bits in "${text}", perhaps you should use "${suggestion}/${prefix}" instead` };
  }
  return net;
}

function maskAddress(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - 8 * i));
    out[i] = bytes[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

export function networkContains(net: IpNetwork, addr: IpAddress): boolean {
  if (net.family !== addr.family) return false;
  const full = net.prefix >> 3;
  for (let i = 0; i < full; i++) if (net.bytes[i] !== addr.bytes[i]) return false;
  const rest = net.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (net.bytes[full]! & mask) === (addr.bytes[full]! & mask);
}
