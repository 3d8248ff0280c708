/**
 * Open SMTP/LMTP sessions kept between deliveries (Postfix's scache with
 * smtp_connection_cache_on_demand and smtp_connection_cache_destinations):
 * a session that ended its transaction cleanly waits here, idle for at most
 * smtp_connection_cache_time_limit, under the keys it may be reused by (its
 * next-hop destination and its server address, each with the TLS level
 * and SASL identity it was opened with). Taking a session removes it; a
 * session is never shared by two deliveries at once.
 *
 * Lives in the queue manager's process. Holds no mail; an idle session
 * that the server closes is simply dropped.
 */
import type { Features } from "./handshake.ts";
import type { Endpoint } from "./routing.ts";
import type { SmtpClientSession } from "./session.ts";
import type { TlsVerdict } from "./tls-policy.ts";

export interface CachedSession {
  session: SmtpClientSession;
  features: Features;
  endpoint: Endpoint;
  tls?: TlsVerdict;
  /** When the connection was opened (ms). */
  openedAt: number;
  /** Transactions done on it so far. */
  uses: number;
  /** The cache watches the connection for a close (registered once per connection). */
  watched?: boolean;
}

interface Entry {
  cached: CachedSession;
  keys: string[];
  timer: ReturnType<typeof setTimeout>;
}

export class ConnectionCache {
  #entries = new Map<CachedSession, Entry>();
  readonly #quitTimeoutMs: number;

  constructor(quitTimeoutMs: number) {
    this.#quitTimeoutMs = quitTimeoutMs;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** A usable idle session stored under `key`, removed from the cache. */
  take(key: string): CachedSession | undefined {
    for (const e of this.#entries.values()) {
      if (!e.keys.includes(key)) continue;
      this.#remove(e);
      if (e.cached.session.usable) return e.cached;
      e.cached.session.close();
    }
    return undefined;
  }

  put(cached: CachedSession, keys: string[], idleMs: number): void {
    const entry: Entry = {
      cached,
      keys,
      timer: setTimeout(() => {
        this.#remove(entry);
        void cached.session.quit(this.#quitTimeoutMs, false);
      }, Math.max(1, idleMs)),
    };
    (entry.timer as { unref?: () => void }).unref?.();
    this.#entries.set(cached, entry);
    if (!cached.watched) {
      cached.watched = true;
      // a session the server closes while idle leaves at once
      cached.session.conn.onClose(() => {
        const current = this.#entries.get(cached);
        if (current) this.#remove(current);
      });
    }
  }

  /** QUITs every idle session. */
  async closeAll(): Promise<void> {
    const all = [...this.#entries.values()];
    for (const e of all) this.#remove(e);
    await Promise.all(all.map((e) => e.cached.session.quit(this.#quitTimeoutMs, false)));
  }

  #remove(e: Entry): void {
    clearTimeout(e.timer);
    this.#entries.delete(e.cached);
  }
}
