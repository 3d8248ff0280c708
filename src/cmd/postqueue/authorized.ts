/**
 * authorized_mailq_users and authorized_flush_users: who may list and flush
 * the queue besides root and mail_owner (always allowed, as with Postfix).
 *
 * XXX: Postfix's string-list matcher (names, !negation, type:table lookups)
 * does not exist in src/global yet; until it does, only "static:anyone" (the
 * default) is understood, and any other value refuses everybody but root and
 * mail_owner, so a restriction is never silently ignored.
 */
import type { Config } from "../../global/config/config.ts";
import type { QueueAccess } from "../../global/queue/access.ts";

export type Authorization = { allowed: true } | { allowed: false; detail: string };

export function authorize(config: Config, param: "authorized_mailq_users" | "authorized_flush_users", access: QueueAccess): Authorization {
  if (access.uid === 0 || (access.mailOwnerUid !== undefined && access.uid === access.mailOwnerUid)) return { allowed: true };
  const list = config.list(param).map((v) => v.toLowerCase());
  if (list.length === 1 && list[0] === "static:anyone") return { allowed: true };
  return { allowed: false, detail: `${param} = "${config.str(param)}"; this version understands only static:anyone` };
}
