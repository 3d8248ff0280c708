/**
 * Listing the queue: `postqueue -p`, `mailq`, `sendmail -bp` (text) and
 * `postqueue -j` (JSON lines), in Postfix's formats.
 *
 * Runs as the invoking user and reads the queue directly, which only root
 * and the queue's owner (mail_owner, or the user of an unprivileged
 * instance) can do: nothing is set-gid. Anybody else gets a fatal message
 * that says why (EX_UNAVAILABLE), as Postfix's postqueue does for users
 * while its showq service is down. authorized_mailq_users is checked first
 * (root and mail_owner are always allowed).
 *
 * Other users get the listing from the running queue manager (Postfix's
 * showq, on public/qmgr); only while the mail system is down are they told
 * it is unavailable.
 */
import { log } from "../../util/log.ts";
import { OutputWriter } from "../../util/output.ts";
import { ExitError, EX_NOPERM, EX_UNAVAILABLE } from "../../util/sysexits.ts";
import type { Config } from "../../global/config/config.ts";
import { queueAccess, queueReadability } from "../../global/queue/access.ts";
import { scanQueue } from "../../global/queue/listing.ts";
import { runningMasterPid } from "../../global/system/master-pid.ts";
import { requestShowq } from "../../global/queue/showq-request.ts";
import type { ListedMessage } from "../../global/queue/listing.ts";
import { isAuthorized } from "./authorized.ts";
import { formatJsonEntry, formatMailqEntry, MAILQ_EMPTY, MAILQ_HEADING, mailqSummary } from "./mailq-format.ts";

export async function listQueueCommand(config: Config, json: boolean): Promise<number> {
  const access = queueAccess(config);
  if (!(await isAuthorized(config, "authorized_mailq_users", access))) throw new ExitError(EX_NOPERM, `User ${access.userName}(${access.uid}) is not allowed to view the mail queue`);
  const queueDirectory = access.queueDirectory;
  let entries: Iterable<ListedMessage>;
  switch (queueReadability(queueDirectory)) {
    case "missing":
      throw new ExitError(EX_UNAVAILABLE, `Queue report unavailable - the queue directory "${queueDirectory}" is incomplete or missing ("postfix check" creates it)`);
    case "denied": {
      const who = `only root${access.ownerName ? ` and "${access.ownerName}"` : ""} can read the queue in "${queueDirectory}"`;
      if (runningMasterPid(config) === undefined) throw new ExitError(EX_UNAVAILABLE, `Queue report unavailable - mail system is down and ${who}`);
      try {
        const answer = await requestShowq(config);
        if (answer.truncated) log.warn("the queue listing was cut short: too many messages");
        entries = answer.entries;
      } catch (err) {
        throw new ExitError(EX_UNAVAILABLE, `Queue report unavailable - cannot reach the queue manager: ${(err as Error).message}`);
      }
      break;
    }
    default:
      entries = scanQueue(queueDirectory, (p) => log.warn(`${p.queueName}/${p.queueId}: ${p.message}`));
  }
  const emptyAddress = config.str("empty_address_recipient") || "MAILER-DAEMON";
  const out = new OutputWriter();
  let requests = 0;
  let totalSize = 0;
  for (const entry of entries) {
    if (json) {
      out.write(formatJsonEntry(entry, emptyAddress));
    } else {
      out.write(requests === 0 ? MAILQ_HEADING : "\n");
      out.write(formatMailqEntry(entry, emptyAddress));
    }
    requests++;
    totalSize += entry.messageSize;
    if (!out.open) return 0;
  }
  if (!json) out.write(requests === 0 ? MAILQ_EMPTY : mailqSummary(requests, totalSize));
  out.flush();
  return 0;
}
