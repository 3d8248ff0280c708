/**
 * Creates the queue directories with their owners and modes, and repairs
 * them (postern check, set-permissions, start). Owned by mail_owner, except
 * the queue directory itself and pid/, which are root's (as Postfix's
 * postfix-files says); when postern runs unprivileged, everything is the
 * invoking user's.
 *
 * Runs as root on a system install. Each directory is examined with lstat
 * and must be a directory; its parent is the queue directory, which is
 * root's, so nobody else can swap it between the check and the repair.
 */
import { chmodSync, chownSync, lstatSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { QUEUE_DIRECTORIES } from "./names.ts";

export interface QueueOwner {
  uid: number;
  gid: number;
}

/** Returns one line per change made ("created maildrop", "fixed mode of active: 755 -> 700"). */
export function ensureQueueDirectories(queueDirectory: string, owner: QueueOwner | undefined): string[] {
  const changes: string[] = [];
  const root = owner ? { uid: 0, gid: 0 } : undefined;
  const fix = (path: string, label: string, mode: number, wanted: QueueOwner | undefined) => {
    let st;
    let created = false;
    try {
      st = lstatSync(path);
    } catch {
      mkdirSync(path, { recursive: true, mode });
      changes.push(`created ${label}`);
      created = true;
      st = lstatSync(path);
    }
    if (!st.isDirectory()) throw new Error(`${path} exists and is not a directory`);
    if ((st.mode & 0o7777) !== mode) {
      chmodSync(path, mode);
      if (!created) changes.push(`fixed mode of ${label}: ${(st.mode & 0o7777).toString(8)} -> ${mode.toString(8)}`);
    }
    if (wanted && (st.uid !== wanted.uid || st.gid !== wanted.gid)) {
      chownSync(path, wanted.uid, wanted.gid);
      if (!created) changes.push(`fixed owner of ${label}`);
    }
  };
  // The top directory must be root's: whoever can write it can replace pid/. Only its user is
  // checked (a group such as "wheel" is the administrator's choice; it cannot write with mode 755).
  fix(queueDirectory, "queue_directory", 0o755, undefined);
  if (root && lstatSync(queueDirectory).uid !== 0) {
    chownSync(queueDirectory, 0, lstatSync(queueDirectory).gid);
    changes.push("fixed owner of queue_directory");
  }
  for (const d of QUEUE_DIRECTORIES) fix(join(queueDirectory, d.name), d.name, d.mode, d.owner === "root" ? root : owner);
  return changes;
}
