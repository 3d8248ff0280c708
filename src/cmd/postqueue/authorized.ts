/**
 * authorized_mailq_users and authorized_flush_users: who may list and flush
 * the queue besides root and mail_owner, who always may (as with Postfix).
 * The lists are Postfix string lists (src/global/access/string-list.ts); a
 * type:table pattern opens the table only when a list names one, so the
 * common static:anyone costs nothing.
 *
 * Runs as the invoking user; the uid comes from the kernel.
 */
import type { Config } from "../../global/config/config.ts";
import type { QueueAccess } from "../../global/queue/access.ts";
import { checkUserAcl } from "../../global/access/user-acl.ts";

export async function isAuthorized(config: Config, param: "authorized_mailq_users" | "authorized_flush_users", access: QueueAccess): Promise<boolean> {
  if (access.uid === 0 || (access.mailOwnerUid !== undefined && access.uid === access.mailOwnerUid)) return true;
  const lookup = async (table: string, key: string) => {
    const { openTable } = await import("../../global/tables/open-table.ts");
    return openTable(table, config).lookup(key);
  };
  return (await checkUserAcl(config, param, access.uid, lookup)).allowed;
}
