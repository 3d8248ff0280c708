/**
 * Postfix's user access lists (authorized_submit_users for sendmail,
 * authorized_mailq_users and authorized_flush_users for postqueue): the
 * real uid's login name is matched against the list (string-list.ts).
 *
 * Runs in the commands, as the invoking user; the uid comes from the
 * kernel, the list from the configuration.
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

/** `login`: the uid's login name when the caller has looked it up already (sendmail), so the password file is not searched twice. */
export async function checkUserAcl(config: Config, paramName: string, uid: number, lookup?: StringListOptions["lookup"], login?: string): Promise<UserAclResult> {
  const user = login ?? getpwuid(uid)?.name ?? String(uid);
  const allowed = await matchStringList(config.list(paramName), user, { paramName, ...(lookup ? { lookup } : {}) });
  return { allowed, user, uid };
}
