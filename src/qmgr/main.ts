/**
 * The queue manager daemon: `postern qmgr -c DIR`, started by the master.
 * Drops to mail_owner, runs the QueueManager, and answers flush requests
 * (postqueue -f/-s/-i, sendmail -q) and queue listings for users who cannot
 * read the queue themselves (Postfix's showq) on the public socket.
 */
import { log } from "../util/log.ts";
import { startDaemon } from "../daemon/skeleton.ts";
import { serveJsonLines } from "../global/ipc/json-lines.ts";
import { qmgrSocketPath } from "../global/queue/flush-request.ts";
import { isQueueId } from "../global/queue/names.ts";
import { QueueManager } from "./queue-manager.ts";
import { showQueue } from "./showq.ts";
import { openTable } from "../global/tables/open-table.ts";

export async function main(args: string[]): Promise<number> {
  let manager: QueueManager | undefined;
  const ctx = await startDaemon(args, {
    role: "qmgr",
    onReload: (c) => manager?.setConfig(c),
    // The SMTP client's password tables hold secrets readable by root only: open them before the
    // drop to mail_owner, as Postfix does; the cached handles serve every later lookup.
    async beforeDrop(config) {
      for (const param of ["smtp_sasl_password_maps", "lmtp_sasl_password_maps"]) {
        for (const spec of config.list(param)) {
          try {
            // a first lookup makes file-backed tables read their file now, while we may
            await openTable(spec, config).lookup("postern-preload");
          } catch (err) {
            log.warn(`${param}: cannot open ${spec}: ${(err as Error).message}`);
          }
        }
      }
    },
  });
  manager = new QueueManager(ctx.config);
  manager.start();
  const server = await serveJsonLines(qmgrSocketPath(ctx.config), 0o666, async (req) => {
    if (req.command === "showq") return showQueue(ctx.config);
    if (req.command !== "flush") throw new Error("unknown request");
    if (req.kind === "all") return { moved: manager!.flush({ kind: "all" }) };
    if (req.kind === "site" && typeof req.site === "string" && /^[\w.\-:[\]]{1,255}$/.test(req.site)) return { moved: manager!.flush({ kind: "site", site: req.site }) };
    if (req.kind === "id" && typeof req.id === "string" && isQueueId(req.id)) return { moved: manager!.flush({ kind: "id", id: req.id }) };
    throw new Error("invalid flush request");
  }, ctx.listenFd);
  await ctx.stopped;
  server.close();
  await manager.stop();
  log.info("stopped");
  return 0;
}
