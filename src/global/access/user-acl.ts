/**
 * Postfix's user access lists (authorized_submit_users for sendmail,
 * authorized_mailq_users and authorized_flush_users for postqueue): the
 * real uid's login name is matched against the list (string-list.ts). A
 * `type:table` in the list is looked up with the login name as the key, as
 * Postfix does; the table layer loads only when a list names a table, so
 * sendmail's usual `static:anyone` costs nothing more.
 *
 * Runs in the commands, as the invoking user (who must be able to read a
 * table the list names, as with Postfix's sendmail), in pickup as
 * mail_owner, and in showq and the queue manager for the queue lists; the
 * uid comes from the kernel, the list from the configuration.
 */
import type { Config } from "../config/config.ts";
import { getpwuid } from "../../util/passwd.ts";
import { matchStringList, type StringListOptions } from "./string-list.ts";

export interface UserAclResult {
  allowed: boolean;
  /** The login name that was checked, or the uid in decimal when it has none. */
  user: string;
  uid: number;
}

/**
 * Looks `key` up in a table the list names, opened through the one table layer (its cache and its reload
 * rules); a daemon's reload meanwhile closes the table only once the lookup is done. Both modules load on
 * the first table a list names, so sendmail's usual static:anyone loads neither.
 */
function tableLookup(config: Config): NonNullable<StringListOptions["lookup"]> {
  return async (table, key) => {
    const [{ openTable }, { holdConfig }] = await Promise.all([import("../tables/open-table.ts"), import("../config/generation.ts")]);
    const release = holdConfig(config);
    try {
      return await openTable(table, config).lookup(key);
    } finally {
      release();
    }
  };
}

/**
 * `login`: the uid's login name when the caller has looked it up already (sendmail), so the password file is
 * not searched twice. A table that cannot be read throws its TableError (or a ConfigError for a bad list).
 */
export async function checkUserAcl(config: Config, paramName: string, uid: number, login?: string): Promise<UserAclResult> {
  const user = login ?? getpwuid(uid)?.name ?? String(uid);
  const allowed = await matchStringList(config.list(paramName), user, { paramName, lookup: tableLookup(config) });
  return { allowed, user, uid };
}
