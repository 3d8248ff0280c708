/**
 * Queue directory names (Postfix's, because postsuper and postqueue -j show
 * them) and queue IDs.
 *
 * A queue ID is Postfix's short form: five hex digits of the microseconds at
 * creation followed by the file's inode number in hex, upper case. The inode
 * is unique among existing files of the file system and a file keeps it when
 * renamed between queue directories, so no two queue files share an ID; the
 * microseconds tell apart files that reuse a freed inode. 6 to 21 characters,
 * usually 10 to 12: safe as a file name and fits mailq's column.
 */

/** Directories that hold queue files, in the order mailq scans them (Postfix's order). */
export const MESSAGE_QUEUES = ["maildrop", "active", "incoming", "deferred", "hold"] as const;
export type MessageQueue = (typeof MESSAGE_QUEUES)[number];

/**
 * Every directory under queue_directory, with its mode. maildrop is writable
 * by all, not listable (3733), sticky so nobody removes another's file, and
 * set-gid so each new file belongs to mail_owner's group: sendmail creates it
 * 0640, and pickup reads it as mail_owner without running as root.
 * private/ holds the daemons' internal sockets; public/ the ones users reach.
 * pid/ is root's, as in Postfix's postfix-files: root's commands read and
 * write the master's pid file there, and mail_owner must not be able to
 * plant a file or a symlink for them. data/ holds mail_owner's caches that
 * must survive a restart (the SMTP client's MTA-STS policies).
 */
export const QUEUE_DIRECTORIES: ReadonlyArray<{ name: string; mode: number; owner?: "root" }> = [
  { name: "maildrop", mode: 0o3733 },
  { name: "incoming", mode: 0o700 },
  { name: "active", mode: 0o700 },
  { name: "deferred", mode: 0o700 },
  { name: "hold", mode: 0o700 },
  { name: "corrupt", mode: 0o700 },
  { name: "defer", mode: 0o700 },
  { name: "bounce", mode: 0o700 },
  { name: "trace", mode: 0o700 },
  { name: "data", mode: 0o700 },
  { name: "pid", mode: 0o755, owner: "root" },
  { name: "public", mode: 0o755 },
  { name: "private", mode: 0o700 },
];

export function queueIdFor(inode: number | bigint, microseconds: number): string {
  const usec = (microseconds % 1_000_000).toString(16).toUpperCase().padStart(5, "0");
  return usec + BigInt(inode).toString(16).toUpperCase();
}

/** Names that can be queue IDs; anything else in a queue directory (temporary files) is not a message. */
export function isQueueId(name: string): boolean {
  return /^[0-9A-F]{6,21}$/.test(name);
}
