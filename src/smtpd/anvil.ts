/**
 * Per-client limits, as Postfix's anvil(8) keeps them, but inside each
 * smtpd process: simultaneous connections and, per anvil_rate_time_unit,
 * connection attempts, messages, recipients and AUTH commands of one client
 * address for one service.
 *
 * Known limit: with several smtpd processes per service each keeps its own
 * counts, so a client may get up to (processes x limit) before it is
 * refused. Counts are kept only for clients that are not exempt, and
 * forgotten once idle for two time units.
 *
 * No input from the network beyond the client address it is keyed on.
 */

export type RateEvent = "connection" | "message" | "recipient" | "auth";

interface ClientCounts {
  connections: number;
  windowStart: number;
  rates: Record<RateEvent, number>;
}

export class Anvil {
  #clients = new Map<string, ClientCounts>();
  #sweep: ReturnType<typeof setInterval> | undefined;

  constructor(
    private unitMs: number,
    private now: () => number = Date.now,
  ) {}

  #get(key: string): ClientCounts {
    const t = this.now();
    let c = this.#clients.get(key);
    if (!c) {
      c = { connections: 0, windowStart: t, rates: { connection: 0, message: 0, recipient: 0, auth: 0 } };
      this.#clients.set(key, c);
      this.#startSweeping();
    } else if (t - c.windowStart >= this.unitMs) {
      c.windowStart = t;
      c.rates = { connection: 0, message: 0, recipient: 0, auth: 0 };
    }
    return c;
  }

  #startSweeping(): void {
    if (this.#sweep) return;
    this.#sweep = setInterval(() => {
      const t = this.now();
      for (const [k, c] of this.#clients) if (c.connections === 0 && t - c.windowStart >= 2 * this.unitMs) this.#clients.delete(k);
      if (this.#clients.size === 0 && this.#sweep) {
        clearInterval(this.#sweep);
        this.#sweep = undefined;
      }
    }, Math.max(1000, this.unitMs));
    this.#sweep.unref?.();
  }

  /** Registers a connection; returns the counts after it (for comparing with the limits). */
  connect(key: string): { count: number; rate: number } {
    const c = this.#get(key);
    c.connections++;
    c.rates.connection++;
    return { count: c.connections, rate: c.rates.connection };
  }

  disconnect(key: string): void {
    const c = this.#clients.get(key);
    if (c && c.connections > 0) c.connections--;
  }

  /** Counts `n` events of a kind; returns the count in this time unit. */
  count(key: string, event: RateEvent, n = 1): number {
    const c = this.#get(key);
    c.rates[event] += n;
    return c.rates[event];
  }

  set timeUnitMs(ms: number) {
    this.unitMs = ms;
  }
}
