/**
 * /etc/hosts, consulted before any packet is sent for A, AAAA and PTR
 * questions: names there (localhost and the host's own names above all)
 * and their addresses are answered locally. `localhost` and names under
 * `.localhost` never go to the network (RFC 6761 6.3): without an entry
 * they get 127.0.0.1 and ::1. A PTR question for a loopback address that
 * the file does not name is answered NXDOMAIN locally too.
 *
 * The file is re-read when its modification time changes, looked at no
 * more often than every few seconds. It is trusted as the administrator's;
 * malformed lines are skipped.
 */
import { stat, readFile } from "node:fs/promises";
import { formatIpAddress, parseIpAddress, type IpAddress } from "../../util/net/cidr-match.ts";
import { canonicalName } from "./names.ts";

export interface HostsTable {
  /** Addresses by canonical name, in file order. */
  byName: Map<string, { v4: string[]; v6: string[] }>;
  /** Names by address text (canonical form), the first being the one named first. */
  byAddress: Map<string, string[]>;
}

export function parseHosts(text: string): HostsTable {
  const byName: HostsTable["byName"] = new Map();
  const byAddress: HostsTable["byAddress"] = new Map();
  for (const raw of text.split("\n")) {
    const words = raw.replace(/#.*/, "").trim().split(/\s+/).filter(Boolean);
    if (words.length < 2) continue;
    const addr = parseIpAddress(words[0]!.split("%")[0]!);
    if (!addr) continue;
    const address = formatIpAddress(addr);
    for (const word of words.slice(1)) {
      const name = canonicalName(word);
      if (typeof name !== "string" || name === ".") continue;
      let entry = byName.get(name);
      if (!entry) byName.set(name, (entry = { v4: [], v6: [] }));
      const list = addr.family === 4 ? entry.v4 : entry.v6;
      if (!list.includes(address)) list.push(address);
      let names = byAddress.get(address);
      if (!names) byAddress.set(address, (names = []));
      if (!names.includes(name)) names.push(name);
    }
  }
  return { byName, byAddress };
}

export function isLocalhostName(name: string): boolean {
  return name === "localhost" || name.endsWith(".localhost");
}

export function isLoopback(addr: IpAddress): boolean {
  if (addr.family === 4) return addr.bytes[0] === 127;
  return addr.bytes.every((b, i) => (i === 15 ? b === 1 : b === 0));
}

/** What the hosts file says for a question: addresses, names, "none" (answered: no such data), or undefined (ask DNS). */
export type HostsAnswer = { addresses: string[] } | { names: string[] } | { none: "nxdomain" | "nodata" } | undefined;

export class HostsFile {
  #table: HostsTable = { byName: new Map(), byAddress: new Map() };
  #mtime = -1;
  #checkedAt = -Infinity;
  #loading: Promise<void> | undefined;

  /** `path` null: no file, only the built-in localhost rules. */
  constructor(
    readonly path: string | null = "/etc/hosts",
    readonly recheckMs = 5000,
    readonly now: () => number = Date.now,
  ) {}

  async #refresh(): Promise<void> {
    if (this.path === null) return;
    if (this.now() - this.#checkedAt < this.recheckMs) return;
    this.#loading ??= (async () => {
      try {
        const st = await stat(this.path!);
        if (st.mtimeMs !== this.#mtime) {
          this.#table = parseHosts(await readFile(this.path!, "utf8"));
          this.#mtime = st.mtimeMs;
        }
      } catch {
        this.#table = { byName: new Map(), byAddress: new Map() };
        this.#mtime = -1;
      }
      this.#checkedAt = this.now();
    })().finally(() => (this.#loading = undefined));
    await this.#loading;
  }

  /** Addresses of `family` for a canonical name. */
  async addresses(name: string, family: 4 | 6): Promise<HostsAnswer> {
    await this.#refresh();
    const entry = this.#table.byName.get(name);
    const list = entry ? (family === 4 ? entry.v4 : entry.v6) : undefined;
    if (list && list.length > 0) return { addresses: [...list] };
    if (isLocalhostName(name)) {
      if (entry) return { none: "nodata" };
      return { addresses: [family === 4 ? "127.0.0.1" : "::1"] };
    }
    return undefined;
  }

  /** The canonical name for an address. */
  async names(addr: IpAddress): Promise<HostsAnswer> {
    await this.#refresh();
    const names = this.#table.byAddress.get(formatIpAddress(addr));
    // the first name for the address, as gethostbyaddr gives it; the others are aliases
    if (names && names.length > 0) return { names: [names[0]!] };
    if (isLoopback(addr)) return isLoopbackDefault(addr) ? { names: ["localhost"] } : { none: "nxdomain" };
    return undefined;
  }
}

function isLoopbackDefault(addr: IpAddress): boolean {
  const text = formatIpAddress(addr);
  return text === "127.0.0.1" || text === "::1";
}
