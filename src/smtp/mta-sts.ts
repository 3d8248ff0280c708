/**
 * MTA-STS (RFC 8461) for the SMTP client, an option (smtp_mta_sts_enable):
 * the policy a recipient domain publishes, found through its
 * `_mta-sts.DOMAIN` TXT record and fetched over HTTPS from
 * `https://mta-sts.DOMAIN/.well-known/mta-sts.txt`, and kept in a cache
 * that survives restarts (smtp_mta_sts_cache_file, a JSON file the queue
 * manager rewrites whole and renames into place).
 *
 * What the policy means is the agent's (agent.ts): with `enforce`, only MX
 * hosts that match the policy's patterns are used, and TLS must verify
 * against the trust store with a certificate for the MX host name (the
 * "verify" level); `testing` only logs what enforce would refuse; `none`
 * turns a cached policy off. DANE, when it applies to a server, comes first
 * (RFC 8461 2), and an explicit smtp_tls_policy_maps entry stays the
 * administrator's word.
 *
 * Runs in the SMTP client (the queue manager, as mail_owner). Distrusts the
 * TXT record (mailauth's parser), the HTTPS answer (size-limited, only
 * HTTP 200, parsed by mailauth, the certificate checked against the trust
 * store and the policy host name) and the cache file (every entry
 * re-validated when read; a bad file is ignored).
 */
import { closeSync, constants, fsyncSync, openSync, readFileSync, renameSync, unlinkSync } from "node:fs";
import { request } from "node:https";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { parsePolicy, resolvePolicy } from "mailauth/lib/mta-sts";
import { writeFully } from "../util/durable-file.ts";
import { lookupAddresses } from "../global/dns/addresses.ts";
import { mailauthResolver } from "../global/dns/mailauth-resolver.ts";
import type { DnsQuerier } from "../global/dns/result.ts";

export interface MtaStsSettings {
  enable: boolean;
  /** Where policies are kept across restarts ("" keeps them in memory only). */
  cacheFile: string;
  /** PEM certificates trusted for the policy host (none: the system's). */
  trusted?: string[];
  /** The HTTPS port of the policy host: 443 (RFC 8461 3.3); another for tests or a proxy. */
  port: number;
  /** The whole fetch, in milliseconds. */
  timeoutMs: number;
}

export interface StsPolicy {
  domain: string;
  /** The TXT record's id the policy was fetched under. */
  id: string;
  mode: "enforce" | "testing" | "none";
  /** MX host patterns: names and "*.domain" (one label). */
  mx: string[];
  /** When the policy stops applying (ms since the epoch). */
  expires: number;
}

/** RFC 8461 3.3: a policy file is at most 64 KB. */
const MAX_POLICY_SIZE = 64 * 1024;
/** RFC 8461 3.2: max_age is at most 31557600 seconds. */
const MAX_AGE_LIMIT = 31_557_600;
/** Policies kept; beyond this the ones expiring first are dropped. */
const MAX_CACHED = 10_000;

/** Whether an MX host name matches a policy pattern (RFC 8461 4.1: "*." is one leftmost label). */
export function mxMatches(host: string, pattern: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  const p = pattern.toLowerCase().replace(/\.$/, "");
  if (!p.startsWith("*.")) return h === p;
  const suffix = p.slice(1);
  if (!h.endsWith(suffix)) return false;
  const label = h.slice(0, -suffix.length);
  return label.length > 0 && !label.includes(".");
}

export function mxAllowed(host: string, policy: StsPolicy): boolean {
  return policy.mx.some((p) => mxMatches(host, p));
}

function validEntry(x: unknown): x is StsPolicy {
  if (typeof x !== "object" || x === null) return false;
  const e = x as Record<string, unknown>;
  return (
    typeof e.domain === "string" &&
    /^[a-z0-9.-]{1,253}$/.test(e.domain) &&
    typeof e.id === "string" &&
    e.id.length <= 64 &&
    (e.mode === "enforce" || e.mode === "testing" || e.mode === "none") &&
    Array.isArray(e.mx) &&
    e.mx.length <= 100 &&
    e.mx.every((m) => typeof m === "string" && m.length <= 255) &&
    typeof e.expires === "number" &&
    Number.isFinite(e.expires)
  );
}

export class MtaSts {
  readonly #settings: MtaStsSettings;
  readonly #dns: DnsQuerier;
  readonly #now: () => number;
  readonly #log: (level: "info" | "warning", text: string) => void;
  #cache: Map<string, StsPolicy> | undefined;

  constructor(settings: MtaStsSettings, dns: DnsQuerier, log: (level: "info" | "warning", text: string) => void, now: () => number = Date.now) {
    this.#settings = settings;
    this.#dns = dns;
    this.#log = log;
    this.#now = now;
  }

  #load(): Map<string, StsPolicy> {
    if (this.#cache) return this.#cache;
    this.#cache = new Map();
    if (!this.#settings.cacheFile) return this.#cache;
    try {
      const text = readFileSync(this.#settings.cacheFile, "utf8");
      if (text.length > MAX_CACHED * 4096) throw new Error("too large");
      const data = JSON.parse(text) as unknown;
      if (Array.isArray(data)) for (const e of data) if (validEntry(e)) this.#cache.set(e.domain, e);
    } catch (err) {
      if ((err as { code?: string }).code !== "ENOENT") this.#log("warning", `MTA-STS policy cache ${this.#settings.cacheFile}: ignored: ${(err as Error).message}`);
    }
    return this.#cache;
  }

  #save(): void {
    const file = this.#settings.cacheFile;
    if (!file || !this.#cache) return;
    const now = this.#now();
    let entries = [...this.#cache.values()].filter((e) => e.expires > now);
    if (entries.length > MAX_CACHED) entries = entries.sort((a, b) => b.expires - a.expires).slice(0, MAX_CACHED);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        writeFully(fd, JSON.stringify(entries));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, file);
    } catch (err) {
      this.#log("warning", `MTA-STS policy cache ${file}: not saved: ${(err as Error).message}`);
      try {
        unlinkSync(tmp);
      } catch {}
    }
  }

  /** The policy that applies to mail for `domain` now, if any (mode "none" included). */
  async policy(domain: string): Promise<StsPolicy | undefined> {
    const d = domain.toLowerCase().replace(/\.$/, "");
    const cache = this.#load();
    const cached = cache.get(d);
    const live = cached && cached.expires > this.#now() ? cached : undefined;
    let id: string | false;
    try {
      id = await resolvePolicy(d, { resolver: mailauthResolver(this.#dns) as never });
    } catch (err) {
      // a DNS failure keeps what is cached (RFC 8461 5.1)
      if (!live) this.#log("info", `MTA-STS: ${d}: TXT lookup failed: ${(err as Error).message}`);
      return live;
    }
    if (!id) return live;
    if (live && live.id === id) return live;
    try {
      const fetched = await this.#fetch(d, id);
      cache.set(d, fetched);
      this.#save();
      this.#log("info", `MTA-STS: ${d}: policy id ${id}, mode ${fetched.mode}, mx ${fetched.mx.join(" ")}`);
      return fetched;
    } catch (err) {
      this.#log("warning", `MTA-STS: ${d}: cannot fetch the policy: ${(err as Error).message}`);
      return live;
    }
  }

  async #fetch(domain: string, id: string): Promise<StsPolicy> {
    const host = `mta-sts.${domain}`;
    const addresses = await lookupAddresses(this.#dns, host, ["ipv4", "ipv6"]);
    if (addresses.status !== "ok") throw new Error(`no address for ${host} (${addresses.status})`);
    const body = await this.#get(host, addresses.addresses[0]!.address);
    const parsed = parsePolicy(body);
    const maxAge = Math.min(Math.max(Number(parsed.maxAge) || 0, 0), MAX_AGE_LIMIT);
    const mode = parsed.mode === "enforce" || parsed.mode === "testing" ? parsed.mode : "none";
    const mx = (parsed.mx ?? []).filter((m) => typeof m === "string").slice(0, 100);
    if (mode !== "none" && mx.length === 0) throw new Error("the policy names no MX host");
    return { domain, id, mode, mx, expires: this.#now() + maxAge * 1000 };
  }

  #get(host: string, address: string): Promise<Buffer> {
    const { port, timeoutMs, trusted } = this.#settings;
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | undefined, data?: Buffer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(data!);
      };
      const req = request(
        {
          host: address,
          port,
          path: "/.well-known/mta-sts.txt",
          method: "GET",
          servername: host,
          headers: { host },
          rejectUnauthorized: true,
          ...(trusted?.length ? { ca: trusted } : {}),
          checkServerIdentity: (_name: string, cert: PeerCertificate) => checkServerIdentity(host, cert),
          agent: false,
        },
        (res) => {
          if (res.statusCode !== 200) return finish(new Error(`HTTP status ${res.statusCode ?? "-"} from https://${host}/.well-known/mta-sts.txt`));
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_POLICY_SIZE) return finish(new Error(`policy file larger than ${MAX_POLICY_SIZE} bytes`));
            chunks.push(chunk);
          });
          res.on("end", () => finish(undefined, Buffer.concat(chunks)));
          res.on("error", (err) => finish(err));
        },
      );
      const timer = setTimeout(() => finish(new Error(`timeout fetching https://${host}/.well-known/mta-sts.txt`)), timeoutMs);
      req.on("error", (err) => finish(err));
      req.end();
    });
  }
}
