/**
 * Creates the queue directories with their owners and modes, and repairs
 * them (postern check, set-permissions, start). Owned by mail_owner; when
 * postern runs unprivileged, by the invoking user.
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
  const fix = (path: string, label: string, mode: number, owned = true) => {
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
    if (owned && owner && (st.uid !== owner.uid || st.gid !== owner.gid)) {
      chownSync(path, owner.uid, owner.gid);
      if (!created) changes.push(`fixed owner of ${label}`);
    }
  };
  // the top directory stays with whoever made it (root on a system install), as with Postfix
  fix(queueDirectory, "queue_directory", 0o755, false);
  for (const { name, mode } of QUEUE_DIRECTORIES) fix(join(queueDirectory, name), name, mode);
  return changes;
}
