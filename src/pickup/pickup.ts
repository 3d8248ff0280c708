/**
 * One pickup pass: every queue file in maildrop/ goes through cleanup into
 * incoming/, then leaves maildrop/. maildrop/ is writable by every local
 * user, so each entry is handled on its own: whatever one entry is, or
 * whatever goes wrong with it, the pass goes on with the next.
 *
 * - maildrop-entry.ts opens an entry safely (no symbolic link followed, only
 *   a regular file with one link, read up to a bound) and removes or
 *   quarantines everything else with one log line.
 * - The file's owner, from fstat, is the submitting uid, never the content.
 *   A file the queue owner wrote without group access (postsuper -r) is
 *   trusted; any other is untrusted: its owner must be in
 *   authorized_submit_users (else the file is removed unread, without a
 *   bounce, since its sender is whatever the user wrote), and its envelope
 *   is screened (cleanup/untrusted-envelope.ts).
 * - Arrival time: an untrusted file's T record is ignored; the message
 *   arrived when the file was last changed (its ctime, which no user can
 *   set), at the latest now. A requeued file keeps its time.
 * - A file that does not decode or is refused goes to corrupt/. A file
 *   that cannot be committed now (disk full) stays for the next pass, and no
 *   file is taken while the queue file system has no more free space than
 *   queue_minfree or 1.5 times message_size_limit (global/queue/space.ts).
 *
 * Logs as Postfix's pickup and cleanup do:
 *   QUEUEID: uid=1000 from=<user>          (postfix/pickup)
 *   QUEUEID: message-id=<...>              (postfix/cleanup)
 *
 * - Fresh submissions are DKIM-signed when a key is set up for their From:
 *   domain (cleanup/dkim-signing.ts, keys read before the drop); a
 *   requeued message (postsuper -r) keeps the signature it has.
 *
 * Runs as mail_owner (the daemon and `postern pickup --once` drop to it);
 * maildrop files are untrusted.
 */
import { closeSync, readdirSync, unlinkSync, type Stats } from "node:fs";
import { join } from "node:path";
import { log } from "../util/log.ts";
import { getpwuid } from "../util/passwd.ts";
import type { Config } from "../global/config/config.ts";
import { commitQueueFileSync } from "../global/queue/commit.ts";
import { CorruptQueueFileError, decodeQueueFile, encodeDoneRecord, encodeQueueFile, type QueueFile } from "../global/queue/format.ts";
import { appendDeliveryLog } from "../global/queue/delivery-log.ts";
import { queueSpaceRule, queueSpaceShortageSync, type SpaceRule } from "../global/queue/space.ts";
import { quarantine } from "../global/queue/store.ts";
import { checkUserAcl } from "../global/access/user-acl.ts";
import { cleanupSettings, type CleanupSettings } from "../cleanup/settings.ts";
import { cleanupLocalSubmission, NoRecipientsError, receivedHeader, type CleanupResult, type Rejection } from "../cleanup/local-submission.ts";
import { localMiltersEnabled, runLocalMilters } from "../cleanup/milters.ts";
import { CleanupDeferral, prepareRewrites, type PreparedRewrites } from "../cleanup/address-rewrites.ts";
import { hasLineBreaks } from "../cleanup/envelope.ts";
import { DkimSigning, type DkimRequest } from "../cleanup/dkim-signing.ts";
import type { DkimKeyring } from "../global/dkim/keys.ts";
import { TableError } from "../global/tables/table.ts";
import { holdConfig, retireConfig } from "../global/config/generation.ts";
import { screenUntrustedFile } from "../cleanup/untrusted-envelope.ts";
import { bccRecipients, cleanupCheckTables, QUEUE_ID_PLACEHOLDER, runCleanupChecks, withQueueId, type CleanupChecksOutcome } from "../cleanup/header-body-checks.ts";
import type { CheckTables } from "../global/checks/content-checks.ts";
import { delayFields } from "../global/delivery/delays.ts";
import { forgetVanished, maildropReadLimit, openMaildropEntry, readMaildropFile } from "./maildrop-entry.ts";

export interface PickupStats {
  queued: number;
  corrupt: number;
  removed: number;
  kept: number;
}

const TWO_HOURS = 2 * 3600 * 1000;

/** An error from the system (ENOSPC, EMFILE, EIO, ...): may pass. Anything else comes from the file and would recur. */
function isSystemError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" && /^E[A-Z0-9]+$/.test(code);
}

function encodeWithState(file: QueueFile): Uint8Array {
  const body = encodeQueueFile(file);
  const done = file.recipients.map((r, i) => (r.done ? encodeDoneRecord(i) : "")).join("");
  return done ? Buffer.concat([body, Buffer.from(done)]) : body;
}

type Outcome = "queued" | "corrupt" | "removed" | "kept";

interface PassContext {
  config: Config;
  settings: CleanupSettings;
  queueDir: string;
  readLimit: number;
  tags: { cleanup: string; delayDigits: number };
  /** header_checks and body_checks, opened on first use. */
  checks: () => CheckTables | undefined;
  /** DKIM signing of fresh submissions; undefined when nothing is signed. */
  dkim: DkimSigning | undefined;
}

/** Whether the file's owner may submit mail (authorized_submit_users); undefined when the list cannot be read now. */
async function submitAllowed(ctx: PassContext, name: string, uid: number): Promise<boolean | undefined> {
  try {
    const acl = await checkUserAcl(ctx.config, "authorized_submit_users", uid);
    if (acl.allowed) return true;
    log.warn(`maildrop/${name}: uid=${uid}: User ${acl.user}(${uid}) is not allowed to submit mail (authorized_submit_users); removed`);
    return false;
  } catch (err) {
    log.warn(`maildrop/${name}: uid=${uid}: cannot check authorized_submit_users: ${(err as Error).message}; will try again`);
    return undefined;
  }
}

/** The arrival time pickup records: a requeued file's own, else when the file was last changed (no user can set a ctime), at the latest now. */
function arrivalTime(file: QueueFile, st: Stats, trusted: boolean, now: number): number {
  if (trusted) return Math.min(file.arrivalTime, now);
  return Math.min(Math.trunc(st.ctimeMs), now);
}

async function pickupFile(ctx: PassContext, name: string, removed?: (name: string) => void): Promise<Outcome | "skip"> {
  const { settings, queueDir, tags } = ctx;
  const path = join(queueDir, "maildrop", name);
  const entry = openMaildropEntry(queueDir, name, ctx.readLimit);
  if (entry.kind === "skip") return "skip";
  if (entry.kind === "handled") return entry.outcome;
  const st = entry.st;
  const owner = process.getuid?.() ?? 0;
  // postsuper -r puts the queue owner's own 0600 files here: those are trusted
  const trusted = st.uid === owner && (st.mode & 0o040) === 0;
  let bytes: Buffer | undefined;
  try {
    if (!trusted) {
      const allowed = await submitAllowed(ctx, name, st.uid);
      if (allowed === undefined) return "kept";
      if (!allowed) {
        unlinkSync(path);
        return "removed";
      }
    }
    bytes = readMaildropFile(entry.fd, ctx.readLimit, st.size);
  } finally {
    closeSync(entry.fd);
  }
  if (bytes === undefined) {
    quarantine(queueDir, "maildrop", name, new Error(`uid=${st.uid}: message file too big: more than ${ctx.readLimit} bytes`));
    return "corrupt";
  }

  let file: QueueFile;
  const warnings: string[] = [];
  try {
    file = decodeQueueFile(bytes);
    if (hasLineBreaks(file.sender) || file.recipients.some((r) => hasLineBreaks(r.address))) throw new CorruptQueueFileError("a line break or NUL in an envelope address");
    if (!trusted) {
      const screened = screenUntrustedFile(file, settings);
      if ("refused" in screened) throw new CorruptQueueFileError(`message refused: ${screened.refused}`);
      file = screened.file;
      warnings.push(...screened.warnings);
    }
  } catch (err) {
    if (!(err instanceof CorruptQueueFileError)) throw err;
    quarantine(queueDir, "maildrop", name, new CorruptQueueFileError(`uid=${st.uid}: ${err.message}`));
    return "corrupt";
  }
  for (const w of warnings) log.warn(`maildrop/${name}: uid=${st.uid}: ${w}`);

  const now = new Date();
  // the Received: date is the file's mtime, as Postfix's pickup has it; not in the future
  let submittedAt = st.mtime;
  if (st.mtimeMs > now.getTime() + TWO_HOURS) {
    log.warn(`${name}: message maildrop/${name} dated ${Math.round((st.mtimeMs - now.getTime()) / 1000)} seconds into the future`);
    submittedAt = now;
  }
  file.arrivalTime = arrivalTime(file, st, trusted, now.getTime());
  const login = getpwuid(st.uid)?.name;
  const submitter = { uid: st.uid, trusted, ...(login !== undefined ? { login } : {}) };

  // header and body checks (before the rewrites, as Postfix's cleanup): a lookup that fails leaves the file
  let checks: CleanupChecksOutcome | undefined;
  try {
    const tables = ctx.checks();
    const last = file.recipients.at(-1);
    const own = receivedHeader(settings, st.uid, QUEUE_ID_PLACEHOLDER, submittedAt);
    if (tables) checks = await runCleanupChecks(file.content, tables, { origin: "local", sender: file.sender, ...(last ? { recipient: last.address } : {}) }, own);
  } catch (err) {
    if (!(err instanceof TableError)) throw err;
    log.write("warning", `${name}: ${err.spec} map lookup problem -- message not accepted, try again later: ${err.detail}`, tags.cleanup);
    return "kept";
  }
  if (checks) {
    for (const w of checks.warnings) log.write("warning", w, tags.cleanup);
    // a 4.x.x REJECT, or DISCARD: no queue file; Postfix's pickup keeps a deferred file for a later pass
    if (checks.discard || checks.reject?.startsWith("4")) {
      for (const line of withQueueId(checks.logs, name)) log.write("info", `${name}: ${line}`, tags.cleanup);
      if (!checks.discard) return "kept";
      unlinkSync(path);
      return "removed";
    }
    file.content = checks.content;
    file.recipients.push(...bccRecipients(checks.bcc));
  }

  // non_smtpd_milters, after the header and body checks (as Postfix's cleanup) and before the rewrites,
  // as the envelope and content they may change feed those; a message the checks rejected skips them
  let hold: string | undefined;
  let milterRejection: Rejection | undefined;
  if (checks?.reject === undefined && localMiltersEnabled(ctx.config)) {
    const m = await runLocalMilters(ctx.config, file, (t) => log.write("warning", `${name}: ${t}`, tags.cleanup));
    switch (m.kind) {
      case "defer":
        log.write("info", `${name}: ${m.log}; will try again`, tags.cleanup);
        return "kept";
      case "discard":
        log.write("info", `${name}: uid=${st.uid} ${m.log}; removed`, tags.cleanup);
        unlinkSync(path);
        return "removed";
      case "reject":
        milterRejection = { status: m.status, reason: m.reason, warning: m.log };
        break;
      case "accept":
        file = m.file;
        hold = m.hold;
        break;
    }
  }

  // the rewrites that look tables up; a lookup that fails leaves the file for a later pass
  let rewrites: PreparedRewrites;
  try {
    const rewriteContext = file.attributes.rewrite_context === "remote" ? "remote" : "local";
    rewrites = await prepareRewrites({ sender: file.sender, recipients: file.recipients, content: file.content, rewriteContext }, settings);
  } catch (err) {
    if (!(err instanceof CleanupDeferral)) throw err;
    log.write("warning", `${name}: ${err.warning}`, tags.cleanup);
    return "kept";
  }
  for (const w of rewrites.warnings) log.write("warning", `${name}: ${w}`, tags.cleanup);

  // a requeued message keeps the signature it got when it was first queued
  let dkim: DkimRequest | undefined;
  if (ctx.dkim && !trusted) {
    try {
      dkim = { signing: ctx.dkim, choice: await ctx.dkim.choose(Buffer.from(file.content), rewrites.sender, rewrites.headerMap.values()) };
    } catch (err) {
      if (!(err instanceof TableError)) throw err;
      log.write("warning", `${name}: dkim_sign_maps lookup error: ${err.message}; will try again`, tags.cleanup);
      return "kept";
    }
  }

  let result: CleanupResult | undefined;
  let queueId: string;
  const logCleanup = (id: string, r: CleanupResult) => {
    const requeued = trusted ? ` orig_id=${name}` : "";
    log.info(`${id}: uid=${st.uid} from=<${file.sender}>${requeued}`);
    for (const w of r.warnings) log.write("warning", w, tags.cleanup);
    if (r.rejection?.warning) log.write("warning", `${id}: ${r.rejection.warning}`, tags.cleanup);
    for (const line of r.logs) log.write("info", `${id}: ${line}`, tags.cleanup);
    for (const line of withQueueId(checks?.logs ?? [], id)) log.write("info", `${id}: ${line}`, tags.cleanup);
  };
  try {
    const toHold = (checks?.hold && checks.reject === undefined) || hold !== undefined;
    queueId = commitQueueFileSync(join(queueDir, toHold ? "hold" : "incoming"), (id) => {
      const own = checks?.ownHeader;
      result = cleanupLocalSubmission(
        { file, submitter, submittedAt, rewrites, ...(checks ? { checks } : {}), ...(own ? { receivedLines: (qid: string) => withQueueId(own, qid) } : {}), ...(milterRejection ? { rejection: milterRejection } : {}), ...(dkim ? { dkim } : {}) },
        settings,
        id,
        now,
      );
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
      if (hold !== undefined) log.write("info", `${id}: milter-hold: END-OF-MESSAGE from localhost[127.0.0.1]: ${hold}; from=<${file.sender}>`, tags.cleanup);
      return encodeWithState(result.file);
    });
  } catch (err) {
    if (err instanceof NoRecipientsError) {
      log.info(`${name}: uid=${st.uid} from=<${file.sender}>: no recipients left; removed`);
      unlinkSync(path);
      return "removed";
    }
    if (!isSystemError(err)) {
      // the same file would fail the same way on every pass
      quarantine(queueDir, "maildrop", name, new Error(`uid=${st.uid}: cannot queue it: ${(err as Error).message}`));
      return "corrupt";
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
    removed?.(name);
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

/** What every pass with one configuration and keyring shares (see passContext). */
interface SharedContext {
  config: Config;
  keys: DkimKeyring | undefined;
  ctx: PassContext;
  rule: SpaceRule;
}
let lastContext: SharedContext | undefined;

/**
 * The settings, tables and signer a pass works with, built once per configuration (a reload
 * brings a new Config object) and DKIM keyring, as smtpd builds them once per process: the
 * daemon makes about one pass per submitted message, and computing the cleanup settings
 * afresh for each was the largest part of its own work per message. A new configuration
 * retires the one it replaces: the tables it opened close once no pass holds it
 * (src/global/config/generation.ts), except those the new one opened too.
 */
function passContext(config: Config, keys: DkimKeyring | undefined): SharedContext {
  if (lastContext?.config === config && lastContext.keys === keys) return lastContext;
  const settings = cleanupSettings(config);
  let checks: { tables: CheckTables | undefined } | undefined;
  const signing = keys ? new DkimSigning(config, keys) : undefined;
  const ctx: PassContext = {
    checks: () => (checks ??= { tables: cleanupCheckTables(config) }).tables,
    config,
    settings,
    queueDir: config.str("queue_directory"),
    readLimit: maildropReadLimit(settings.messageSizeLimit, settings.headerSizeLimit),
    tags: { cleanup: `${config.str("syslog_name")}/cleanup`, delayDigits: config.int("delay_logging_resolution_limit") },
    dkim: signing?.enabled ? signing : undefined,
  };
  const replaced = lastContext;
  lastContext = { config, keys, ctx, rule: queueSpaceRule(config) };
  if (replaced && replaced.config !== config) retireConfig(replaced.config);
  return lastContext;
}

/**
 * One pass over maildrop/; the daemon calls it on every change and once a minute. `stopping` ends it
 * between two files; `removed` hears the name of each file queued and removed.
 */
export async function pickupOnce(config: Config, stopping: () => boolean = () => false, keys?: DkimKeyring, removed?: (name: string) => void): Promise<PickupStats> {
  // a pass keeps its configuration's tables open to its end, a reload or not
  const release = holdConfig(config);
  try {
    const shared = passContext(config, keys);
    return await pass(shared.ctx, shared.rule, stopping, removed);
  } finally {
    release();
  }
}

async function pass(ctx: PassContext, rule: SpaceRule, stopping: () => boolean, removed?: (name: string) => void): Promise<PickupStats> {
  const { queueDir } = ctx;
  const stats: PickupStats = { queued: 0, corrupt: 0, removed: 0, kept: 0 };
  let names: string[];
  try {
    names = readdirSync(join(queueDir, "maildrop"));
  } catch (err) {
    log.warn(`cannot scan ${join(queueDir, "maildrop")}: ${(err as Error).message}`);
    return stats;
  }
  forgetVanished(names);
  // one bad entry never stops the pass
  for (const [i, name] of names.entries()) {
    if (stopping()) break;
    if (spaceShort(queueDir, rule)) {
      stats.kept += names.length - i;
      break;
    }
    try {
      const outcome = await pickupFile(ctx, name, removed);
      if (outcome !== "skip") stats[outcome]++;
    } catch (err) {
      if (isSystemError(err)) {
        log.error(`maildrop/${name}: ${(err as Error).message}; will try again`);
        stats.kept++;
      } else {
        quarantine(queueDir, "maildrop", name, err as Error);
        stats.corrupt++;
      }
    }
  }
  return stats;
}
