/**
 * The state local delivery carries while it expands one recipient: the
 * message attributes that change on the way down (recipient, sender,
 * owner, Delivered-To: address, expansion type), passed by value so a
 * deeper level never changes a shallower one, the user whose rights apply,
 * and the per-recipient context that collects the final outcomes, the
 * duplicate filter and the addresses to forward as a new message.
 *
 * Runs in the local delivery agent.
 */
import type { NotifyKeyword } from "../global/queue/format.ts";
import type { DeliveryRequest, PassOn } from "../global/delivery/types.ts";
import { splitService } from "../global/delivery/pass-on.ts";
import type { AddressParts } from "./address.ts";
import type { ExpansionType, LocalSettings } from "./settings.ts";
import type { LocalServices } from "./services.ts";
import type { Identity, WorkerJob, JobResult } from "./worker/jobs.ts";
import { log } from "../util/log.ts";

/** Whose rights apply to files and commands; uid 0 means "none chosen" (default_privs then), as in Postfix. */
export interface UserAttr {
  uid: number;
  gid: number;
  home?: string;
  logname?: string;
  shell?: string;
}

export const NO_USER: UserAttr = Object.freeze({ uid: 0, gid: 0 });

export interface MessageAttr {
  level: number;
  /** The address being delivered at this level. */
  recipient: string;
  /** Original recipient (X-Original-To:, ORIGINAL_RECIPIENT); "" once an owner- alias reset it. */
  original: string;
  orcpt?: string;
  notify?: NotifyKeyword[];
  envid?: string;
  ret?: string;
  sender: string;
  /** The owner- alias (or the .forward user, or the :include: address): mail to other local users is forwarded. */
  owner?: string;
  /** Delivered-To: address. */
  delivered?: string;
  expType?: ExpansionType;
  expFrom?: string;
  parts?: AddressParts;
  /** The extension not matched by a lookup, to put back on addresses found in the expansion. */
  unmatched?: string;
}

export interface Outcome {
  address: string;
  status: "sent" | "deferred" | "bounced";
  dsn: string;
  reason: string;
  action: string;
}

export interface ForwardRecipient {
  address: string;
  original: string;
  orcpt?: string;
  notify?: NotifyKeyword[];
}

export interface ForwardGroup {
  delivered: string;
  sender: string;
  envid?: string;
  ret?: string;
  recipients: ForwardRecipient[];
}

/** Postfix's been_here(): remembers keys up to duplicate_filter_limit (0: no limit). */
export class DuplicateFilter {
  readonly #seen = new Set<string>();
  constructor(private readonly limit: number) {}
  /** True when `key` was seen before; remembers it otherwise. */
  seen(key: string): boolean {
    const k = key.toLowerCase();
    if (this.#seen.has(k)) return true;
    if (this.limit <= 0 || this.#seen.size < this.limit) this.#seen.add(k);
    return false;
  }
  has(key: string): boolean {
    return this.#seen.has(key.toLowerCase());
  }
}

/** Everything one top-level recipient's delivery shares. */
export class RecipientContext {
  readonly outcomes: Outcome[] = [];
  readonly forwards = new Map<string, ForwardGroup>();
  /** Final addresses handed to another transport (mailbox_transport, fallback_transport): the queue manager delivers them. */
  readonly passes: PassOn[] = [];
  readonly dup: DuplicateFilter;

  constructor(
    readonly request: DeliveryRequest,
    readonly content: Uint8Array,
    /** Lower-cased Delivered-To: addresses of the message. */
    readonly loopInfo: Set<string>,
    readonly services: LocalServices,
    /** Epoch ms after which no job of this request starts (daemon_timeout). */
    readonly deadline = Infinity,
  ) {
    this.dup = new DuplicateFilter(services.settings.duplicateFilterLimit);
  }

  /**
   * Runs a job with the services, unless the request's time is up (then a
   * temporary failure). A job that already ran ahead, inside another job
   * (prepare()), is not run again: its result is returned, its warnings
   * logged now, where the delivery reaches it.
   */
  run(identity: Identity | undefined, job: WorkerJob, payload?: Uint8Array): Promise<JobResult> {
    const ahead = this.#ahead;
    if (ahead) {
      this.#ahead = undefined;
      if (ahead.key === jobKey(identity, job)) {
        for (const w of ahead.result.warnings ?? []) log.warn(w);
        return Promise.resolve(ahead.result);
      }
      log.error(`${this.request.queueId}: local delivery: the mailbox job planned ahead differs from the one delivered`);
    }
    if (Date.now() > this.deadline) return Promise.resolve({ ok: false, dsn: "4.3.0", text: "local delivery request time limit exceeded" });
    return this.services.run(identity, job, payload);
  }

  #ahead: { key: string; result: JobResult } | undefined;

  /** `job` already ran with `identity` (the mailbox delivery after a .forward search): the next run() of it gets `result`. */
  prepare(identity: Identity | undefined, job: WorkerJob, result: JobResult): void {
    this.#ahead = { key: jobKey(identity, job), result };
  }

  get settings(): LocalSettings {
    return this.services.settings;
  }

  /**
   * sendmail -bv: resolve and expand as a delivery would, but write, run and
   * forward nothing; each leaf reports what it would do, in Postfix's words
   * ("delivers to mailbox", "delivers to command: ...", "forwards to ...").
   */
  get verify(): boolean {
    return this.request.verify === true;
  }

  sent(msg: MessageAttr, reason: string, action = "delivered"): boolean {
    this.outcomes.push({ address: msg.recipient, status: "sent", dsn: "2.0.0", reason, action });
    return false;
  }

  bounce(msg: MessageAttr, dsn: string, reason: string): boolean {
    this.outcomes.push({ address: msg.recipient, status: "bounced", dsn: dsn.startsWith("5") ? dsn : "5.0.0", reason, action: "failed" });
    return false;
  }

  /** Returns true: delivery must be tried again. */
  defer(msg: MessageAttr, dsn: string, reason: string): boolean {
    this.outcomes.push({ address: msg.recipient, status: "deferred", dsn: dsn.startsWith("4") ? dsn : "4.0.0", reason, action: "delayed" });
    return true;
  }

  /** Defer for a 4.X.X status, bounce otherwise (Postfix's bounce_workaround without the owner- report). */
  fail(msg: MessageAttr, dsn: string, reason: string): boolean {
    return dsn.startsWith("4") ? this.defer(msg, dsn, reason) : this.bounce(msg, dsn, reason);
  }

  /**
   * Hands `msg.recipient` to `service` ("transport[:nexthop]", the request's
   * next hop when none is given), Postfix's deliver_pass: the queue manager
   * delivers it through that transport in the same round.
   */
  pass(msg: MessageAttr, service: string): boolean {
    const { transport, nexthop } = splitService(service, this.request.nexthop);
    log.info(`${this.request.queueId}: passing <${msg.recipient}> to transport=${transport}`);
    this.passes.push({ address: msg.recipient, transport, nexthop });
    return false;
  }

  /** Queues `msg.recipient` for forwarding as a new message (Postfix's forward_append). */
  forward(msg: MessageAttr): boolean {
    const delivered = (msg.delivered ?? msg.recipient).toLowerCase();
    const key = `${delivered}\n${msg.sender}`;
    let group = this.forwards.get(key);
    if (!group) {
      group = { delivered, sender: msg.sender, envid: msg.envid, ret: msg.ret, recipients: [] };
      this.forwards.set(key, group);
    }
    group.recipients.push({ address: msg.recipient, original: msg.original, orcpt: msg.orcpt, notify: msg.notify });
    return false;
  }

  warn(text: string): void {
    log.warn(text);
  }
}

function jobKey(identity: Identity | undefined, job: WorkerJob): string {
  return JSON.stringify([identity ?? null, job]);
}

export interface LocalState {
  msg: MessageAttr;
  ctx: RecipientContext;
}

/** A copy one level deeper: changes made below never reach the caller's copy. */
export function descend(state: LocalState): LocalState {
  return { msg: { ...state.msg, level: state.msg.level + 1 }, ctx: state.ctx };
}

/** NOTIFY for forwarding addresses: the SUCCESS keyword removed (NEVER when nothing is left). */
export function notifyWithoutSuccess(notify: NotifyKeyword[] | undefined): NotifyKeyword[] | undefined {
  if (!notify) return undefined;
  const rest = notify.filter((n) => n !== "SUCCESS");
  return rest.length ? rest : ["NEVER"];
}
