/**
 * Who a pipe(8) service's command runs as: its `user=` attribute
 * (`name`, `name:group` or `uid:gid`) resolved against the passwd and
 * group files, never root. One function for both sides so they cannot
 * disagree: `postern check`/start refuse a service whose user= resolves
 * to nobody or to root (exit 78), and the pipe agent resolves it again
 * when it delivers (a user removed since start defers the mail).
 *
 * Runs wherever the configuration is validated (root for check and start,
 * mail_owner for the master's reload) and in the local service (root).
 * user= is the administrator's text; it is only looked up.
 */
import { getgrnam, getpwnam } from "../../util/passwd.ts";

/** The identity a command runs with. */
export interface PipeIdentity {
  uid: number;
  gid: number;
  /** initgroups(3) name, when user= named one. */
  user?: string;
}

/** user=name[:group] or uid:gid resolved, or why it cannot be used (Postfix's pipe(8) words). */
export function resolvePipeUser(user: string): PipeIdentity | { error: string } {
  const [name = "", group] = user.split(":", 2);
  let id: PipeIdentity;
  if (/^\d+$/.test(name)) {
    if (group === undefined || !/^\d+$/.test(group)) return { error: `user=${user}: a numeric user needs a numeric group (uid:gid)` };
    id = { uid: Number(name), gid: Number(group) };
  } else {
    const pw = getpwnam(name);
    if (!pw) return { error: `unknown username: ${name}` };
    id = { uid: pw.uid, gid: pw.gid, user: pw.name };
    if (group !== undefined && group !== "") {
      const gid = /^\d+$/.test(group) ? Number(group) : getgrnam(group);
      if (gid === undefined) return { error: `unknown group: ${group}` };
      id.gid = gid;
    }
  }
  if (id.uid === 0 || id.gid === 0) return { error: "user= command-line attribute specifies root privileges" };
  return id;
}

/** user= resolved; undefined when it names nobody or root. */
export function pipeIdentity(user: string): PipeIdentity | undefined {
  const r = resolvePipeUser(user);
  return "error" in r ? undefined : r;
}
