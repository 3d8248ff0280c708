/**
 * The queue manager daemon: `postern qmgr -c DIR`, started by the master
 * on demand (a queue file in incoming/, active/ or deferred/, or a
 * connection on public/qmgr); it leaves after max_idle without work, and
 * only when none of those queues holds a file, so an idle system does not
 * keep it (issue 16: idle memory). Drops to mail_owner, runs the QueueManager, and answers flush requests
 * (postqueue -f/-s/-i, sendmail -q, smtpd's ETRN) on the public socket
 * public/qmgr. Anyone can connect there: a flush is done only for a peer
 * whose kernel credentials (SO_PEERCRED) pass authorized_flush_users, as
 * postqueue checks before it asks. Queue listings are not made here but by
 * the showq service (src/showq/), so a user looping on mailq cannot hold
 * up the scheduling loop.
 */
import { log } from "../util/log.ts";
import { startDaemon } from "../daemon/skeleton.ts";
import { serveJsonLines } from "../global/ipc/json-lines.ts";
import { mayUseQueue, queueAclRefusal } from "../global/queue/queue-acl.ts";
import { qmgrSocketPath } from "../global/queue/flush-request.ts";
import { isQueueId } from "../global/queue/names.ts";
import { QueueManager } from "./queue-manager.ts";
import { keepTable, openTable } from "../global/tables/open-table.ts";

export async function main(args: string[]): Promise<number> {
  let manager: QueueManager | undefined;
  const ctx = await startDaemon(args, {
    role: "qmgr",
    jit: "reluctant",
    // started on demand: it leaves after max_idle only when no queue file waits for it
    mayStopIdle: () => manager !== undefined && !manager.holdsWork(),
    onReload: (c) => manager?.setConfig(c),
    // The SMTP client's password tables hold secrets readable by root only: open them before the
    // drop to mail_owner, as Postfix does; the cached handles serve every later lookup.
    async beforeDrop(config) {
      for (const param of ["smtp_sasl_password_maps", "lmtp_sasl_password_maps"]) {
        for (const spec of config.list(param)) {
          try {
            // a first lookup makes file-backed tables read their file now, while we may
            // kept through reloads: mail_owner could not open it again
            await keepTable(openTable(spec, config)).lookup("postern-preload");
          } catch (err) {
            log.warn(`${param}: cannot open ${spec}: ${(err as Error).message}`);
          }
        }
      }
    },
  });
  manager = new QueueManager(ctx.config, { onWork: () => ctx.activity?.worked() });
  manager.start();
  const server = await serveJsonLines(qmgrSocketPath(ctx.config), 0o666, async (req, peer) => {
    if (req.command !== "flush") throw new Error("unknown request");
    if (!peer) throw new Error("cannot tell who is asking: refusing to flush the mail queue");
    // the queue's owner is this process's user (mail_owner, or the user of an unprivileged instance)
    if (peer.uid !== process.getuid!() && !(await mayUseQueue(ctx.config, "authorized_flush_users", peer.uid))) throw new Error(queueAclRefusal("authorized_flush_users", peer.uid));
    if (req.kind === "all") return { moved: manager!.flush({ kind: "all" }) };
    if (req.kind === "site" && typeof req.site === "string" && /^[\w.\-:[\]]{1,255}$/.test(req.site)) return { moved: manager!.flush({ kind: "site", site: req.site }) };
    if (req.kind === "id" && typeof req.id === "string" && isQueueId(req.id)) return { moved: manager!.flush({ kind: "id", id: req.id }) };
    throw new Error("invalid flush request");
  }, ctx.listenFd, ctx.activity);
  await ctx.stopped;
  server.close();
  await manager.stop();
  if (ctx.stoppedBy() !== "idle") log.info("stopped");
  return 0;
}
