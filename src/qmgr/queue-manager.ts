/**
 * The queue manager: moves mail from incoming/ (and deferred/ when its
 * retry time has come) into active/, resolves each recipient to a transport
 * and next hop, hands deliveries to the agents per destination, records
 * every recipient's outcome durably (D records, defer/ and bounce/ logs)
 * before the next step, and finally removes the message, returns it to the
 * sender, or moves it to deferred/ with its next retry time as mtime.
 *
 * sendmail -bv (attribute verify=yes) and -v (record=yes) follow Postfix's
 * trace flags: a verify message is dispatched with `verify` set, so the
 * agents only say what they would do; every answer (a deferral too) is
 * final, goes to trace/ID and is logged as status=deliverable or
 * undeliverable, and once every recipient has one the report goes to the
 * sender and the message is removed. A record message is delivered as
 * usual; the outcomes of its first attempt also go to trace/ID and become
 * the sender's report after that attempt (then a V record says it was sent).
 *
 * This class is the coordinator, as Postfix's qmgr.c: it owns the state
 * (the messages in active/, the destination queues, transport_maps, the
 * wake-ups) and the parts do the work: activate.ts (scan and activate),
 * schedule.ts (resolve, group, run deliveries), record.ts (outcomes, the one
 * D-record writer), finish.ts (expire, notices, remove or defer).
 *
 * Runs as mail_owner; owns incoming/, active/, deferred/ (hold/ is left
 * alone). Trusts queue files only after they decode; a corrupt one goes to
 * corrupt/.
 */
import { join } from "node:path";
import { WakeUp } from "../daemon/wake-up.ts";
import type { Config } from "../global/config/config.ts";
import type { DeliveryAgent } from "../global/delivery/types.ts";
import type { FlushRequest } from "../global/queue/flush-request.ts";
import { listQueue, queueManagerHasWork } from "../global/queue/store.ts";
import { isQueueId } from "../global/queue/names.ts";
import { log } from "../util/log.ts";
import { SERVICE_TABLE } from "../global/system/service-table.ts";
import { type ActivateFrom, activateMessage, flushSelection, scanDeferred, scanIncoming } from "./activate.ts";
import { agentFor } from "./agents.ts";
import { DestinationQueues } from "./destinations.ts";
import { finishRound } from "./finish.ts";
import type { ActiveMessage } from "./message.ts";
import { schedule, type Scheduler } from "./schedule.ts";
import { TransportMaps } from "./transport-maps.ts";

/**
 * How many bytes of message content the queue manager holds for deliveries (ActiveMessage.content): the
 * content of a small file comes free with its activation, and an in-process agent (smtp, lmtp) then sends
 * it without reading the file a second time. Beyond this (a backlog of thousands in active/), messages are
 * activated without it and their agents read the file, as before: the memory stays bounded. A round with
 * no such delivery (local, virtual, pipe: the local service reads the file) gives it back once scheduled.
 */
export const HELD_CONTENT_BUDGET = 4 * 1024 * 1024;

/** What a test (or another caller) may put in place of the real agents and clock. */
export interface QueueManagerOptions {
  /** The delivery agent of a transport, as a function or a map (default: the real agents, ./agents.ts). */
  agents?: ((transport: string) => DeliveryAgent) | Readonly<Record<string, DeliveryAgent>>;
  /** The clock, ms since the epoch, for every time the queue manager records or decides on (default: the system clock). */
  now?: () => number;
  /** Bytes of content held for deliveries (default HELD_CONTENT_BUDGET). */
  heldContentBudget?: number;
  /** Called for each message taken into active/ (started on demand: the idle countdown starts over). */
  onWork?: () => void;
}

/** A map of agents answers an unknown transport as the real agents do: it is unavailable. */
function agentFromMap(agents: Readonly<Record<string, DeliveryAgent>>, transport: string): DeliveryAgent {
  return (
    agents[transport] ?? {
      deliver: async (request) => request.recipients.map((r) => ({ index: r.index, status: "deferred" as const, dsn: "4.3.0", reason: `mail transport unavailable: unknown transport "${transport}"`, relay: "none" })),
    }
  );
}

export class QueueManager {
  #config: Config;
  #active = new Map<string, ActiveMessage>();
  #destinations: DestinationQueues;
  /** Work after deliveries left their slots (their D records' fsync, then the finish). */
  readonly #background = new Set<Promise<void>>();
  #transportMaps: TransportMaps;
  #incoming: WakeUp;
  #deferred: WakeUp;
  #stopping = false;
  /** Queue files incoming/'s watch named since the last scan (in the order it named them). */
  #named = new Set<string>();
  /** A scan left mail in incoming/ for want of room in active/: the next finished message rescans. */
  #roomWanted = false;
  /** The context every part reads: the current configuration, the queue directory, the clock, the agents. */
  #ctx: Scheduler;
  /** Bytes of content the messages in active/ hold (at most #heldBudget). */
  #heldBytes = 0;
  readonly #heldBudget: number;
  readonly #onWork: (() => void) | undefined;

  constructor(config: Config, options: QueueManagerOptions = {}) {
    this.#config = config;
    const { agents } = options;
    this.#heldBudget = options.heldContentBudget ?? HELD_CONTENT_BUDGET;
    this.#onWork = options.onWork;
    const pick: (transport: string) => DeliveryAgent = agents === undefined ? (t) => agentFor(this.#config, t) : typeof agents === "function" ? agents : (t) => agentFromMap(agents, t);
    const queueDir = config.str("queue_directory");
    this.#destinations = new DestinationQueues(config);
    this.#transportMaps = new TransportMaps(config);
    const self = this;
    this.#ctx = {
      get config() {
        return self.#config;
      },
      queueDir,
      now: options.now ?? Date.now,
      get transportMaps() {
        return self.#transportMaps;
      },
      destinations: this.#destinations,
      agentFor: pick,
      finish: (msg) => this.#finish(msg),
      dropContent: (msg) => this.#dropContent(msg),
      background: (work) => {
        const tracked: Promise<void> = work
          .catch((err) => log.error(`after a delivery: ${(err as Error).message}`))
          .finally(() => this.#background.delete(tracked));
        this.#background.add(tracked);
      },
    };
    const { watch, pollSeconds } = SERVICE_TABLE.qmgr.wakeUp;
    this.#incoming = new WakeUp({
      watch: join(queueDir, watch),
      pollMs: pollSeconds * 1000,
      // A queue file's name appearing is all a new message needs: it is activated by that name,
      // without a listing of incoming/ per message. Temporary files (the writer's t.*) and the
      // messages this process has just moved into active/ need no pass. The timer, a start and
      // room found again list the directory, so a missed or unnamed change waits at most one poll.
      // Every writer renames its file in (commit.ts): only renames into incoming/ wake the queue
      // manager, not the writer's temporary file nor this process's own moves to active/.
      arrivals: {},
      named: (name) => {
        if (!isQueueId(name) || this.#active.has(name)) return false;
        this.#named.add(name);
        return true;
      },
      pass: (full) => {
        const names = full ? undefined : [...this.#named];
        this.#named.clear();
        return scanIncoming(this.#ctx, () => this.#room(), this.#activate, names);
      },
      what: "queue scan",
    });
    this.#deferred = new WakeUp({ pollMs: Math.max(1, config.time("queue_run_delay")) * 1000, pass: () => this.scanDeferred(false), what: "queue scan" });
  }

  /**
   * A reload: new settings for the next deliveries, transport_maps opened afresh, the queue run timer
   * reset. The old configuration's tables close once the daemon has retired it and its rounds are done.
   */
  setConfig(config: Config): void {
    // what may throw first: a configuration refused here is not half taken (the skeleton keeps the old one)
    const transportMaps = new TransportMaps(config);
    const pollMs = Math.max(1, config.time("queue_run_delay")) * 1000;
    this.#config = config;
    this.#destinations.setConfig(config);
    this.#transportMaps = transportMaps;
    this.#deferred.setPollMs(pollMs);
  }

  /** Takes over active/ (left by a previous run), then incoming/ and due deferred/ mail. */
  start(): void {
    for (const id of listQueue(this.#ctx.queueDir, "active")) this.#activate(id, "active");
    // a scan that fails (a file we may not read, a vanished directory) is logged by WakeUp, never fatal
    this.#incoming.start();
    this.#deferred.start();
  }

  /** Stops taking new work; resolves when the deliveries in flight have been recorded. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all([this.#incoming.stop(), this.#deferred.stop()]);
    while (this.#destinations.running > 0) await new Promise((r) => setTimeout(r, 50));
    // the fsyncs of the last deliveries' D records, and their messages' finish
    while (this.#background.size > 0) await Promise.all(this.#background);
  }

  /**
   * Whether anything still needs this process: a message in memory, a delivery or its record in
   * flight, or a queue file in incoming/, active/ or deferred/ (deferred mail waits for its retry here).
   */
  holdsWork(): boolean {
    return this.#active.size > 0 || this.#destinations.running > 0 || this.#background.size > 0 || queueManagerHasWork(this.#ctx.queueDir);
  }

  #room(): boolean {
    const room = !this.#stopping && this.#active.size < this.#config.int("qmgr_message_active_limit");
    if (!room) this.#roomWanted = true;
    return room;
  }

  /** Asks for a scan of incoming/ on the next turn of the event loop. */
  scanIncoming(): void {
    this.#incoming.trigger();
  }

  /** Activates deferred mail whose retry time (mtime) has come, or all of it when `all`. */
  scanDeferred(all: boolean, wanted?: (id: string) => boolean): number {
    return scanDeferred(this.#ctx, () => this.#room(), this.#activate, all, wanted);
  }

  flush(request: FlushRequest): number {
    return this.scanDeferred(true, flushSelection(this.#ctx, request));
  }

  /** Moves `id` into active/ and schedules its deliveries; false when it could not. */
  #activate = (id: string, from: ActivateFrom): boolean => {
    if (this.#active.has(id)) return false;
    const msg = activateMessage(this.#ctx, id, from);
    if (!msg) return false;
    if (msg.content) {
      if (this.#heldBytes + msg.content.byteLength > this.#heldBudget) delete msg.content;
      else this.#heldBytes += msg.content.byteLength;
    }
    this.#active.set(id, msg);
    this.#onWork?.();
    const pending = msg.file.recipients.map((r, index) => ({ r, index })).filter(({ r }) => !r.done);
    log.info(`${id}: from=<${msg.file.sender}>, size=${msg.file.size}, nrcpt=${pending.length} (queue active)`);
    void schedule(this.#ctx, msg, pending.map((p) => p.index));
    return true;
  };

  #dropContent(msg: ActiveMessage): void {
    if (!msg.content) return;
    this.#heldBytes -= msg.content.byteLength;
    delete msg.content;
  }

  /** The round of `msg` is over (finish.ts): it leaves the active set, and incoming/ gets its room. */
  #finish(msg: ActiveMessage): void {
    const rescan = finishRound(this.#ctx, msg);
    this.#dropContent(msg);
    this.#active.delete(msg.id);
    if (rescan && this.#roomWanted) {
      this.#roomWanted = false;
      this.scanIncoming();
    }
  }
}
