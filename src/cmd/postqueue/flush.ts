/**
 * Flushing the queue: `postqueue -f`, `-s site`, `-i queue_id`, and
 * sendmail's `-q`, `-qRsite`, `-qIid`. The running queue manager does the
 * work; this asks it over its public socket (src/global/queue/flush-request.ts).
 *
 * Whether the mail system runs is decided by the master's pid file,
 * `$queue_directory/pid/master.pid` holding a live pid (the contract is in
 * src/global/system/master-pid.ts). When it is down, or its queue manager cannot be
 * reached, the answer is Postfix's: "Cannot flush mail queue - mail system
 * is down", EX_UNAVAILABLE.
 *
 * Runs as any user allowed by authorized_flush_users (root and mail_owner
 * always are). The site and queue ID come from the command line and are
 * checked before anything is sent; the queue manager checks them again.
 */
import { log } from "../../util/log.ts";
import { ExitError, EX_NOPERM, EX_UNAVAILABLE, EX_USAGE } from "../../util/sysexits.ts";
import type { Config } from "../../global/config/config.ts";
import { queueAccess } from "../../global/queue/access.ts";
import { isQueueId } from "../../global/queue/names.ts";
import { qmgrSocketPath, requestFlush, type FlushRequest } from "../../global/queue/flush-request.ts";
import { runningMasterPid } from "../../global/system/master-pid.ts";
import { IpcError } from "../../global/ipc/json-lines.ts";
import { isAuthorized } from "./authorized.ts";

export type { FlushRequest } from "../../global/queue/flush-request.ts";

const LABEL = "[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?";
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`);
const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

/** A host name, or an address literal in brackets (`[192.0.2.1]`, `[IPv6:2001:db8::1]`), as postqueue -s accepts. */
export function isValidFlushSite(site: string): boolean {
  if (site.length === 0 || site.length > 255) return false;
  if (site.startsWith("[")) {
    const m = /^\[(.*)\]$/.exec(site);
    if (!m) return false;
    const inner = m[1]!;
    if (IPV4.test(inner)) return inner.split(".").every((n) => Number(n) <= 255);
    return /^IPv6:[0-9A-Fa-f:.]{2,45}$/.test(inner) && inner.slice(5).includes(":");
  }
  return HOSTNAME.test(site) && !/^[\d.]+$/.test(site);
}

function shorten(text: string): string {
  return text.length > 100 ? `${text.slice(0, 100)}...` : text;
}

export async function flushCommand(config: Config, request: FlushRequest): Promise<number> {
  const access = queueAccess(config);
  if (!(await isAuthorized(config, "authorized_flush_users", access))) throw new ExitError(EX_NOPERM, `User ${access.userName}(${access.uid}) is not allowed to flush the mail queue`);
  if (request.kind === "site" && !isValidFlushSite(request.site)) {
    throw new ExitError(EX_USAGE, `Cannot flush mail queue - invalid destination: "${shorten(request.site)}"`);
  }
  if (request.kind === "id" && !isQueueId(request.id)) {
    throw new ExitError(EX_USAGE, `Cannot flush queue ID - invalid name: "${shorten(request.id)}"`);
  }
  if (runningMasterPid(config) === undefined) throw new ExitError(EX_UNAVAILABLE, "Cannot flush mail queue - mail system is down");
  try {
    await requestFlush(config, request);
  } catch (err) {
    if (!(err instanceof IpcError)) throw err;
    // transport failures name the socket; anything else is the queue manager's own answer
    if (!err.message.startsWith(qmgrSocketPath(config))) throw new ExitError(EX_UNAVAILABLE, `Cannot flush mail queue - the queue manager refused the request: ${err.message}`);
    log.warn(`cannot reach the queue manager: ${err.message}`);
    throw new ExitError(EX_UNAVAILABLE, "Cannot flush mail queue - mail system is down");
  }
  return 0;
}
