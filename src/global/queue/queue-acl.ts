/**
 * authorized_mailq_users and authorized_flush_users: who may list and flush
 * the queue besides root and the queue's owner (mail_owner), who always
 * may, as with Postfix. One decision for both sides: postqueue checks it
 * before it asks, and the services on public/ (showq, the queue manager)
 * check it again with the peer's kernel credentials, so a client that
 * skips the check gains nothing. The lists are Postfix string lists
 * (src/global/access/string-list.ts); a type:table pattern opens the table
 * only when a list names one (src/global/access/user-acl.ts).
 *
 * Trusts the uid it is given (from getuid or SO_PEERCRED) and the
 * configuration; nothing a client says.
 */
import type { Config } from "../config/config.ts";
import { getpwnam, getpwuid } from "../../util/passwd.ts";
import { checkUserAcl } from "../access/user-acl.ts";

export type QueueAclParam = "authorized_mailq_users" | "authorized_flush_users";

/** The login name of `uid`, or "uid N" when it has none (the form postqueue's messages use). */
export function queueUserName(uid: number): string {
  return getpwuid(uid)?.name ?? `uid ${uid}`;
}

/** Whether `uid` may list (authorized_mailq_users) or flush (authorized_flush_users) the queue. */
export async function mayUseQueue(config: Config, param: QueueAclParam, uid: number, mailOwnerUid = getpwnam(config.str("mail_owner"))?.uid): Promise<boolean> {
  if (uid === 0 || (mailOwnerUid !== undefined && uid === mailOwnerUid)) return true;
  return (await checkUserAcl(config, param, uid)).allowed;
}

/** Postfix's message for a refused user, the same from postqueue and from the service. */
export function queueAclRefusal(param: QueueAclParam, uid: number, userName = queueUserName(uid)): string {
  return `User ${userName}(${uid}) is not allowed to ${param === "authorized_mailq_users" ? "view" : "flush"} the mail queue`;
}
