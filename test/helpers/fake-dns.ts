/**
 * A fake recursive DNS server for tests: a declarative zone served on
 * 127.0.0.1 over UDP and TCP (same ephemeral port), recording every query.
 * Nothing it does reaches beyond the loopback interface.
 *
 * ## Starting one
 *
 *     import { startFakeDns, useFakeDns } from "../helpers/fake-dns.ts";
 *
 *     // inside a test: stopped automatically when that test ends
 *     const dns = await startFakeDns({
 *       "example.com": { MX: [[10, "mx1.example.com"], [20, "mx2.example.com"]], TXT: ["v=spf1 -all"] },
 *       "mx1.example.com": { A: ["127.0.0.1"], AAAA: ["::1"] },
 *       "broken.example": { rcode: "SERVFAIL" },
 *     });
 *
 *     // for a whole file or describe block: started in beforeAll, stopped in afterAll
 *     const dns = useFakeDns({ "example.com": { A: ["192.0.2.1"] } });
 *     test("...", () => { dns.server; ... });
 *
 * Do not call startFakeDns inside beforeAll (bun runs an afterAll registered
 * there right after the beforeAll): use useFakeDns, or `autoStop: false`
 * and stop it yourself. Its sockets are unref'ed, so a forgotten server
 * never keeps the test process alive.
 *
 * ## The handle
 *
 * - `server`: "127.0.0.1:PORT", the value for postern's dns_servers;
 *   `port`, `address`; `config({ timeout, attempts })`: postern.toml lines
 *   (dns_servers, dns_timeout, dns_attempts) pointing postern at it.
 * - `resolverOptions(extra)`: options for `new Resolver(...)` in unit tests
 *   (this server, no hosts file, 1 attempt, a short timeout).
 * - `queries`: every question received, in order: `{ name, type, transport
 *   ("udp" | "tcp"), edns, id, sourcePort }`; `type` is the name ("MX") or the number
 *   as text. `queriesFor(name, type?)` filters them; `clearQueries()`.
 * - `set(name, entry)`, `remove(name)`: change the zone while running.
 * - `stop()`: closes both sockets (idempotent).
 *
 * ## Zone entries
 *
 * Keys are owner names (any case, trailing dot optional; `*.zone` is a
 * wildcard for names below zone that have no entry of their own). Fields:
 *
 * - `A`, `AAAA`, `NS`, `PTR`: string arrays; `CNAME`: a string.
 * - `MX`: `[preference, exchange]` pairs (`[[0, "."]]` is a null MX).
 * - `TXT`: each element a record: a string (split into 255-byte
 *   character-strings when longer) or an array of the strings as published.
 * - `TLSA`: `[usage, selector, matchingType, "hex data"]`.
 * - `SOA`: `[mname, rname, serial, refresh, retry, expire, minimum]`.
 * - `ttl`: TTL of this name's records (default: the server's `ttl`, 300).
 * - Faults: `rcode` ("SERVFAIL", "REFUSED", "FORMERR", "NOTIMP",
 *   "NXDOMAIN" or a number) answered instead of the data; `drop: true`
 *   (never answer: the client times out); `delayMs` (answer late);
 *   `truncate: true` (UDP answers carry TC=1 and no records, so the client
 *   must retry over TCP); `faultTypes: ["AAAA"]` limits these to some types.
 *   `authenticated: true` sets the AD bit on answers for the name.
 *
 * A name with no entry, and no entry below it, is NXDOMAIN; a name that
 * exists without records of the asked type is NODATA. Negative answers carry
 * an SOA (TTL and minimum: `negativeTtl`, default 60) unless the option
 * `negativeSoa` is false. CNAMEs are followed inside the zone, as a recursive
 * server does. UDP answers larger than the query's EDNS payload size (512
 * without EDNS) are truncated.
 *
 * Options (second argument): `ttl`, `negativeTtl`, `negativeSoa`,
 * `noEdns` (answer FORMERR without OPT to EDNS queries, as an old server),
 * `respond(query, transport)` (a raw hook: return bytes to send instead of
 * the zone's answer, null to send nothing, undefined to answer normally),
 * `autoStop` (default true).
 */
import { afterAll, beforeAll } from "bun:test";
import dgram from "node:dgram";
import { createServer, type Server, type Socket } from "node:net";
import { canonicalName } from "../../src/global/dns/names.ts";
import { RCODE, rrtypeName, type DnsRecord, type RRType } from "../../src/global/dns/records.ts";
import type { ResolverOptions } from "../../src/global/dns/resolver.ts";
import { decodeMessage, encodeMessage, type DnsMessage, type MessageSpec } from "../../src/global/dns/wire.ts";

export interface ZoneEntry {
  A?: string[];
  AAAA?: string[];
  NS?: string[];
  PTR?: string[];
  CNAME?: string;
  MX?: [number, string][];
  TXT?: (string | string[])[];
  TLSA?: [number, number, number, string][];
  SOA?: [string, string, number, number, number, number, number];
  ttl?: number;
  rcode?: keyof typeof RCODE | number;
  drop?: boolean;
  delayMs?: number;
  truncate?: boolean;
  faultTypes?: RRType[];
  authenticated?: boolean;
}

export type Zone = Record<string, ZoneEntry>;

export interface FakeDnsOptions {
  ttl?: number;
  negativeTtl?: number;
  negativeSoa?: boolean;
  noEdns?: boolean;
  respond?: (query: Uint8Array, transport: "udp" | "tcp") => Uint8Array | null | undefined;
  autoStop?: boolean;
}

export interface ReceivedQuery {
  name: string;
  type: string;
  transport: "udp" | "tcp";
  edns: boolean;
  id: number;
  /** The client's source port. */
  sourcePort: number;
}

export interface FakeDns {
  readonly address: string;
  readonly port: number;
  readonly server: string;
  readonly queries: ReceivedQuery[];
  queriesFor(name: string, type?: string): ReceivedQuery[];
  clearQueries(): void;
  set(name: string, entry: ZoneEntry): void;
  remove(name: string): void;
  config(opts?: { timeout?: string; attempts?: number }): string;
  resolverOptions(extra?: Partial<ResolverOptions>): ResolverOptions;
  stop(): Promise<void>;
}

function canon(name: string): string {
  const c = canonicalName(name);
  if (typeof c !== "string") throw new Error(`Fake DNS: bad name "${name}": ${c.problem}`);
  return c;
}

/** A TXT string as character-strings of at most 255 bytes. */
function splitTxt(text: string): string[] {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= 255) return [text];
  const out: string[] = [];
  for (let i = 0; i < bytes.length; i += 255) out.push(new TextDecoder().decode(bytes.subarray(i, i + 255)));
  return out;
}

function hexBytes(hex: string): Uint8Array {
  const clean = hex.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function recordsOf(name: string, entry: ZoneEntry, type: RRType, ttl: number): DnsRecord[] {
  switch (type) {
    case "A":
      return (entry.A ?? []).map((address) => ({ type, name, ttl, address }));
    case "AAAA":
      return (entry.AAAA ?? []).map((address) => ({ type, name, ttl, address }));
    case "NS":
      return (entry.NS ?? []).map((target) => ({ type, name, ttl, target: canon(target) }));
    case "PTR":
      return (entry.PTR ?? []).map((target) => ({ type, name, ttl, target: canon(target) }));
    case "CNAME":
      return entry.CNAME ? [{ type, name, ttl, target: canon(entry.CNAME) }] : [];
    case "MX":
      return (entry.MX ?? []).map(([preference, exchange]) => ({ type, name, ttl, preference, exchange: canon(exchange) }));
    case "TXT":
      return (entry.TXT ?? []).map((t) => ({ type, name, ttl, strings: Array.isArray(t) ? t : splitTxt(t) }));
    case "TLSA":
      return (entry.TLSA ?? []).map(([usage, selector, matchingType, hex]) => ({ type, name, ttl, usage, selector, matchingType, data: hexBytes(hex) }));
    case "SOA":
      if (!entry.SOA) return [];
      {
        const [mname, rname, serial, refresh, retry, expire, minimum] = entry.SOA;
        return [{ type, name, ttl, mname: canon(mname), rname: canon(rname), serial, refresh, retry, expire, minimum }];
      }
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class FakeDnsServer implements FakeDns {
  readonly address = "127.0.0.1";
  port = 0;
  readonly queries: ReceivedQuery[] = [];
  readonly #zone = new Map<string, ZoneEntry>();
  #udp: dgram.Socket | undefined;
  #tcp: Server | undefined;
  readonly #connections = new Set<Socket>();
  #stopped: Promise<void> | undefined;

  constructor(
    zone: Zone,
    readonly options: FakeDnsOptions,
  ) {
    for (const [name, entry] of Object.entries(zone)) this.#zone.set(canon(name), entry);
  }

  get server(): string {
    return `${this.address}:${this.port}`;
  }

  queriesFor(name: string, type?: string): ReceivedQuery[] {
    const n = canon(name);
    return this.queries.filter((q) => q.name === n && (type === undefined || q.type === type));
  }

  clearQueries(): void {
    this.queries.length = 0;
  }

  set(name: string, entry: ZoneEntry): void {
    this.#zone.set(canon(name), entry);
  }

  remove(name: string): void {
    this.#zone.delete(canon(name));
  }

  config(opts: { timeout?: string; attempts?: number } = {}): string {
    return `dns_servers = "${this.server}"\ndns_timeout = "${opts.timeout ?? "1s"}"\ndns_attempts = ${opts.attempts ?? 1}\n`;
  }

  resolverOptions(extra: Partial<ResolverOptions> = {}): ResolverOptions {
    return { servers: [{ address: this.address, port: this.port, family: 4 }], timeoutMs: 500, attempts: 1, hostsFile: null, ...extra };
  }

  async start(): Promise<void> {
    for (let tries = 0; ; tries++) {
      const udp = dgram.createSocket("udp4");
      await new Promise<void>((resolve, reject) => {
        udp.once("error", reject);
        udp.bind(0, this.address, () => resolve());
      });
      const port = udp.address().port;
      const tcp = createServer((socket) => this.#serveTcp(socket));
      const ok = await new Promise<boolean>((resolve) => {
        tcp.once("error", () => resolve(false));
        tcp.listen(port, this.address, () => resolve(true));
      });
      if (!ok) {
        udp.close();
        if (tries < 20) continue;
        throw new Error("Fake DNS: no port free for both UDP and TCP");
      }
      udp.on("message", (data, rinfo) => void this.#serveUdp(new Uint8Array(data), rinfo.address, rinfo.port));
      udp.unref();
      tcp.unref();
      this.#udp = udp;
      this.#tcp = tcp;
      this.port = port;
      return;
    }
  }

  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      for (const c of this.#connections) c.destroy();
      await Promise.all([
        new Promise<void>((r) => (this.#udp ? this.#udp.close(() => r()) : r())),
        new Promise<void>((r) => (this.#tcp ? this.#tcp.close(() => r()) : r())),
      ]);
    })();
    return this.#stopped;
  }

  async #serveUdp(packet: Uint8Array, address: string, port: number): Promise<void> {
    const reply = await this.#answer(packet, "udp", port);
    if (!reply || this.#stopped) return;
    this.#udp?.send(reply, port, address);
  }

  #serveTcp(socket: Socket): void {
    this.#connections.add(socket);
    socket.on("close", () => this.#connections.delete(socket));
    socket.on("error", () => socket.destroy());
    let buffered = new Uint8Array(0);
    socket.on("data", async (chunk: Buffer) => {
      const next = new Uint8Array(buffered.length + chunk.length);
      next.set(buffered);
      next.set(chunk, buffered.length);
      buffered = next;
      while (buffered.length >= 2) {
        const length = (buffered[0]! << 8) | buffered[1]!;
        if (buffered.length < length + 2) return;
        const packet = buffered.slice(2, 2 + length);
        buffered = buffered.slice(2 + length);
        const reply = await this.#answer(packet, "tcp", socket.remotePort ?? 0);
        if (!reply || socket.destroyed) continue;
        const framed = new Uint8Array(reply.length + 2);
        framed[0] = reply.length >> 8;
        framed[1] = reply.length & 0xff;
        framed.set(reply, 2);
        socket.write(framed);
      }
    });
  }

  /** The entry for a name: its own, else the closest wildcard above it. */
  #entry(name: string): ZoneEntry | undefined {
    const own = this.#zone.get(name);
    if (own) return own;
    const labels = name.split(".");
    for (let i = 1; i < labels.length; i++) {
      const wild = this.#zone.get(`*.${labels.slice(i).join(".")}`);
      if (wild) return wild;
    }
    return undefined;
  }

  #exists(name: string): boolean {
    if (this.#entry(name)) return true;
    for (const key of this.#zone.keys()) if (key.endsWith(`.${name}`)) return true;
    return false;
  }

  #negativeSoa(name: string): DnsRecord[] {
    if (this.options.negativeSoa === false) return [];
    const labels = name.split(".");
    const zone = labels.length > 2 ? labels.slice(-2).join(".") : name;
    const n = this.options.negativeTtl ?? 60;
    return [{ type: "SOA", name: zone, ttl: n, mname: "ns.fake-dns.test", rname: "hostmaster.fake-dns.test", serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: n }];
  }

  async #answer(packet: Uint8Array, transport: "udp" | "tcp", sourcePort: number): Promise<Uint8Array | null> {
    let query: DnsMessage;
    try {
      query = decodeMessage(packet);
    } catch {
      return null;
    }
    const q = query.questions[0];
    if (query.qr || !q) return null;
    const typeName = rrtypeName(q.type);
    this.queries.push({ name: q.name, type: typeName ?? String(q.type), transport, edns: !!query.edns, id: query.id, sourcePort });
    if (this.options.respond) {
      const raw = this.options.respond(packet, transport);
      if (raw !== undefined) return raw;
    }
    const reply: MessageSpec = { id: query.id, qr: true, rd: query.rd, ra: true, questions: [q], answers: [], authorities: [] };
    if (this.options.noEdns && query.edns) return encodeMessage({ ...reply, rcode: RCODE.FORMERR });
    if (query.edns) reply.edns = { payloadSize: 1232, version: 0, dnssecOk: false };
    const entry = this.#entry(q.name);
    const faulty = entry && (!entry.faultTypes || (typeName !== undefined && entry.faultTypes.includes(typeName)));
    if (entry && faulty) {
      if (entry.drop) return null;
      if (entry.delayMs) await sleep(entry.delayMs);
      if (entry.rcode !== undefined) {
        const rcode = typeof entry.rcode === "number" ? entry.rcode : RCODE[entry.rcode];
        return encodeMessage({ ...reply, rcode, ...(rcode === RCODE.NXDOMAIN ? { authorities: this.#negativeSoa(q.name) } : {}) });
      }
    }
    if (!typeName) return encodeMessage({ ...reply, rcode: RCODE.NOTIMP });
    // answer, following CNAMEs inside the zone
    let name = q.name;
    let authenticated = false;
    for (let hop = 0; hop < 8; hop++) {
      const e = this.#entry(name);
      if (!e) {
        if (!this.#exists(name)) {
          reply.rcode = RCODE.NXDOMAIN;
          reply.authorities = this.#negativeSoa(name);
        }
        break;
      }
      authenticated ||= !!e.authenticated;
      const ttl = e.ttl ?? this.options.ttl ?? 300;
      const records = recordsOf(name, e, typeName, ttl);
      if (records.length > 0) {
        reply.answers!.push(...records);
        break;
      }
      if (e.CNAME && typeName !== "CNAME") {
        reply.answers!.push(...recordsOf(name, e, "CNAME", ttl));
        name = canon(e.CNAME);
        continue;
      }
      break;
    }
    if (reply.answers!.length === 0 && reply.rcode === undefined) reply.authorities = this.#negativeSoa(name);
    reply.ad = authenticated;
    const full = encodeMessage(reply);
    const limit = query.edns ? Math.max(512, query.edns.payloadSize) : 512;
    const forceTc = transport === "udp" && entry?.truncate && faulty;
    if (transport === "udp" && (forceTc || full.length > limit)) {
      return encodeMessage({ ...reply, tc: true, answers: [], authorities: [] });
    }
    return full;
  }
}

/** Starts a fake server; unless `autoStop` is false it stops after the current test (or describe block). */
export async function startFakeDns(zone: Zone, options: FakeDnsOptions = {}): Promise<FakeDns> {
  const server = new FakeDnsServer(zone, options);
  await server.start();
  if (options.autoStop !== false) afterAll(() => server.stop());
  return server;
}

/** A fake server for every test of the enclosing file or describe block (started in beforeAll). */
export function useFakeDns(zone: Zone, options: FakeDnsOptions = {}): FakeDns {
  let server: FakeDnsServer | undefined;
  beforeAll(async () => {
    server = new FakeDnsServer(zone, options);
    await server.start();
  });
  afterAll(() => server?.stop());
  const live = (): FakeDnsServer => {
    if (!server) throw new Error("Fake DNS: used before beforeAll started it");
    return server;
  };
  return {
    get address() {
      return live().address;
    },
    get port() {
      return live().port;
    },
    get server() {
      return live().server;
    },
    get queries() {
      return live().queries;
    },
    queriesFor: (name, type) => live().queriesFor(name, type),
    clearQueries: () => live().clearQueries(),
    set: (name, entry) => live().set(name, entry),
    remove: (name) => live().remove(name),
    config: (opts) => live().config(opts),
    resolverOptions: (extra) => live().resolverOptions(extra),
    stop: () => live().stop(),
  };
}


