/**
 * authorized_mailq_users and authorized_flush_users for postqueue: the one
 * decision in src/global/queue/queue-acl.ts, which the services on public/
 * make again from the peer's credentials.
 *
 * Runs as the invoking user; the uid comes from the kernel.
 */
import type { Config } from "../../global/config/config.ts";
import type { QueueAccess } from "../../global/queue/access.ts";
import { mayUseQueue, type QueueAclParam } from "../../global/queue/queue-acl.ts";

export async function isAuthorized(config: Config, param: QueueAclParam, access: QueueAccess): Promise<boolean> {
  return mayUseQueue(config, param, access.uid, access.mailOwnerUid);
}
