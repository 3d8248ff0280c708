/**
 * postern's stub resolver: asks the configured recursive name servers (from
 * /etc/resolv.conf, or dns_servers), over UDP with EDNS0, falling back to
 * TCP when an answer is truncated, and to a plain query when a server does
 * not speak EDNS. Each server is tried in turn for each of `attempts`
 * rounds, waiting `timeout` for each; a SERVFAIL or REFUSED moves on to the
 * next server, as the C library does. /etc/hosts answers A, AAAA and PTR
 * questions first. Answers are cached by their TTLs (negative ones by the
 * SOA, RFC 2308), and identical questions asked while one is in flight
 * share its packets.
 *
 * Every role that looks names up uses one Resolver (smtpd for client names
 * and DNSBLs, the SMTP client for MX and addresses, mail authentication
 * through mailauth-resolver.ts). Runs as mail_owner; it trusts nothing the
 * network sends (see wire.ts and transport.ts): a CNAME chain is followed
 * only inside the answer, at most 16 links, and records whose owner is not
 * on the chain are ignored.
 *
 * Limits: no DNSSEC validation of its own (the AD bit of a trusted local
 * resolver is passed on); a CNAME whose target the server did not include is
 * not chased with a second query.
 */
import { HostsFile } from "./hosts-file.ts";
import { addressOfReverseName, canonicalName } from "./names.ts";
import { RCODE, RRTYPES, type DnsRecord, type RecordOf, type RRType } from "./records.ts";
import type { NameServer } from "./resolv-conf.ts";
import { TtlCache } from "./cache.ts";
import { exchangeTcp, exchangeUdp, type Exchange, type ExchangeRequest } from "./transport.ts";
import { EDNS_PAYLOAD_SIZE, encodeQuery, type DnsMessage } from "./wire.ts";
import type { DnsFailure, DnsOk, DnsQuerier, DnsResult, QueryOptions } from "./result.ts";
import { lookupMx, type MxResult } from "./mx.ts";
import { lookupAddresses, type AddressFamily, type AddressResult } from "./addresses.ts";
import { reverseLookup, type ClientNames } from "./reverse.ts";
import { rblLookup, rhsblLookup, type DnsblResult } from "./dnsbl.ts";
import { lookupTlsa } from "./tlsa.ts";

export interface ResolverOptions {
  servers: NameServer[];
  /** Wait for one server's answer (default 5000 ms, resolv.conf's default). */
  timeoutMs?: number;
  /** Rounds over the servers (default 2). */
  attempts?: number;
  search?: string[];
  ndots?: number;
  /** Answers kept (default 10000); 0 turns the cache off. */
  cacheSize?: number;
  /** Cap on how long a positive answer is kept, seconds (default one day). */
  maxTtl?: number;
  /** Cap on how long a negative answer is kept, seconds (default 3 hours, RFC 2308 5). */
  maxNegativeTtl?: number;
  /** The hosts file; null uses only the built-in localhost rules (default /etc/hosts). */
  hostsFile?: string | null;
  /** EDNS0 UDP payload size offered (default 1232); 0 sends plain queries. */
  ednsPayloadSize?: number;
  /** Clock in ms (tests). */
  now?: () => number;
  /** Random source in [0, 1) for MX ordering (tests). Query IDs always come from the CSPRNG. */
  random?: () => number;
}

const MAX_CNAME_CHAIN = 16;

/** A validating resolver's AD bit on a negative answer (secure denial of existence) is kept as `authenticated`. */
type Negative = { status: "nxdomain"; authenticated?: boolean } | { status: "nodata"; authenticated?: boolean };
type Cached = { ok: DnsOk<DnsRecord> } | { negative: Negative };

function randomId(): number {
  return crypto.getRandomValues(new Uint16Array(1))[0]!;
}

function rcodeFailure(rcode: number): DnsFailure {
  switch (rcode) {
    case RCODE.SERVFAIL:
      return { status: "servfail" };
    case RCODE.REFUSED:
      return { status: "refused" };
    case RCODE.FORMERR:
      return { status: "formerr" };
    default:
      return { status: "rcode", rcode };
  }
}

function isSubdomain(name: string, zone: string): boolean {
  return zone === "." || name === zone || name.endsWith(`.${zone}`);
}

/** Reads an answer for `name`/`type`: the records at the end of the CNAME chain, or NXDOMAIN/NODATA with a negative TTL. */
export function interpretAnswer(
  message: DnsMessage,
  name: string,
  type: RRType,
): { ok: DnsOk<DnsRecord> } | { negative: Negative; negativeTtl?: number } {
  let current = name;
  let ttl = Infinity;
  const seen = new Set([name]);
  for (let hop = 0; hop <= MAX_CNAME_CHAIN; hop++) {
    const records = message.answers.filter((r) => r.type === type && r.name === current);
    if (records.length > 0) {
      for (const r of records) ttl = Math.min(ttl, r.ttl);
      return { ok: { status: "ok", records, canonicalName: current, ttl, authenticated: message.ad, source: "dns" } };
    }
    if (type === "CNAME") break;
    const cname = message.answers.find((r): r is RecordOf<"CNAME"> => r.type === "CNAME" && r.name === current);
    if (!cname || seen.has(cname.target)) break;
    seen.add(cname.target);
    ttl = Math.min(ttl, cname.ttl);
    current = cname.target;
  }
  const secure = message.ad ? { authenticated: true } : {};
  const negative: Negative = message.rcode === RCODE.NXDOMAIN ? { status: "nxdomain", ...secure } : { status: "nodata", ...secure };
  const soa = message.authorities.find((r): r is RecordOf<"SOA"> => r.type === "SOA" && isSubdomain(current, r.name));
  return soa ? { negative, negativeTtl: Math.min(soa.ttl, soa.minimum) } : { negative };
}

export class Resolver implements DnsQuerier {
  readonly servers: readonly NameServer[];
  readonly timeoutMs: number;
  readonly attempts: number;
  readonly search: readonly string[];
  readonly ndots: number;
  readonly #maxTtl: number;
  readonly #maxNegativeTtl: number;
  readonly #payload: number;
  readonly #cache: TtlCache<Cached>;
  readonly #inflight = new Map<string, Promise<DnsResult<DnsRecord>>>();
  readonly #hosts: HostsFile;
  readonly #now: () => number;
  readonly random: () => number;

  constructor(options: ResolverOptions) {
    if (options.servers.length === 0) throw new Error("A resolver needs at least one name server");
    this.servers = [...options.servers];
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.attempts = Math.max(1, options.attempts ?? 2);
    this.search = options.search ?? [];
    this.ndots = options.ndots ?? 1;
    this.#maxTtl = options.maxTtl ?? 86400;
    this.#maxNegativeTtl = options.maxNegativeTtl ?? 10800;
    this.#payload = options.ednsPayloadSize ?? EDNS_PAYLOAD_SIZE;
    this.#now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.#cache = new TtlCache(options.cacheSize ?? 10000, this.#now);
    this.#hosts = new HostsFile(options.hostsFile === undefined ? "/etc/hosts" : options.hostsFile, 5000, this.#now);
  }

  /** Forgets every cached answer. */
  clearCache(): void {
    this.#cache.clear();
  }

  get cacheSize(): number {
    return this.#cache.size;
  }

  async query<T extends RRType>(name: string, type: T, options: QueryOptions = {}): Promise<DnsResult<RecordOf<T>>> {
    const canonical = canonicalName(name);
    if (typeof canonical !== "string") return { status: "badname", message: canonical.problem };
    if (canonical === "." && type !== "NS" && type !== "SOA") return { status: "badname", message: "Empty domain name" };
    const result = options.search && !name.endsWith(".") ? await this.#searchQuery(canonical, type) : await this.#lookup(canonical, type);
    return result as DnsResult<RecordOf<T>>;
  }

  /** glibc's res_search: search domains before or after the bare name by ndots; NODATA anywhere wins over NXDOMAIN. */
  async #searchQuery(name: string, type: RRType): Promise<DnsResult<DnsRecord>> {
    const dots = name.split(".").length - 1;
    const suffixed = this.search.map((s) => `${name}.${s}`);
    const candidates = dots >= this.ndots ? [name, ...suffixed] : [...suffixed, name];
    let sawNodata = false;
    let sawServfail = false;
    let last: DnsResult<DnsRecord> = { status: "nxdomain" };
    for (const candidate of candidates) {
      const c = canonicalName(candidate);
      if (typeof c !== "string") continue;
      const r = await this.#lookup(c, type);
      if (r.status === "ok") return r;
      if (r.status === "nodata") sawNodata = true;
      else if (r.status === "servfail") sawServfail = true;
      else if (r.status !== "nxdomain") return r;
      last = r;
    }
    if (sawNodata) return { status: "nodata" };
    if (sawServfail) return { status: "servfail" };
    return last;
  }

  async #lookup(name: string, type: RRType): Promise<DnsResult<DnsRecord>> {
    const fromHosts = await this.#fromHosts(name, type);
    if (fromHosts) return fromHosts;
    const key = `${type} ${name}`;
    const cached = this.#cache.get(key);
    if (cached) {
      if ("negative" in cached.value) return { ...cached.value.negative };
      const age = Math.floor((this.#now() - cached.storedAt) / 1000);
      const ok = cached.value.ok;
      return {
        ...ok,
        ttl: Math.max(0, ok.ttl - age),
        records: ok.records.map((r) => ({ ...r, ttl: Math.max(0, r.ttl - age) })),
        source: "cache",
      };
    }
    let pending = this.#inflight.get(key);
    if (!pending) {
      pending = this.#resolve(name, type).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    return pending;
  }

  async #fromHosts(name: string, type: RRType): Promise<DnsResult<DnsRecord> | undefined> {
    const local = (records: DnsRecord[]): DnsOk<DnsRecord> => ({ status: "ok", records, canonicalName: name, ttl: 0, authenticated: false, source: "hosts" });
    if (type === "A" || type === "AAAA") {
      const answer = await this.#hosts.addresses(name, type === "A" ? 4 : 6);
      if (!answer) return undefined;
      if ("none" in answer) return { status: answer.none };
      if ("addresses" in answer) return local(answer.addresses.map((address) => ({ type, name, ttl: 0, address }) as DnsRecord));
    } else if (type === "PTR") {
      const addr = addressOfReverseName(name);
      if (!addr) return undefined;
      const answer = await this.#hosts.names(addr);
      if (!answer) return undefined;
      if ("none" in answer) return { status: answer.none };
      if ("names" in answer) return local(answer.names.map((target) => ({ type: "PTR", name, ttl: 0, target })));
    }
    return undefined;
  }

  async #resolve(name: string, type: RRType): Promise<DnsResult<DnsRecord>> {
    let failure: DnsFailure | undefined;
    let timedOut = false;
    let network: DnsFailure | undefined;
    const unreachable = new Set<NameServer>();
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      for (const server of this.servers) {
        if (unreachable.has(server)) continue;
        const ex = await this.#ask(server, name, RRTYPES[type]);
        if (ex.kind === "timeout") {
          timedOut = true;
          continue;
        }
        if (ex.kind === "network") {
          network = { status: "network", code: ex.code, message: ex.message };
          if (ex.code === "ECONNREFUSED") unreachable.add(server);
          continue;
        }
        const m = ex.message;
        if (m.rcode !== RCODE.NOERROR && m.rcode !== RCODE.NXDOMAIN) {
          failure = rcodeFailure(m.rcode);
          continue;
        }
        const answer = interpretAnswer(m, name, type);
        const key = `${type} ${name}`;
        if ("ok" in answer) {
          this.#cache.set(key, { ok: answer.ok }, Math.min(answer.ok.ttl, this.#maxTtl));
          return answer.ok;
        }
        // RFC 2308 5: a negative answer without SOA is not cached
        if (answer.negativeTtl !== undefined) this.#cache.set(key, { negative: answer.negative }, Math.min(answer.negativeTtl, this.#maxNegativeTtl));
        return { ...answer.negative };
      }
    }
    return failure ?? (timedOut ? { status: "timeout" } : (network ?? { status: "timeout" }));
  }

  /** One question to one server: UDP, then TCP when truncated, then without EDNS when EDNS is not understood. */
  async #ask(server: NameServer, name: string, type: number): Promise<Exchange> {
    const send = async (payloadSize: number): Promise<Exchange> => {
      const request = (): ExchangeRequest => {
        const id = randomId();
        return { id, name, type, packet: encodeQuery({ id, name, type, payloadSize }) };
      };
      const udp = await exchangeUdp(server, request(), this.timeoutMs);
      if (udp.kind !== "answer" || !udp.message.tc) return udp;
      return exchangeTcp(server, request(), this.timeoutMs);
    };
    const first = await send(this.#payload);
    if (
      this.#payload > 0 &&
      first.kind === "answer" &&
      !first.message.edns &&
      (first.message.rcode === RCODE.FORMERR || first.message.rcode === RCODE.NOTIMP)
    ) {
      return send(0);
    }
    return first;
  }

  // ---- the helpers the roles use (each lives in its own file)

  lookupMx(domain: string): Promise<MxResult> {
    return lookupMx(this, domain, this.random);
  }

  lookupAddresses(name: string, families: readonly AddressFamily[] = ["ipv4", "ipv6"]): Promise<AddressResult> {
    return lookupAddresses(this, name, families);
  }

  reverseLookup(ip: string): Promise<ClientNames> {
    return reverseLookup(this, ip);
  }

  rblLookup(zone: string, ip: string, options?: { reason?: boolean }): Promise<DnsblResult> {
    return rblLookup(this, zone, ip, options);
  }

  rhsblLookup(zone: string, domain: string, options?: { reason?: boolean }): Promise<DnsblResult> {
    return rhsblLookup(this, zone, domain, options);
  }

  lookupTlsa(port: number, host: string, protocol = "tcp"): Promise<DnsResult<RecordOf<"TLSA">>> {
    return lookupTlsa(this, port, host, protocol);
  }
}
