/**
 * Dropping root for a daemon role: initgroups, setgid, setuid, in that
 * order, before any untrusted input is read. Whether a role drops is the
 * service table's "runs as" (src/global/system/service-table.ts): a role
 * marked root keeps root, every other drops to mail_owner. In unprivileged
 * mode (not started as root) there is nothing to drop and every role runs
 * as the invoking user.
 */
import { getpwnam } from "../util/passwd.ts";
import type { Config } from "../global/config/config.ts";
import { isPrivileged } from "../global/system/mail-owner.ts";
import { ConfigError } from "../global/config/source.ts";
import { SERVICE_TABLE, type DaemonRole } from "../global/system/service-table.ts";

/** Gives up what `role` may not keep, as the service table says; returns what it runs as now. */
export function dropPrivilegesFor(role: DaemonRole, config: Config): "root" | "mail_owner" {
  const runsAs = SERVICE_TABLE[role].runsAs;
  if (runsAs === "root") return "root";
  // a role that becomes the recipient changes to the identity its parent names, not through the skeleton
  if (runsAs !== "mail_owner") throw new Error(`${role} runs as ${runsAs}: it drops its privileges itself`);
  dropToMailOwner(config);
  return "mail_owner";
}

export function dropToMailOwner(config: Config): void {
  if (!isPrivileged()) return;
  const name = config.str("mail_owner");
  const pw = getpwnam(name);
  if (!pw || pw.uid === 0) throw new ConfigError(`mail_owner "${name}" must be an existing user other than root`);
  // node's process.initgroups exists in Bun but is missing from bun-types
  (process as unknown as { initgroups(user: string, gid: number): void }).initgroups(name, pw.gid);
  process.setgid!(pw.gid);
  process.setuid!(pw.uid);
  if (process.getuid!() !== pw.uid || process.geteuid!() !== pw.uid) throw new Error(`could not drop privileges to ${name}`);
}
