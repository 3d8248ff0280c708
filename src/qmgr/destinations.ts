/**
 * Per-destination delivery queues and per-transport process limits, after
 * Postfix's qmgr (qmgr_queue.c, qmgr_transport.c). A job carries up to the
 * transport's recipient limit of one message's recipients and runs in its
 * destination queue: at most `<transport>_destination_concurrency_limit`
 * jobs of one queue at a time (else default_destination_concurrency_limit),
 * and at most `<transport>_process_limit` jobs of one transport in all
 * (else default_process_limit), Postfix's per-service maxproc. Each
 * transport has its own total, so local deliveries (a slow .forward
 * command, fifty user+N addresses) can never take the slots of smtp.
 *
 * The queue name is the next hop; for a transport that takes one recipient
 * per delivery (local), it is the recipient's local part without its
 * extension, at the next hop (queueName()), so user+1 ... user+50 share one
 * queue and its concurrency limit, as with Postfix.
 *
 * Runs in the queue manager (mail_owner); the names come from resolved
 * recipient addresses.
 */
import type { Config } from "../global/config/config.ts";
import { paramDef } from "../global/config/registry.ts";
import { splitExtension } from "../global/tables/address-lookup.ts";

/** One delivery the scheduler runs for a destination, queued while the destination is at its concurrency limit. */
export interface DeliveryJob {
  destination: string;
  run: () => Promise<void>;
}

/** `<transport>_NAME` when defined or set, else `default_NAME`; at least 1. */
function perTransport(config: Config, transport: string, name: string): number {
  const specific = `${transport}_${name}`;
  if ((paramDef(specific) || config.isSet(specific)) && config.raw(specific) !== undefined) return Math.max(1, config.int(specific));
  return Math.max(1, config.int(`default_${name}`));
}

export function recipientLimit(config: Config, transport: string): number {
  return perTransport(config, transport, "destination_recipient_limit");
}

export function concurrencyLimit(config: Config, transport: string): number {
  return perTransport(config, transport, "destination_concurrency_limit");
}

/** How many deliveries of `transport` may run at once (Postfix: the transport's master.cf maxproc). */
export function processLimit(config: Config, transport: string): number {
  return perTransport(config, transport, "process_limit");
}

/**
 * The destination queue of a delivery, as Postfix's qmgr_message_resolve()
 * names it: the next hop, or, when the transport takes one recipient per
 * delivery, "localpart@nexthop" without the address extension (error and
 * retry excepted), lower case.
 */
export function queueName(config: Config, transport: string, nexthop: string, recipient: string): string {
  if (transport === "error" || transport === "retry" || recipientLimit(config, transport) !== 1) return nexthop.toLowerCase();
  const at = recipient.lastIndexOf("@");
  let local = at < 0 ? recipient : recipient.slice(0, at);
  const split = splitExtension(local, config.str("recipient_delimiter"), { ownerRequestSpecial: config.bool("owner_request_special") });
  if (split) local = split.user;
  return `${local}@${nexthop}`.toLowerCase();
}

interface Destination {
  transport: string;
  waiting: DeliveryJob[];
  running: number;
  limit: number;
}

export class DestinationQueues {
  #destinations = new Map<string, Destination>();
  #busy = new Map<string, number>();
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

  /** Jobs of `transport` running now. */
  busy(transport: string): number {
    return this.#busy.get(transport) ?? 0;
  }

  /** Jobs waiting for a slot, in all queues. */
  get waiting(): number {
    let n = 0;
    for (const d of this.#destinations.values()) n += d.waiting.length;
    return n;
  }

  add(transport: string, queue: string, run: () => Promise<void>): void {
    const key = `${transport}:${queue.toLowerCase()}`;
    let d = this.#destinations.get(key);
    if (!d) {
      d = { transport, waiting: [], running: 0, limit: concurrencyLimit(this.#config, transport) };
      this.#destinations.set(key, d);
    }
    d.waiting.push({ destination: key, run });
    this.#pump();
  }

  #pump(): void {
    const totals = new Map<string, number>();
    const total = (transport: string) => {
      let t = totals.get(transport);
      if (t === undefined) {
        t = processLimit(this.#config, transport);
        totals.set(transport, t);
      }
      return t;
    };
    for (const [key, d] of this.#destinations) {
      while (d.waiting.length && d.running < d.limit && this.busy(d.transport) < total(d.transport)) {
        const job = d.waiting.shift()!;
        d.running++;
        this.#running++;
        this.#busy.set(d.transport, this.busy(d.transport) + 1);
        job
          .run()
          .catch(() => {})
          .finally(() => {
            d.running--;
            this.#running--;
            this.#busy.set(d.transport, this.busy(d.transport) - 1);
            if (!d.waiting.length && !d.running) this.#destinations.delete(key);
            this.#pump();
          });
      }
    }
  }
}
