/**
 * Scanning and activation (Postfix's qmgr_scan.c, qmgr_active.c): which
 * messages of incoming/ and deferred/ enter active/, how fast, and what
 * entering means: one rename into active/, the queue file decoded (its
 * envelope kept; its content only when the file was small enough to be
 * read whole, for the delivery: see loadQueueEnvelopeAndSmallContent), the
 * reasons of the previous attempt (defer/ID) dropped (new mail from
 * incoming/ has none, and which logs it gets is tracked from there on). Incoming mail is
 * activated a few messages per turn of the event loop; deferred mail when
 * its retry time (the file's mtime) has come, or at once on a flush.
 *
 * Runs in the queue manager, as mail_owner. A queue file is trusted only
 * after it decodes: a corrupt one goes to corrupt/ (loadQueueFile); a file
 * that vanishes between the listing and the rename was taken by postsuper.
 */
import { renameSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { log } from "../util/log.ts";
import type { FlushRequest } from "../global/queue/flush-request.ts";
import { type EnvelopeRead, listQueue, loadQueueEnvelopeAndSmallContent, loadQueueFile, queueFilePath } from "../global/queue/store.ts";
import type { ActiveMessage, QmgrContext } from "./message.ts";

/** Messages activated per turn of the event loop (see scanIncoming). */
export const ACTIVATE_PER_TURN = 10;

/** The queues a message is activated from; "active" is a message a previous run left there. */
export type ActivateFrom = "incoming" | "deferred" | "active";

/**
 * Moves `id` into active/ and decodes it; undefined when it could not (taken
 * or removed meanwhile, unreadable, corrupt). Unreadable files stay in
 * active/, where the next start tries again.
 */
export function activateMessage(ctx: QmgrContext, id: string, from: ActivateFrom): ActiveMessage | undefined {
  if (from !== "active") {
    try {
      renameSync(queueFilePath(ctx.queueDir, from, id), queueFilePath(ctx.queueDir, "active", id));
    } catch {
      return undefined; // taken or removed meanwhile
    }
  }
  let read: EnvelopeRead | undefined;
  try {
    read = loadQueueEnvelopeAndSmallContent(ctx.queueDir, "active", id);
  } catch (err) {
    // unreadable (not corrupt): leave it in active/, where the next start tries again
    log.warn(`${id}: cannot read the queue file: ${(err as Error).message}`);
    return undefined;
  }
  if (!read) return undefined;
  const { envelope: file, content } = read;
  const held = content ? { content } : {};
  if (from === "incoming") {
    // new mail has no logs, but for pickup's bounce/ID of a message it rejected (its recipients are done)
    return { id, file, ...held, activatedAt: ctx.now(), jobsLeft: 0, logs: new Set(file.recipients.some((r) => r.done) ? ["bounce"] : []) };
  }
  // a new attempt: the reasons of the previous one are no longer current
  try {
    unlinkSync(join(ctx.queueDir, "defer", id));
  } catch {}
  return { id, file, ...held, activatedAt: ctx.now(), jobsLeft: 0 };
}

/**
 * Activates incoming/, ACTIVATE_PER_TURN messages at a time with a turn of
 * the event loop in between, as Postfix's qmgr imports one message per
 * event: a backlog of thousands in incoming/ used to be activated in one
 * synchronous run of seconds, during which the next hops' 250s waited
 * unread, and a crash then repeated those deliveries. Stops when there is
 * no room in active/. `names` (queue IDs the directory watch reported)
 * replaces the listing of incoming/: a name no longer there fails its rename
 * into active/ and is skipped, as a file taken between listing and rename is.
 */
export async function scanIncoming(ctx: QmgrContext, room: () => boolean, activate: (id: string, from: ActivateFrom) => boolean, names?: readonly string[]): Promise<void> {
  const ids = names ?? listQueue(ctx.queueDir, "incoming");
  let n = 0;
  for (const id of ids) {
    if (!room()) return;
    if (!activate(id, "incoming")) continue;
    if (++n % ACTIVATE_PER_TURN === 0) await new Promise((r) => setImmediate(r));
  }
}

/** Activates deferred mail whose retry time (mtime) has come, or all of it when `all`; returns how many. */
export function scanDeferred(ctx: QmgrContext, room: () => boolean, activate: (id: string, from: ActivateFrom) => boolean, all: boolean, wanted?: (id: string) => boolean): number {
  const now = ctx.now();
  let moved = 0;
  for (const id of listQueue(ctx.queueDir, "deferred")) {
    if (!room()) break;
    if (wanted && !wanted(id)) continue;
    try {
      if (!all && statSync(queueFilePath(ctx.queueDir, "deferred", id)).mtimeMs > now) continue;
    } catch {
      continue; // gone meanwhile (postsuper)
    }
    if (activate(id, "deferred")) moved++;
  }
  return moved;
}

/** The deferred mail a flush request names (undefined: all of it). */
export function flushSelection(ctx: QmgrContext, request: FlushRequest): ((id: string) => boolean) | undefined {
  if (request.kind === "all") return undefined;
  if (request.kind === "id") return (id) => id === request.id;
  const site = request.site.toLowerCase().replace(/^\[|\]$/g, "");
  return (id) => {
    const file = loadQueueFile(ctx.queueDir, "deferred", id);
    return !!file?.recipients.some((r) => !r.done && r.address.toLowerCase().endsWith(`@${site}`));
  };
}
