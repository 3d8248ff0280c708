/**
 * One pickup pass: every queue file in maildrop/ goes through cleanup into
 * incoming/, then leaves maildrop/. A file is opened without following
 * symbolic links and taken only when it is a regular file with one link
 * (so nobody can feed pickup another user's file); its owner, from fstat, is
 * the submitting uid. A file that does not decode goes to corrupt/. A file
 * that cannot be committed now (disk full) stays for the next pass, and no
 * file is taken while the queue file system has no more free space than
 * queue_minfree or 1.5 times message_size_limit (global/queue/space.ts).
 *
 * Logs as Postfix's pickup and cleanup do:
 *   QUEUEID: uid=1000 from=<user>          (postfix/pickup)
 *   QUEUEID: message-id=<...>              (postfix/cleanup)
 *
 * Runs as mail_owner (the daemon and `postern pickup --once` drop to it);
 * maildrop files are untrusted.
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync, unlinkSync, constants as fsc, type Stats } from "node:fs";
import { join } from "node:path";
import { log } from "../util/log.ts";
import { getpwuid } from "../util/passwd.ts";
import type { Config } from "../global/config/config.ts";
import { commitQueueFileSync } from "../global/queue/commit.ts";
import { CorruptQueueFileError, decodeQueueFile, encodeDoneRecord, encodeQueueFile, type QueueFile } from "../global/queue/format.ts";
import { appendDeliveryLog } from "../global/queue/delivery-log.ts";
import { isQueueId } from "../global/queue/names.ts";
import { queueSpaceRule, queueSpaceShortageSync, type SpaceRule } from "../global/queue/space.ts";
import { quarantine } from "../global/queue/store.ts";
import { cleanupSettings, type CleanupSettings } from "../cleanup/settings.ts";
import { cleanupLocalSubmission, NoRecipientsError, type CleanupResult } from "../cleanup/local-submission.ts";
import { hasLineBreaks } from "../cleanup/envelope.ts";
import { delayFields } from "../global/delivery/delays.ts";

export interface PickupStats {
  queued: number;
  corrupt: number;
  removed: number;
  kept: number;
}

const TWO_HOURS = 2 * 3600 * 1000;

function readAll(fd: number, sizeHint: number): Buffer {
  const chunks: Buffer[] = [];
  const buf = Buffer.allocUnsafe(Math.max(65536, sizeHint + 1));
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, null);
    if (n === 0) return Buffer.concat(chunks);
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
}

function encodeWithState(file: QueueFile): Uint8Array {
  const body = encodeQueueFile(file);
  const done = file.recipients.map((r, i) => (r.done ? encodeDoneRecord(i) : "")).join("");
  return done ? Buffer.concat([body, Buffer.from(done)]) : body;
}

type Outcome = "queued" | "corrupt" | "removed" | "kept";

function pickupFile(settings: CleanupSettings, queueDir: string, name: string, tags: { cleanup: string; delayDigits: number }): Outcome {
  const path = join(queueDir, "maildrop", name);
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "kept";
    if (code === "ELOOP") {
      log.warn(`${name}: maildrop/${name} is a symbolic link; removing it`);
      try {
        unlinkSync(path);
      } catch {}
      return "removed";
    }
    log.warn(`${name}: cannot open maildrop/${name}: ${(err as Error).message}`);
    return "kept";
  }
  let st: Stats;
  let bytes: Buffer;
  try {
    st = fstatSync(fd);
    if (!st.isFile() || st.nlink !== 1) {
      log.warn(`${name}: maildrop/${name} is not a regular file with one link; removing it`);
      unlinkSync(path);
      return "removed";
    }
    bytes = readAll(fd, st.size);
  } finally {
    closeSync(fd);
  }

  let file: QueueFile;
  try {
    file = decodeQueueFile(bytes);
    if (hasLineBreaks(file.sender) || file.recipients.some((r) => hasLineBreaks(r.address))) throw new CorruptQueueFileError("a line break or NUL in an envelope address");
  } catch (err) {
    if (!(err instanceof CorruptQueueFileError)) throw err;
    quarantine(queueDir, "maildrop", name, err);
    return "corrupt";
  }

  const now = new Date();
  if (file.arrivalTime > now.getTime() + TWO_HOURS) {
    log.warn(`${name}: message maildrop/${name} dated ${Math.round((file.arrivalTime - now.getTime()) / 1000)} seconds into the future`);
    file.arrivalTime = now.getTime();
  }
  const owner = process.getuid?.() ?? 0;
  // postsuper -r puts the queue owner's own 0600 files here: those are trusted
  const trusted = st.uid === owner && (st.mode & 0o040) === 0;
  const login = getpwuid(st.uid)?.name;
  const submitter = { uid: st.uid, trusted, ...(login !== undefined ? { login } : {}) };

  let result: CleanupResult | undefined;
  let queueId: string;
  const logCleanup = (id: string, r: CleanupResult) => {
    const requeued = trusted ? ` orig_id=${name}` : "";
    log.info(`${id}: uid=${st.uid} from=<${file.sender}>${requeued}`);
    for (const w of r.warnings) log.write("warning", w, tags.cleanup);
    if (r.rejection) log.write("warning", `${id}: ${r.rejection.warning}`, tags.cleanup);
    for (const line of r.logs) log.write("info", `${id}: ${line}`, tags.cleanup);
  };
  try {
    queueId = commitQueueFileSync(join(queueDir, "incoming"), (id) => {
      result = cleanupLocalSubmission({ file, submitter, submittedAt: st.mtime }, settings, id, now);
      if (result.rejection) {
        const time = Date.now();
        const entries = result.file.recipients.map((r) => ({
          recipient: r.address,
          ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}),
          status: result!.rejection!.status,
          action: "failed",
          time,
          reason: result!.rejection!.reason,
        }));
        appendDeliveryLog(queueDir, "bounce", id, entries);
      }
      // Log before the file appears in incoming/, as Postfix's pickup and cleanup do: the queue
      // manager's "from=, size=" line must come after them (pflogsumm counts by that order).
      logCleanup(id, result);
      return encodeWithState(result.file);
    });
  } catch (err) {
    if (err instanceof NoRecipientsError) {
      log.info(`${name}: uid=${st.uid} from=<${file.sender}>: no recipients left; removed`);
      unlinkSync(path);
      return "removed";
    }
    log.warn(`${name}: cannot queue maildrop/${name}: ${(err as Error).message}; will try again`);
    return "kept";
  }
  const r = result!;
  if (r.rejection) {
    // rejected before the queue manager: all of the delay is "before qmgr", as Postfix logs it
    const now = Date.now();
    const times = delayFields({ arrival: r.file.arrivalTime, activated: now, started: now, finished: now }, tags.delayDigits);
    for (const rcpt of r.file.recipients) {
      const orig = rcpt.original !== undefined && rcpt.original !== rcpt.address ? `, orig_to=<${rcpt.original}>` : "";
      log.write("info", `${queueId}: to=<${rcpt.address}>${orig}, relay=none, ${times}, dsn=${r.rejection.status}, status=bounced (${r.rejection.reason})`, tags.cleanup);
    }
  }
  try {
    unlinkSync(path);
  } catch (err) {
    log.warn(`${queueId}: cannot remove maildrop/${name}: ${(err as Error).message}`);
  }
  return "queued";
}

/** True (with a warning) when the queue has no room for one more message; the files wait in maildrop/. */
function spaceShort(queueDir: string, rule: SpaceRule): boolean {
  try {
    const shortage = queueSpaceShortageSync(queueDir, rule);
    if (shortage) log.warn(`${shortage.warning}; leaving mail in maildrop/ for later`);
    return shortage !== undefined;
  } catch {
    return false; // the commit says what is wrong
  }
}

/** One pass over maildrop/; the daemon calls it on every change and once a minute. */
export function pickupOnce(config: Config): PickupStats {
  const queueDir = config.str("queue_directory");
  const settings = cleanupSettings(config);
  const tags = { cleanup: `${config.str("syslog_name")}/cleanup`, delayDigits: config.int("delay_logging_resolution_limit") };
  const stats: PickupStats = { queued: 0, corrupt: 0, removed: 0, kept: 0 };
  let names: string[];
  try {
    names = readdirSync(join(queueDir, "maildrop")).filter(isQueueId);
  } catch (err) {
    log.warn(`cannot scan ${join(queueDir, "maildrop")}: ${(err as Error).message}`);
    return stats;
  }
  const rule = queueSpaceRule(config);
  for (const [i, name] of names.entries()) {
    if (spaceShort(queueDir, rule)) {
      stats.kept += names.length - i;
      break;
    }
    stats[pickupFile(settings, queueDir, name, tags)]++;
  }
  return stats;
}
