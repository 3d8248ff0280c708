/**
 * The resolver's answer cache: positive answers for the smallest TTL of the
 * records used, negative answers (NXDOMAIN, NODATA) for the SOA's negative
 * TTL (RFC 2308 5: the smaller of the SOA record's TTL and its MINIMUM
 * field), both capped. Failures (SERVFAIL, timeouts) are not cached. The
 * cache holds at most `maxEntries` answers and drops the least recently used
 * one first; a size of 0 turns it off.
 *
 * Process-local, in memory; the clock is injectable for tests.
 */

export interface CacheEntry<V> {
  value: V;
  /** When it was stored (ms, the cache's clock). */
  storedAt: number;
  expiresAt: number;
}

export class TtlCache<V> {
  readonly #entries = new Map<string, CacheEntry<V>>();

  constructor(
    readonly maxEntries: number,
    readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): CacheEntry<V> | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (this.now() >= e.expiresAt) {
      this.#entries.delete(key);
      return undefined;
    }
    // most recently used goes last
    this.#entries.delete(key);
    this.#entries.set(key, e);
    return e;
  }

  /** Stores `value` for `ttlSeconds`; a TTL of 0 or less stores nothing. */
  set(key: string, value: V, ttlSeconds: number): void {
    if (this.maxEntries <= 0 || !(ttlSeconds > 0)) return;
    const now = this.now();
    this.#entries.delete(key);
    this.#entries.set(key, { value, storedAt: now, expiresAt: now + ttlSeconds * 1000 });
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  clear(): void {
    this.#entries.clear();
  }
}
