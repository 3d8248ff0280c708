/**
 * The one place a mailbox path in mail_spool_directory is built from a
 * recipient name, and the check every mailbox writer repeats on the final
 * path. A name that does not come from passwd is the local part of an
 * address a remote client chose (unprivileged mode with an empty
 * local_recipient_maps: `npm start`, containers); it becomes a file name
 * only when it is a single, visible path component: no "/", not "." or
 * "..", no leading ".", no control character, at most 64 bytes (RFC 5321's
 * limit for a local part). Anything else is no mailbox: the recipient is an
 * unknown user (5.1.1).
 *
 * Runs in the local delivery agent (root or unprivileged) and, for
 * isPathInside(), in the writer (agent or worker). Distrusts the name.
 */
import { resolve, sep } from "node:path";

/** RFC 5321 4.5.3.1.1: the maximum length of a local part. */
export const MAILBOX_NAME_MAX_BYTES = 64;

/** Why `name` cannot be a mailbox file name, or undefined when it can. */
export function mailboxNameProblem(name: string): string | undefined {
  if (name === "") return "empty name";
  if (Buffer.byteLength(name, "utf8") > MAILBOX_NAME_MAX_BYTES) return `longer than ${MAILBOX_NAME_MAX_BYTES} bytes`;
  if (name.includes("/")) return 'contains "/"';
  if (name.startsWith(".")) return 'starts with "."';
  // C0 controls, DEL and the C1 controls: nothing a file name should hold
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return "contains a control character";
  }
  return undefined;
}

/**
 * The mailbox of `name` in the spool directory: a maildir ("DIR/NAME/")
 * when the spool directory name ends in "/", an mbox file ("DIR/NAME")
 * otherwise; undefined when the name is no safe file name.
 */
export function spoolMailboxPath(spoolDirectory: string, name: string): string | undefined {
  if (mailboxNameProblem(name) !== undefined) return undefined;
  const path = spoolDirectory.endsWith("/") ? `${spoolDirectory}${name}/` : `${spoolDirectory}/${name}`;
  return isPathInside(path, spoolDirectory) ? path : undefined;
}

/** Whether `path`, resolved, lies strictly below the directory `dir` (no "..", no escape). */
export function isPathInside(path: string, dir: string): boolean {
  const top = resolve(dir);
  const full = resolve(path);
  return full.startsWith(top === sep ? top : top + sep) && full !== top;
}
