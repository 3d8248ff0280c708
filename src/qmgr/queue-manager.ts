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
 * Runs as mail_owner; owns incoming/, active/, deferred/ (hold/ is left
 * alone). Trusts queue files only after they decode; a corrupt one goes to
 * corrupt/.
 */
import { closeSync, existsSync, fsync, fsyncSync, openSync, renameSync, statSync, unlinkSync, utimesSync, constants as fsc } from "node:fs";
import { appendFully } from "../util/durable-file.ts";
import { join } from "node:path";
import { log } from "../util/log.ts";
import type { Config } from "../global/config/config.ts";
import type { QueueFile } from "../global/queue/format.ts";
import { appendStateRecord, listQueue, loadQueueFile, queueFilePath } from "../global/queue/store.ts";
import { encodeDelayWarnedRecord, encodeDoneRecord, encodeRecordSentRecord } from "../global/queue/format.ts";
import { appendDeliveryLog, readDeliveryLog, type DeliveryLogEntry } from "../global/queue/delivery-log.ts";
import type { DeliveryAgent, DeliveryRequest, ExpandedResult, RecipientResult } from "../global/delivery/types.ts";
import { resolveRecipient } from "../global/rewrite/resolve.ts";
import { agentFor } from "./agents.ts";
import { DestinationQueues, queueName, recipientLimit } from "./destinations.ts";
import { backoffSeconds, delayFields } from "../global/delivery/delays.ts";
import type { FlushRequest } from "../global/queue/flush-request.ts";
import { returnToSender, sendNotices } from "./notify.ts";
import { TransportMaps } from "./transport-maps.ts";
import { WakeUp } from "../daemon/wake-up.ts";
import { SERVICE_TABLE } from "../global/system/service-table.ts";

/** Messages activated per turn of the event loop (see #scanIncoming). */
const ACTIVATE_PER_TURN = 10;

/** fsync(2) in the thread pool: the event loop goes on reading replies meanwhile. */
function fsyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
}

interface ActiveMessage {
  id: string;
  file: QueueFile;
  activatedAt: number;
  jobsLeft: number;
}

/** sendmail -bv: nothing is delivered, each recipient's answer goes into the report. */
function isVerify(file: QueueFile): boolean {
  return file.attributes.verify === "yes";
}

/** sendmail -v: this attempt's outcomes also go into the report, which is sent once, after the first attempt. */
function isRecording(file: QueueFile): boolean {
  return file.attributes.record === "yes" && file.attributes.record_sent !== "yes" && !isVerify(file);
}

/** Postfix's words for an answer in verify mode, in the log and the report's Action: field. */
function verifyStatus(status: RecipientResult["status"]): string {
  return status === "sent" ? "deliverable" : "undeliverable";
}

/** The DSN action a -v report gives a real outcome. */
function recordAction(f: Omit<ExpandedResult, "address">, result: RecipientResult): string {
  if (f.status === "deferred") return "delayed";
  if (f.status === "bounced") return f.action ?? "failed";
  return f.action ?? result.action ?? "delivered";
}

/** What a test (or another caller) may put in place of the real agents and clock. */
export interface QueueManagerOptions {
  /** The delivery agent of a transport, as a function or a map (default: the real agents, ./agents.ts). */
  agents?: ((transport: string) => DeliveryAgent) | Readonly<Record<string, DeliveryAgent>>;
  /** The clock, ms since the epoch, for every time the queue manager records or decides on (default: the system clock). */
  now?: () => number;
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
  #queueDir: string;
  #active = new Map<string, ActiveMessage>();
  #destinations: DestinationQueues;
  #transportMaps: TransportMaps;
  #incoming: WakeUp;
  #deferred: WakeUp;
  #stopping = false;
  #agentFor: (transport: string) => DeliveryAgent;
  #now: () => number;

  constructor(config: Config, options: QueueManagerOptions = {}) {
    this.#config = config;
    const { agents } = options;
    this.#agentFor = agents === undefined ? (t) => agentFor(this.#config, t) : typeof agents === "function" ? agents : (t) => agentFromMap(agents, t);
    this.#now = options.now ?? Date.now;
    this.#queueDir = config.str("queue_directory");
    this.#destinations = new DestinationQueues(config);
    this.#transportMaps = new TransportMaps(config);
    const { watch, pollSeconds } = SERVICE_TABLE.qmgr.wakeUp;
    this.#incoming = new WakeUp({ watch: join(this.#queueDir, watch), pollMs: pollSeconds * 1000, pass: () => this.#scanIncoming(), what: "queue scan" });
    this.#deferred = new WakeUp({ pollMs: Math.max(1, config.time("queue_run_delay")) * 1000, pass: () => this.scanDeferred(false), what: "queue scan" });
  }

  /** A reload: new settings for the next deliveries, transport_maps opened afresh, the queue run timer reset. */
  setConfig(config: Config): void {
    this.#config = config;
    this.#destinations.setConfig(config);
    this.#transportMaps.retire();
    this.#transportMaps = new TransportMaps(config);
    this.#deferred.setPollMs(Math.max(1, config.time("queue_run_delay")) * 1000);
  }

  /** Takes over active/ (left by a previous run), then incoming/ and due deferred/ mail. */
  start(): void {
    for (const id of listQueue(this.#queueDir, "active")) this.#activate(id, "active");
    // a scan that fails (a file we may not read, a vanished directory) is logged by WakeUp, never fatal
    this.#incoming.start();
    this.#deferred.start();
  }

  /** Stops taking new work; resolves when the deliveries in flight have been recorded. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all([this.#incoming.stop(), this.#deferred.stop()]);
    while (this.#destinations.running > 0) await new Promise((r) => setTimeout(r, 50));
  }

  #room(): boolean {
    return !this.#stopping && this.#active.size < this.#config.int("qmgr_message_active_limit");
  }

  /** Asks for a scan of incoming/ on the next turn of the event loop. */
  scanIncoming(): void {
    this.#incoming.trigger();
  }

  /**
   * Activates incoming/, ACTIVATE_PER_TURN messages at a time with a turn
   * of the event loop in between, as Postfix's qmgr imports one message per
   * event: a backlog of thousands in incoming/ used to be activated in one
   * synchronous run of seconds, during which the next hops' 250s waited
   * unread, and a crash then repeated those deliveries. A change during the
   * pass makes WakeUp run another.
   */
  async #scanIncoming(): Promise<void> {
    const ids = listQueue(this.#queueDir, "incoming");
    let n = 0;
    for (const id of ids) {
      if (!this.#room()) return;
      if (!this.#activate(id, "incoming")) continue;
      if (++n % ACTIVATE_PER_TURN === 0) await new Promise((r) => setImmediate(r));
    }
  }

  /** Activates deferred mail whose retry time (mtime) has come, or all of it when `all`. */
  scanDeferred(all: boolean, wanted?: (id: string) => boolean): number {
    const now = this.#now();
    let moved = 0;
    for (const id of listQueue(this.#queueDir, "deferred")) {
      if (!this.#room()) break;
      if (wanted && !wanted(id)) continue;
      try {
        if (!all && statSync(queueFilePath(this.#queueDir, "deferred", id)).mtimeMs > now) continue;
      } catch {
        continue; // gone meanwhile (postsuper)
      }
      if (this.#activate(id, "deferred")) moved++;
    }
    return moved;
  }

  flush(request: FlushRequest): number {
    if (request.kind === "all") return this.scanDeferred(true);
    if (request.kind === "id") return this.scanDeferred(true, (id) => id === request.id);
    const site = request.site.toLowerCase().replace(/^\[|\]$/g, "");
    return this.scanDeferred(true, (id) => {
      const file = loadQueueFile(this.#queueDir, "deferred", id);
      return !!file?.recipients.some((r) => !r.done && r.address.toLowerCase().endsWith(`@${site}`));
    });
  }

  /** Moves `id` into active/ and schedules its deliveries; false when it could not. */
  #activate(id: string, from: "incoming" | "deferred" | "active"): boolean {
    if (this.#active.has(id)) return false;
    if (from !== "active") {
      try {
        renameSync(queueFilePath(this.#queueDir, from, id), queueFilePath(this.#queueDir, "active", id));
      } catch {
        return false; // taken or removed meanwhile
      }
    }
    let file: QueueFile | undefined;
    try {
      file = loadQueueFile(this.#queueDir, "active", id);
    } catch (err) {
      // unreadable (not corrupt): leave it in active/, where the next start tries again
      log.warn(`${id}: cannot read the queue file: ${(err as Error).message}`);
      return false;
    }
    if (!file) return false;
    // a new attempt: the reasons of the previous one are no longer current
    try {
      unlinkSync(join(this.#queueDir, "defer", id));
    } catch {}
    const msg: ActiveMessage = { id, file, activatedAt: this.#now(), jobsLeft: 0 };
    this.#active.set(id, msg);
    const pending = file.recipients.map((r, index) => ({ r, index })).filter(({ r }) => !r.done);
    log.info(`${id}: from=<${file.sender}>, size=${file.content.length}, nrcpt=${pending.length} (queue active)`);
    void this.#schedule(msg, pending.map((p) => p.index));
    return true;
  }

  async #schedule(msg: ActiveMessage, indexes: number[]): Promise<void> {
    const groups = new Map<string, { transport: string; nexthop: string; recipients: DeliveryRequest["recipients"] }>();
    const maps = this.#transportMaps;
    const transportLookup = maps.acquire();
    try {
      for (const index of indexes) {
        const r = msg.file.recipients[index]!;
        const res = await resolveRecipient(this.#config, r.address, transportLookup);
        const key = `${res.transport}\0${res.nexthop}`;
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { transport: res.transport, nexthop: res.nexthop, recipients: [] }));
        g.recipients.push({ index, address: res.address, original: r.original ?? r.address, orcpt: r.orcpt, notify: r.notify });
      }
    } catch (err) {
      log.error(`${msg.id}: cannot resolve recipients: ${(err as Error).message}; deferring`);
      for (const index of indexes) this.#record(msg, { index, status: "deferred", dsn: "4.3.5", reason: "address resolution failed", relay: "none" }, "qmgr", this.#now());
      this.#finish(msg);
      return;
    } finally {
      maps.release();
    }
    const jobs: Array<{ transport: string; nexthop: string; recipients: DeliveryRequest["recipients"] }> = [];
    for (const g of groups.values()) {
      const limit = recipientLimit(this.#config, g.transport);
      for (let i = 0; i < g.recipients.length; i += limit) jobs.push({ ...g, recipients: g.recipients.slice(i, i + limit) });
    }
    msg.jobsLeft = jobs.length;
    if (jobs.length === 0) {
      this.#finish(msg);
      return;
    }
    for (const job of jobs) {
      // with one recipient per delivery the queue is the recipient without its extension, as in
      // Postfix's queue manager: one user's user+N addresses share one concurrency limit
      const destination = queueName(this.#config, job.transport, job.nexthop, job.recipients[0]!.address);
      this.#destinations.add(job.transport, destination, async () => {
        // Held open for the whole delivery, as Postfix's delivery agents hold the queue file: when
        // postsuper moves the message meanwhile (hold, requeue), the D records still reach the file.
        let queueFd: number;
        try {
          queueFd = openSync(queueFilePath(this.#queueDir, "active", msg.id), fsc.O_WRONLY | fsc.O_APPEND);
        } catch (err) {
          // postsuper took the message out of active/ before this delivery started: leave it be
          if ((err as NodeJS.ErrnoException).code !== "ENOENT") log.error(`${msg.id}: cannot open the queue file: ${(err as Error).message}`);
          if (--msg.jobsLeft === 0) this.#finish(msg);
          return;
        }
        try {
          await this.#runJob(msg, job, queueFd);
        } finally {
          closeSync(queueFd);
        }
        if (--msg.jobsLeft === 0) this.#finish(msg);
      });
    }
  }

  /** One delivery request to the transport's agent; every recipient's outcome recorded before it returns. */
  async #runJob(msg: ActiveMessage, job: { transport: string; nexthop: string; recipients: DeliveryRequest["recipients"] }, queueFd: number): Promise<void> {
    const started = this.#now();
    const request: DeliveryRequest = {
      queueId: msg.id,
      queueFile: queueFilePath(this.#queueDir, "active", msg.id),
      sender: msg.file.sender,
      arrivalTime: msg.file.arrivalTime,
      transport: job.transport,
      nexthop: job.nexthop,
      recipients: job.recipients,
      attributes: msg.file.attributes,
      ...(isVerify(msg.file) ? { verify: true } : {}),
    };
    // Each result is recorded the moment the agent has it (SMTP: on the 250 to the end of data),
    // as Postfix's smtp(8) marks a recipient done right after that reply: the D record is written
    // at once, so a kill -9 after it repeats nothing (the page cache keeps the write); only a crash
    // of the machine before the fsync below can repeat this delivery.
    const pending = new Set(job.recipients.map((r) => r.index));
    request.onResult = (result) => {
      if (!pending.delete(result.index)) return;
      this.#record(msg, result, job.transport, started, queueFd, true);
    };
    let results: RecipientResult[];
    try {
      results = await this.#agentFor(job.transport).deliver(request);
    } catch (err) {
      results = [];
      log.error(`${msg.id}: ${job.transport} agent failed: ${(err as Error).message}`);
    }
    const byIndex = new Map(results.map((r) => [r.index, r]));
    for (const rcpt of job.recipients) {
      if (!pending.delete(rcpt.index)) continue;
      const result = byIndex.get(rcpt.index) ?? { index: rcpt.index, status: "deferred" as const, dsn: "4.3.0", reason: "delivery agent returned no result", relay: "none" };
      this.#record(msg, result, job.transport, started, queueFd, true);
    }
    // One fsync for the D records of the whole delivery (Postfix flushes them without any): each
    // recipient's log entries were fsynced before its D record was written, and a crash of the
    // machine before this point repeats at most this delivery, never loses a recipient. Off the
    // event loop: a synchronous fsync here held up the replies of every other delivery in flight,
    // and so widened their window between the next hop's 250 and the record.
    try {
      await fsyncAsync(queueFd);
    } catch (err) {
      log.error(`${msg.id}: cannot sync the delivery records: ${(err as Error).message}`);
    }
  }

  /**
   * Records one recipient's outcome durably, then logs it as the delivery
   * agent's lines: one per final delivery when the agent expanded the
   * recipient (aliases, .forward), as Postfix's local(8) logs them.
   */
  #record(msg: ActiveMessage, result: RecipientResult, transport: string, started: number, queueFd?: number, syncLater = false): void {
    const rcpt = msg.file.recipients[result.index]!;
    const path = queueFilePath(this.#queueDir, "active", msg.id);
    const finals = result.expanded?.length
      ? result.expanded
      : [{ address: rcpt.address, status: result.status, dsn: result.dsn, reason: result.reason, action: result.action }];
    const now = this.#now();
    const entry = (address: string, status: string, reason: string, action: string) => ({
      recipient: address, ...(rcpt.orcpt ? { orcpt: rcpt.orcpt } : {}), status, action, time: now, reason,
    });
    const original = rcpt.original ?? rcpt.address;
    // trace/ID: what the -bv and -v reports list, each final address with the relay and the address as received
    const traceEntry = (f: (typeof finals)[number], action: string): DeliveryLogEntry => ({ ...entry(f.address, f.dsn, f.reason, action), original, relay: result.relay });
    const verify = isVerify(msg.file);
    try {
      if (verify) {
        // an answer, whatever it is, is final: no bounce, no retry, nothing but the report
        appendDeliveryLog(this.#queueDir, "trace", msg.id, finals.map((f) => traceEntry(f, verifyStatus(f.status))));
        if (queueFd === undefined) appendStateRecord(path, encodeDoneRecord(result.index, now));
        else {
          appendFully(queueFd, encodeDoneRecord(result.index, now));
          if (!syncLater) fsyncSync(queueFd);
        }
        rcpt.done = true;
      } else if (result.status === "deferred") {
        if (isRecording(msg.file)) appendDeliveryLog(this.#queueDir, "trace", msg.id, finals.map((f) => traceEntry(f, recordAction(f, result))));
        appendDeliveryLog(this.#queueDir, "defer", msg.id, [entry(rcpt.address, result.dsn, result.reason, "delayed")]);
      } else {
        // a next hop that took NOTIFY=SUCCESS sends the success notice itself; Postfix then sends none
        const wantsSuccess = (f: (typeof finals)[number]) => f.status === "sent" && !!rcpt.notify?.includes("SUCCESS") && !result.dsnPassedOn;
        const recording = isRecording(msg.file);
        if (recording) {
          // with sendmail -v, Postfix puts a success notice into the -v report: the entry a second time, no separate notice
          const traced = finals.flatMap((f) => {
            const e = traceEntry(f, recordAction(f, result));
            return wantsSuccess(f) ? [e, e] : [e];
          });
          appendDeliveryLog(this.#queueDir, "trace", msg.id, traced);
        }
        // original= and relay= let the report say "(expanded from <alias>)" and "delivery via RELAY:", as Postfix's do
        const reports = finals
          .filter((f) => f.status === "bounced" || (wantsSuccess(f) && !recording))
          .map((f) => ({ ...entry(f.address, f.dsn, f.reason, f.status === "bounced" ? f.action ?? "failed" : f.action ?? result.action ?? "delivered"), original, relay: result.relay }));
        if (reports.length) appendDeliveryLog(this.#queueDir, "bounce", msg.id, reports);
        if (queueFd === undefined) appendStateRecord(path, encodeDoneRecord(result.index, now));
        else {
          appendFully(queueFd, encodeDoneRecord(result.index, now));
          if (!syncLater) fsyncSync(queueFd);
        }
        rcpt.done = true;
      }
    } catch (err) {
      log.error(`${msg.id}: cannot record the outcome for <${rcpt.address}>: ${(err as Error).message}`);
    }
    const times = delayFields({ arrival: msg.file.arrivalTime, activated: msg.activatedAt, started, finished: now }, this.#config.int("delay_logging_resolution_limit"));
    const tag = `${this.#config.str("syslog_name")}/${transport}`;
    for (const f of finals) {
      const orig = original !== f.address ? `, orig_to=<${original}>` : "";
      const status = verify ? verifyStatus(f.status) : f.status;
      log.write("info", `${msg.id}: to=<${f.address}>${orig}, relay=${result.relay}, ${times}, dsn=${f.dsn}, status=${status} (${f.reason})`, tag);
    }
  }

  /** All deliveries of this round are recorded: notify, then remove or defer the message. */
  #finish(msg: ActiveMessage): void {
    const path = queueFilePath(this.#queueDir, "active", msg.id);
    const now = this.#now();
    if (!existsSync(path)) {
      // postsuper moved (hold, requeue) or removed it during the round; the outcomes are in the file
      // wherever it went. Reports for what bounced go out now, not again when it is released.
      try {
        returnToSender(this.#config, msg.id, msg.file, now);
      } catch (err) {
        log.error(`${msg.id}: cannot create the delivery status notification: ${(err as Error).message}`);
      }
      this.#active.delete(msg.id);
      this.scanIncoming();
      return;
    }
    const open = msg.file.recipients.filter((r) => !r.done);
    const lifetime = (msg.file.sender === "" ? this.#config.time("bounce_queue_lifetime") : this.#config.time("maximal_queue_lifetime")) * 1000;
    const forcedExpire = msg.file.attributes.expire === "yes";
    if (open.length && (forcedExpire || now - msg.file.arrivalTime >= lifetime)) {
      // expired: the still-deferred recipients fail with their latest reason
      const latest = new Map(readDeliveryLog(this.#queueDir, "defer", msg.id).map((e) => [e.recipient, e]));
      for (const [index, r] of msg.file.recipients.entries()) {
        if (r.done) continue;
        const last = latest.get(r.address);
        try {
          appendDeliveryLog(this.#queueDir, "bounce", msg.id, [
            { recipient: r.address, ...(r.orcpt ? { orcpt: r.orcpt } : {}), status: last?.status ?? "4.7.0", action: "failed", time: now, reason: last?.reason ?? (forcedExpire ? "message is administratively expired" : "message expired") },
          ]);
          appendStateRecord(path, encodeDoneRecord(index, now));
          r.done = true;
        } catch (err) {
          log.error(`${msg.id}: cannot record the expiry of <${r.address}>: ${(err as Error).message}`);
        }
      }
      log.info(`${msg.id}: from=<${msg.file.sender}>, status=expired, returned to sender`);
    }
    try {
      returnToSender(this.#config, msg.id, msg.file, now);
    } catch (err) {
      log.error(`${msg.id}: cannot create the delivery status notification: ${(err as Error).message}; will retry`);
      // keep the bounce log; the message stays queued so the notice is not lost
      this.#defer(msg, path, now);
      return;
    }
    if (!this.#sendTraceReport(msg, path, now)) {
      this.#defer(msg, path, now);
      return;
    }
    if (!msg.file.recipients.every((r) => r.done)) this.#warnDelay(msg, path, now);
    if (msg.file.recipients.every((r) => r.done)) {
      for (const q of ["defer", "bounce", "trace"]) {
        try {
          unlinkSync(join(this.#queueDir, q, msg.id));
        } catch {}
      }
      try {
        unlinkSync(path);
      } catch {}
      this.#active.delete(msg.id);
      log.info(`${msg.id}: removed`);
    } else {
      this.#defer(msg, path, now);
    }
    this.scanIncoming();
  }

  /**
   * sendmail -bv and -v: the "Mail Delivery Status Report" from trace/ID
   * (Postfix's trace_flush), after the bounce notices of the round. A verify
   * report waits until every recipient has its answer; a record report goes
   * after the first attempt, and a V record keeps later attempts from
   * sending another. False when it could not be sent: the message stays
   * queued with its trace log, and the next attempt tries again.
   */
  #sendTraceReport(msg: ActiveMessage, path: string, now: number): boolean {
    const verify = isVerify(msg.file);
    if (!verify && !isRecording(msg.file)) return true;
    const finished = msg.file.recipients.every((r) => r.done);
    if (verify && !finished) return true;
    try {
      const entries = readDeliveryLog(this.#queueDir, "trace", msg.id);
      if (entries.length) sendNotices(this.#config, msg.id, msg.file, verify ? "verify" : "record", entries, now);
      if (!finished) appendStateRecord(path, encodeRecordSentRecord(now));
      msg.file.attributes.record_sent = "yes";
    } catch (err) {
      log.error(`${msg.id}: cannot send the delivery status report: ${(err as Error).message}; will retry`);
      return false;
    }
    try {
      unlinkSync(join(this.#queueDir, "trace", msg.id));
    } catch {}
    return true;
  }

  /** Once per message, after delay_warning_time: the delay notice from the current defer/ID reasons. */
  #warnDelay(msg: ActiveMessage, path: string, now: number): void {
    const after = this.#config.time("delay_warning_time") * 1000;
    if (after <= 0 || msg.file.attributes.delay_warned === "yes" || now - msg.file.arrivalTime < after) return;
    const entries = readDeliveryLog(this.#queueDir, "defer", msg.id);
    if (!entries.length) return;
    try {
      sendNotices(this.#config, msg.id, msg.file, "delay", entries, now);
      appendStateRecord(path, encodeDelayWarnedRecord(now));
      msg.file.attributes.delay_warned = "yes";
    } catch (err) {
      log.error(`${msg.id}: cannot send the delay notice: ${(err as Error).message}; will retry`);
    }
  }

  #defer(msg: ActiveMessage, path: string, now: number): void {
    const age = (now - msg.file.arrivalTime) / 1000;
    const wait = backoffSeconds(age, this.#config.time("minimal_backoff_time"), this.#config.time("maximal_backoff_time"));
    const next = new Date(now + wait * 1000);
    try {
      utimesSync(path, next, next);
      renameSync(path, queueFilePath(this.#queueDir, "deferred", msg.id));
    } catch (err) {
      if (existsSync(path)) log.error(`${msg.id}: cannot move to deferred/: ${(err as Error).message}`);
    }
    this.#active.delete(msg.id);
  }
}
