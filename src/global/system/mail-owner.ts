/**
 * Who owns the queue: mail_owner when postern runs as root, the invoking
 * user otherwise (unprivileged mode: npm start, tests, containers).
 */
import { getpwnam } from "../../util/passwd.ts";
import type { Config } from "../config/config.ts";
import type { QueueOwner } from "../queue/directories.ts";
import { ConfigError } from "../config/source.ts";

export function isPrivileged(): boolean {
  return process.getuid?.() === 0;
}

/** The owner for queue files and directories, or undefined in unprivileged mode. */
export function queueOwner(config: Config): QueueOwner | undefined {
  if (!isPrivileged()) return undefined;
  const name = config.str("mail_owner");
  const pw = getpwnam(name);
  if (!pw) {
    throw new ConfigError(
      `mail_owner "${name}" is not a user on this system; create it with: useradd --system --user-group --home-dir ${config.str("queue_directory")} --shell /usr/sbin/nologin ${name}`,
    );
  }
  if (pw.uid === 0) throw new ConfigError(`mail_owner "${name}" must not be root (uid 0)`);
  return { uid: pw.uid, gid: pw.gid };
}
