/**
 * Per-destination delivery queues: jobs for one transport and next hop run
 * at most `<transport>_destination_concurrency_limit` at a time (else
 * default_destination_concurrency_limit), and all destinations together at
 * most default_process_limit. A job carries up to the recipient limit of
 * one message's recipients.
 */
import type { Config } from "../global/config/config.ts";
import { paramDef } from "../global/config/registry.ts";

export interface Job {
  destination: string;
  run: () => Promise<void>;
}

function transportLimit(config: Config, transport: string, what: "concurrency" | "recipient"): number {
  const name = `${transport}_destination_${what}_limit`;
  if (paramDef(name) || config.isSet(name)) {
    const v = config.raw(name);
    if (v !== undefined) return Math.max(1, config.int(name));
  }
  return Math.max(1, config.int(`default_destination_${what}_limit`));
}

export function recipientLimit(config: Config, transport: string): number {
  return transportLimit(config, transport, "recipient");
}

interface Destination {
  waiting: Job[];
  running: number;
  limit: number;
}

export class DestinationQueues {
  #destinations = new Map<string, Destination>();
  #running = 0;
  #config: Config;

  constructor(config: Config) {
    this.#config = config;
  }

  setConfig(config: Config): void {
    this.#config = config;
  }

  get running(): number {
    return this.#running;
  }

  add(transport: string, nexthop: string, run: () => Promise<void>): void {
    const key = `${transport}:${nexthop.toLowerCase()}`;
    let d = this.#destinations.get(key);
    if (!d) {
      d = { waiting: [], running: 0, limit: transportLimit(this.#config, transport, "concurrency") };
      this.#destinations.set(key, d);
    }
    d.waiting.push({ destination: key, run });
    this.#pump();
  }

  #pump(): void {
    const total = Math.max(1, this.#config.int("default_process_limit"));
    for (const [key, d] of this.#destinations) {
      while (d.waiting.length && d.running < d.limit && this.#running < total) {
        const job = d.waiting.shift()!;
        d.running++;
        this.#running++;
        job
          .run()
          .catch(() => {})
          .finally(() => {
            d.running--;
            this.#running--;
            if (!d.waiting.length && !d.running) this.#destinations.delete(key);
            this.#pump();
          });
      }
    }
  }
}
