/**
 * The showq service: `postern showq -c DIR`, started by the master, answers
 * `{"command":"showq"}` on public/showq with the queue listing, for users
 * who may not read the queue directories themselves (mailq without
 * set-gid), as Postfix's showq(8) does. It is a process of its own so that
 * listing a large queue, or a user asking in a loop, never holds up the
 * queue manager's scheduling: requests are answered one at a time, each in
 * one synchronous scan.
 *
 * The master starts it when a connection waits on public/showq; it exits
 * after max_idle without a connection or a request (src/daemon/idle-exit.ts).
 *
 * Drops to mail_owner. Anyone can connect to public/showq: a listing goes
 * only to a peer whose kernel credentials (SO_PEERCRED) pass
 * authorized_mailq_users (root and mail_owner always do), with postqueue's
 * own message for everyone else.
 */
import { log } from "../util/log.ts";
import { startDaemon } from "../daemon/skeleton.ts";
import { serveJsonLines, stopServing } from "../global/ipc/json-lines.ts";
import { serviceSocketPath } from "../global/ipc/service-sockets.ts";
import { mayUseQueue, queueAclRefusal } from "../global/queue/queue-acl.ts";
import { showQueue } from "./showq.ts";

export async function main(args: string[]): Promise<number> {
  const ctx = await startDaemon(args, { role: "showq" });
  const server = await serveJsonLines(
    serviceSocketPath(ctx.config, "showq"),
    0o666,
    async (req, peer) => {
      if (req.command !== "showq") throw new Error("unknown request");
      if (!peer) throw new Error("cannot tell who is asking: refusing to show the mail queue");
      if (peer.uid !== process.getuid!() && !(await mayUseQueue(ctx.config, "authorized_mailq_users", peer.uid))) throw new Error(queueAclRefusal("authorized_mailq_users", peer.uid));
      return showQueue(ctx.config);
    },
    ctx.listenFd,
    ctx.activity,
  );
  await ctx.stopped;
  if (ctx.stoppedBy() === "idle") await stopServing(server);
  else {
    server.close();
    log.info("stopped");
  }
  return 0;
}
