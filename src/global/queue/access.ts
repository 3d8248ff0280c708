/**
 * Who may read and change the queue directly, without a daemon's help:
 * root, and the user who owns the queue directories (mail_owner on a
 * system install, the invoking user of an unprivileged instance). Nothing
 * here is set-uid or set-gid, so everybody else depends on the daemon.
 *
 * Used by the queue tools (postqueue, mailq, postsuper, postcat). Trusts the
 * file system's owners and modes, nothing in the environment.
 */
import { accessSync, statSync, constants as fsc } from "node:fs";
import { join } from "node:path";
import { getpwnam, getpwuid } from "../../util/passwd.ts";
import type { Config } from "../config/config.ts";

export interface QueueAccess {
  queueDirectory: string;
  uid: number;
  /** The login name of `uid`, or "uid N" when it has none. */
  userName: string;
  /** Owner of the queue directories; undefined when the queue does not exist. */
  ownerUid?: number;
  ownerGid?: number;
  /** The owner's login name, or "uid N". */
  ownerName?: string;
  /** mail_owner's uid, when that user exists. */
  mailOwnerUid?: number;
  /** root or the queue's owner. */
  isAdministrator: boolean;
}

function nameOf(uid: number): string {
  return getpwuid(uid)?.name ?? `uid ${uid}`;
}

export function queueAccess(config: Config): QueueAccess {
  const queueDirectory = config.str("queue_directory");
  const uid = process.getuid?.() ?? 0;
  let ownerUid: number | undefined;
  let ownerGid: number | undefined;
  try {
    const st = statSync(join(queueDirectory, "incoming"));
    ownerUid = st.uid;
    ownerGid = st.gid;
  } catch {
    // no queue yet
  }
  return {
    queueDirectory,
    uid,
    userName: nameOf(uid),
    ownerUid,
    ownerGid,
    ownerName: ownerUid === undefined ? undefined : nameOf(ownerUid),
    mailOwnerUid: getpwnam(config.str("mail_owner"))?.uid,
    isAdministrator: uid === 0 || (ownerUid !== undefined && uid === ownerUid),
  };
}

export type QueueReadability = "readable" | "missing" | "denied";

/** Whether this process can list and read the message queues (access(2) with the real uid). */
export function queueReadability(queueDirectory: string): QueueReadability {
  for (const name of ["maildrop", "incoming", "active", "deferred", "hold"]) {
    try {
      accessSync(join(queueDirectory, name), fsc.R_OK | fsc.X_OK);
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : "denied";
    }
  }
  return "readable";
}
