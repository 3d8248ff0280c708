/**
 * Scheduling (Postfix's qmgr_message.c resolve and sort, qmgr_deliver.c):
 * the recipients of an activated message are resolved to a transport and
 * next hop, grouped into delivery requests of at most the transport's
 * recipient limit, and queued per destination (destinations.ts); each
 * request runs with the queue file held open, goes to the transport's
 * agent, and has every recipient's outcome recorded (record.ts) before the
 * round can finish.
 *
 * Two queue-file attributes change the routing, as Postfix's FILT and RDR
 * records do: `redirect` (a REDIRECT action) replaces the recipients by one
 * address, and otherwise `filter` (content_filter or a FILTER action) sends
 * every recipient, unresolved, to the content filter's transport and next
 * hop; the filter re-injects the message, which is then delivered as a new
 * one. A filter that is down defers like any next hop.
 *
 * Runs in the queue manager, as mail_owner. The recipients come from a
 * decoded queue file; the agents' answers are bounded by the request (a
 * result for a recipient not in it, or a second one, is ignored).
 */
import { closeSync, fsyncSync, openSync, constants as fsc } from "node:fs";
import { fsyncInPool } from "../util/durable-file.ts";
import { log } from "../util/log.ts";
import type { DeliveryAgent, DeliveryRequest, RecipientResult } from "../global/delivery/types.ts";
import { queueFilePath } from "../global/queue/store.ts";
import { resolveRecipient } from "../global/rewrite/resolve.ts";
import { holdConfig } from "../global/config/generation.ts";
import { type DestinationQueues, queueName, recipientLimit } from "./destinations.ts";
import { type ActiveMessage, isVerify, type QmgrContext } from "./message.ts";
import { completePasses, withoutPasses } from "./pass-on.ts";
import { recordOutcome, writeDoneRecord } from "./record.ts";
import type { TransportMaps } from "./transport-maps.ts";

/** What scheduling uses besides the shared context; the coordinator (queue-manager.ts) provides it. */
export interface Scheduler extends QmgrContext {
  /** The current transport_maps (a reload replaces them). */
  readonly transportMaps: TransportMaps;
  readonly destinations: DestinationQueues;
  agentFor(transport: string): DeliveryAgent;
  /** Called once every delivery of the message's round is recorded (finish.ts). */
  finish(msg: ActiveMessage): void;
  /** Work that goes on after a delivery has left its destination's slot (the fsync of its D records); stop() waits for it. */
  background(work: Promise<void>): void;
  /** The message's held content is not needed (no delivery of its round sends it): its budget goes back. */
  dropContent(msg: ActiveMessage): void;
}

/** One delivery request: recipients of one message with the same transport and next hop. */
interface Job {
  transport: string;
  nexthop: string;
  recipients: DeliveryRequest["recipients"];
}

/**
 * The content filter's route (Postfix's qmgr_message_resolve): its transport, its next hop or else
 * default_filter_nexthop, else the recipient's domain, else myhostname; the address unchanged.
 */
export function filterRoute(ctx: QmgrContext, filter: string, address: string): { transport: string; nexthop: string; address: string } {
  const colon = filter.indexOf(":");
  const transport = colon < 0 ? filter : filter.slice(0, colon);
  let nexthop = colon < 0 ? "" : filter.slice(colon + 1);
  if (!nexthop) nexthop = ctx.config.str("default_filter_nexthop");
  if (!nexthop) {
    const at = address.lastIndexOf("@");
    nexthop = at >= 0 && at < address.length - 1 ? address.slice(at + 1) : ctx.config.str("myhostname");
  }
  return { transport, nexthop, address };
}

/**
 * REDIRECT (Postfix's qmgr_message_resolve): the first recipient left becomes the redirect
 * address (the one it replaces stays its original recipient); the others are finished without a
 * delivery or a notice, as Postfix's queue manager drops them.
 */
function redirectRecipients(ctx: QmgrContext, msg: ActiveMessage, indexes: number[], redirect: string): number[] {
  const [first, ...rest] = indexes;
  if (first === undefined) return [];
  const r = msg.file.recipients[first]!;
  if (r.address !== redirect) {
    r.original ??= r.address;
    r.address = redirect;
  }
  const path = queueFilePath(ctx.queueDir, "active", msg.id);
  for (const index of rest) {
    writeDoneRecord({ path }, index, ctx.now());
    msg.file.recipients[index]!.done = true;
  }
  return [first];
}

/** Resolves the recipients `indexes` of `msg` and queues their deliveries; a resolution failure defers them all. */
export async function schedule(ctx: Scheduler, msg: ActiveMessage, indexes: number[]): Promise<void> {
  const groups = new Map<string, Job>();
  // one configuration for the whole round; a reload meanwhile leaves its tables open until the round ends
  const config = ctx.config;
  const releaseConfig = holdConfig(config);
  const transportLookup = ctx.transportMaps.lookup();
  try {
    const redirect = msg.file.attributes.redirect;
    if (redirect !== undefined) indexes = redirectRecipients(ctx, msg, indexes, redirect);
    const filter = isVerify(msg.file) ? undefined : msg.file.attributes.filter;
    for (const index of indexes) {
      const r = msg.file.recipients[index]!;
      // a content filter takes the message instead of the recipients' own transports (not a redirected one: REDIRECT overrides all else)
      const res = filter && redirect === undefined ? filterRoute(ctx, filter, r.address) : await resolveRecipient(config, r.address, transportLookup);
      const key = `${res.transport}\0${res.nexthop}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { transport: res.transport, nexthop: res.nexthop, recipients: [] }));
      g.recipients.push({ index, address: res.address, original: r.original ?? r.address, orcpt: r.orcpt, notify: r.notify });
    }
  } catch (err) {
    log.error(`${msg.id}: cannot resolve recipients: ${(err as Error).message}; deferring`);
    for (const index of indexes) recordOutcome(ctx, msg, { index, status: "deferred", dsn: "4.3.5", reason: "address resolution failed", relay: "none" }, "qmgr", ctx.now());
    ctx.finish(msg);
    return;
  } finally {
    releaseConfig();
  }
  const jobs: Job[] = [];
  for (const g of groups.values()) {
    const limit = recipientLimit(ctx.config, g.transport);
    for (let i = 0; i < g.recipients.length; i += limit) jobs.push({ ...g, recipients: g.recipients.slice(i, i + limit) });
  }
  msg.jobsLeft = jobs.length;
  // only an in-process agent (smtp, lmtp) sends the content activation read; a round of local
  // deliveries (the local service reads the file) gives it back now, not when the round ends
  if (msg.content && !jobs.some((j) => ctx.agentFor(j.transport).readsContent)) ctx.dropContent(msg);
  if (jobs.length === 0) {
    ctx.finish(msg);
    return;
  }
  for (const job of jobs) {
    // with one recipient per delivery the queue is the recipient without its extension, as in
    // Postfix's queue manager: one user's user+N addresses share one concurrency limit
    const destination = queueName(ctx.config, job.transport, job.nexthop, job.recipients[0]!.address);
    ctx.destinations.add(job.transport, destination, async () => {
      // Held open for the whole delivery, as Postfix's delivery agents hold the queue file: when
      // postsuper moves the message meanwhile (hold, requeue), the D records still reach the file.
      let queueFd: number;
      try {
        queueFd = openSync(queueFilePath(ctx.queueDir, "active", msg.id), fsc.O_WRONLY | fsc.O_APPEND);
      } catch (err) {
        // postsuper took the message out of active/ before this delivery started: leave it be
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") log.error(`${msg.id}: cannot open the queue file: ${(err as Error).message}`);
        if (--msg.jobsLeft === 0) ctx.finish(msg);
        return;
      }
      let synced: Promise<void>;
      try {
        ({ synced } = await runJob(ctx, msg, job, queueFd));
      } catch (err) {
        closeSync(queueFd);
        throw err;
      }
      // Every outcome is recorded: the slot is free for the destination's next delivery, which
      // need not wait for this one's fsync (a disk's worth of latency per delivery when a
      // destination's concurrency is what limits it); the message finishes only after the fsync.
      ctx.background(
        synced.then(() => {
          closeSync(queueFd);
          if (--msg.jobsLeft === 0) ctx.finish(msg);
        }),
      );
    });
  }
}

/**
 * One delivery request to the transport's agent; every recipient's outcome recorded before it
 * returns, with the fsync of the delivery's D records under way (`synced`, which never rejects).
 */
async function runJob(ctx: Scheduler, msg: ActiveMessage, job: Job, queueFd: number): Promise<{ synced: Promise<void> }> {
  const started = ctx.now();
  const request: DeliveryRequest = {
    queueId: msg.id,
    queueFile: queueFilePath(ctx.queueDir, "active", msg.id),
    sender: msg.file.sender,
    arrivalTime: msg.file.arrivalTime,
    transport: job.transport,
    nexthop: job.nexthop,
    recipients: job.recipients,
    attributes: msg.file.attributes,
    ...(isVerify(msg.file) ? { verify: true } : {}),
    // the content activation read (a small file), while the round holds it
    ...(msg.content ? { content: () => msg.content } : {}),
  };
  // Each result is recorded the moment the agent has it (SMTP: on the 250 to the end of data),
  // as Postfix's smtp(8) marks a recipient done right after that reply: the D record is written
  // at once, so a kill -9 after it repeats nothing (the page cache keeps the write); only a crash
  // of the machine before the fsync below can repeat this delivery.
  const pending = new Set(job.recipients.map((r) => r.index));
  request.onResult = (result) => {
    if (!pending.delete(result.index)) return;
    recordOutcome(ctx, msg, result, job.transport, started, queueFd, true);
  };
  let results: RecipientResult[];
  try {
    results = await ctx.agentFor(job.transport).deliver(request);
  } catch (err) {
    results = [];
    log.error(`${msg.id}: ${job.transport} agent failed: ${(err as Error).message}`);
  }
  const byIndex = new Map(results.map((r) => [r.index, r]));
  for (const rcpt of job.recipients) {
    if (!pending.has(rcpt.index)) continue;
    let result = byIndex.get(rcpt.index) ?? { index: rcpt.index, status: "deferred" as const, dsn: "4.3.0", reason: "delivery agent returned no result", relay: "none" };
    // local(8) handed addresses to another transport (mailbox_transport, fallback_transport): deliver them first
    if (result.passOn !== undefined) result = job.transport === "local" ? await completePasses((t) => ctx.agentFor(t), request, result) : withoutPasses(result);
    if (!pending.delete(rcpt.index)) continue;
    recordOutcome(ctx, msg, result, job.transport, started, queueFd, true);
  }
  // One fsync for the D records of the whole delivery (Postfix flushes them without any): each
  // recipient's log entries were fsynced before its D record was written, and a crash of the
  // machine before it completes repeats at most this delivery, never loses a recipient. Off the
  // event loop while other deliveries are in flight: a synchronous fsync here held up their
  // replies, and so widened their window between the next hop's 250 and the record, and a
  // delivery waiting for this one's slot would wait for the disk too. A delivery that is the
  // only one running, with none waiting, has nobody to hold up: its fsync runs here, without the
  // two hand-overs to a pool thread and back (a wake-up each way, the costliest steps of a
  // delivery on a virtual machine).
  const failed = (err: unknown) => log.error(`${msg.id}: cannot sync the delivery records: ${(err as Error).message}`);
  if (ctx.destinations.running > 1 || ctx.destinations.waiting > 0) return { synced: fsyncInPool(queueFd).catch(failed) };
  try {
    fsyncSync(queueFd);
  } catch (err) {
    failed(err);
  }
  return { synced: Promise.resolve() };
}
