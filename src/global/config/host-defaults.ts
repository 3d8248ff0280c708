/**
 * Defaults that Postfix computes from the host: myhostname, mydomain,
 * mynetworks. Only local sources are read (gethostname, /etc/hosts, the
 * interface list); no DNS query leaves the machine to find a name.
 */
import { readFileSync } from "node:fs";
import { hostname, networkInterfaces } from "../../util/os-lazy.ts";

/** The host's fully-qualified name: gethostname, else a dotted alias in /etc/hosts, else NAME.localdomain. */
export function defaultHostname(): string {
  const name = hostname().toLowerCase();
  if (name.includes(".")) return name;
  try {
    for (const line of readFileSync("/etc/hosts", "utf8").split("\n")) {
      const words = line.replace(/#.*/, "").trim().split(/\s+/);
      if (words.length < 2 || !words.slice(1).includes(name)) continue;
      const fqdn = words.slice(1).find((w) => w.includes(".") && w.split(".")[0] === name);
      if (fqdn) return fqdn.toLowerCase();
    }
  } catch {
    // no /etc/hosts
  }
  return `${name}.localdomain`;
}

/** Postfix: the domain part of $myhostname, or "localdomain" when it has none. */
export function domainOf(myhostname: string): string {
  const dot = myhostname.indexOf(".");
  return dot > 0 && dot < myhostname.length - 1 ? myhostname.slice(dot + 1) : "localdomain";
}

function ipv4Network(address: string, prefix: number): string {
  const n = address.split(".").reduce((acc, o) => (acc << 8) | Number(o), 0) >>> 0;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const net = (n & mask) >>> 0;
  return `${[24, 16, 8, 0].map((s) => (net >>> s) & 255).join(".")}/${prefix}`;
}

function ipv6Network(address: string, prefix: number): string {
  const [head, tail = ""] = address.split("%")[0]!.split("::");
  const h = head ? head.split(":") : [];
  const tl = tail ? tail.split(":") : [];
  const groups = [...h, ...Array(8 - h.length - tl.length).fill("0"), ...tl].map((g) => parseInt(g || "0", 16));
  const out = groups.map((g, i) => {
    const bits = Math.max(0, Math.min(16, prefix - i * 16));
    return bits === 0 ? 0 : g & ((0xffff << (16 - bits)) & 0xffff);
  });
  // compress the longest run of zeros, as inet_ntop does
  let best = -1,
    bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (out[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && out[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = out.map((g) => g.toString(16));
  const text = best < 0 ? hex.join(":") : `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
  return `[${text}]/${prefix}`;
}

/** mynetworks for a mynetworks_style of host, subnet or class. */
export function defaultMynetworks(style: string): string {
  const nets: string[] = [];
  const add = (n: string) => {
    if (!nets.includes(n)) nets.push(n);
  };
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      const v4 = a.family === "IPv4";
      const full = v4 ? 32 : 128;
      let prefix = Number(a.cidr?.split("/")[1] ?? full);
      if (style === "host") prefix = full;
      else if (style === "class" && v4) {
        const first = Number(a.address.split(".")[0]);
        prefix = first < 128 ? 8 : first < 192 ? 16 : 24;
      }
      if (v4 && a.address.startsWith("127.") && style !== "host") prefix = 8;
      add(v4 ? ipv4Network(a.address, prefix) : ipv6Network(a.address, prefix));
    }
  }
  if (!nets.some((n) => n.startsWith("127."))) nets.unshift(style === "host" ? "127.0.0.1/32" : "127.0.0.0/8");
  // Postfix lists IPv4 networks first
  return [...nets.filter((n) => !n.startsWith("[")), ...nets.filter((n) => n.startsWith("["))].join(" ");
}
