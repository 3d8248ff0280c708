/**
 * Where the SMTP server's accepted mail goes: through the remote-client
 * cleanup (src/cleanup/remote-submission.ts) into a queue file committed
 * with write, fsync, rename, fsync of the directory in incoming/ (or hold/
 * after a HOLD action) before the client hears "250 2.0.0 Ok: queued as".
 *
 * The commit runs in the thread pool while other sessions share the
 * process, and directly on the event loop for a session that is alone in it
 * (commitFor); the steps and fsyncs are the same.
 *
 * Space: MAIL is refused with `452 4.3.1 Insufficient system storage` when
 * the queue file system has no more than queue_minfree or 1.5 times
 * message_size_limit free (Postfix's smtpd_check_queue, global/queue/
 * space.ts). A commit that fails all the same (the disk filled up meanwhile,
 * a short write, an I/O error) leaves no file behind and gets `451 4.3.0
 * Error: queue file write error`, as Postfix's cleanup status
 * CLEANUP_STAT_WRITE does. Nothing is ever acknowledged that is not on disk.
 *
 * Mail from dkim_sign_clients is DKIM-signed by cleanup (signers looked up
 * before the commit, cleanup/dkim-signing.ts); the server's own
 * Authentication-Results: header (an "auth-results" action of the policy,
 * mail-auth.ts) goes below the Received: header, and the message's headers
 * that claim $myhostname are removed.
 *
 * Logs as Postfix's smtpd and cleanup do:
 *   QUEUEID: client=NAME[ADDR], sasl_method=PLAIN, sasl_username=USER
 *   QUEUEID: message-id=<...>                       (syslog_name/cleanup)
 *   QUEUEID: hold: RCPT from NAME[ADDR]: ...; from=<> to=<> proto=ESMTP helo=<>
 *   QUEUEID: filter: RCPT from NAME[ADDR]: ...       (and redirect:, bcc:)
 *
 * The queue file carries the content filter (content_filter, or the last
 * FILTER action) as attribute `filter` and the last REDIRECT action as
 * attribute `redirect`, for the queue manager; BCC actions add recipients
 * with NOTIFY=NEVER, as Postfix's smtpd does.
 *
 * Runs in smtpd as mail_owner.
 */
import { join } from "node:path";
import { log } from "../util/log.ts";
import type { Config } from "../global/config/config.ts";
import { commitQueueFile, commitQueueFileSync } from "../global/queue/commit.ts";
import { encodeQueueFile, type Recipient } from "../global/queue/format.ts";
import { queueIdFor } from "../global/queue/names.ts";
import { queueSpaceRule, queueSpaceShortageSync } from "../global/queue/space.ts";
import { reply, type SmtpdReply } from "./protocol/reply.ts";
import { printable } from "../util/printable.ts";
import type { MessageSink, QueuedMessage } from "./protocol/types.ts";
import { cleanupRemoteSubmission, type RemoteRejection } from "../cleanup/remote-submission.ts";
import { cleanupSettings, type CleanupSettings } from "../cleanup/settings.ts";
import { toLatin1 } from "../cleanup/headers.ts";
import { CleanupDeferral, prepareRewrites, type PreparedRewrites } from "../cleanup/address-rewrites.ts";
import { bccRecipients, cleanupCheckTables, QUEUE_ID_PLACEHOLDER, runCleanupChecks, withQueueId, type CleanupChecksOutcome } from "../cleanup/header-body-checks.ts";
import type { CheckTables } from "../global/checks/content-checks.ts";
import type { DkimRequest, DkimSigning } from "../cleanup/dkim-signing.ts";
import { TableError } from "../global/tables/table.ts";
import { workDone } from "../util/young-garbage.ts";

class Refused extends Error {
  constructor(readonly rejection: RemoteRejection) {
    super(rejection.text);
  }
}

const INSUFFICIENT = reply(452, "4.3.1", "Insufficient system storage");
const WRITE_ERROR = reply(451, "4.3.0", "Error: queue file write error");

export interface SinkOptions {
  config: Config;
  /** Whether the session's client gets local header rewriting (local_header_rewrite_clients). */
  localRewrite: (message: QueuedMessage) => Promise<boolean>;
  /** Log tag of cleanup's lines ("postfix/cleanup"). */
  cleanupTag: string;
  /** DKIM signing, for mail of the clients signClient says yes to (dkim_sign_clients). */
  dkim?: DkimSigning;
  signClient?: (message: QueuedMessage) => Promise<boolean>;
  /**
   * Whether the committing session is the only one this process serves now: its commit then runs
   * every step directly on the event loop, where nothing else waits (see commitFor).
   */
  alone?: () => boolean;
}

let discardCounter = 0;

type Commit = (dir: string, build: (queueId: string) => Uint8Array) => Promise<string>;

/** commitQueueFileSync in the shape of commitQueueFile: the same steps and fsyncs, none through the thread pool. */
const commitInline: Commit = async (dir, build) => commitQueueFileSync(dir, build);

/**
 * The commit for a session: with other sessions in the process, the asynchronous form, whose file
 * creation and fsyncs wait in the thread pool while the event loop serves the others (and whose
 * directory fsync is shared with theirs). A lone session's client waits for its 250 and nothing
 * else waits for the event loop, so the three hand-overs to a pool thread and back (a wake-up of
 * each side per step) are only latency on the path of every message: at one SMTP session they
 * cost smtpd about 0.2 ms of CPU per message (bench/README.md, issue 16 session 8).
 */
function commitFor(alone: boolean): Commit {
  return alone ? commitInline : commitQueueFile;
}

/** A queue ID for a message that gets no queue file (discarded or rejected), for its log lines. */
function pseudoQueueId(): string {
  return queueIdFor(process.pid * 1000 + (discardCounter++ % 1000), Math.floor(performance.now() * 1000));
}

export class QueueSink implements MessageSink {
  #opts: SinkOptions;
  #settings: CleanupSettings;
  #checks?: { tables: CheckTables | undefined };

  constructor(opts: SinkOptions) {
    this.#opts = opts;
    this.#settings = cleanupSettings(opts.config);
  }

  /** header_checks and body_checks (cleanup/header-body-checks.ts), opened on first use. */
  get #checkTables(): CheckTables | undefined {
    this.#checks ??= { tables: cleanupCheckTables(this.#opts.config) };
    return this.#checks.tables;
  }

  get #queueDir(): string {
    return this.#opts.config.str("queue_directory");
  }

  /**
   * At MAIL FROM; `size` is the SIZE parameter (0: none). statfs(2) of a
   * local file system is a quick call, made here directly rather than
   * through the thread pool, whose hand-over costs more (issue 16).
   */
  async checkSpace(size: number): Promise<SmtpdReply | undefined> {
    try {
      const shortage = queueSpaceShortageSync(this.#queueDir, queueSpaceRule(this.#opts.config), size);
      if (!shortage) return undefined;
      log.warn(shortage.warning);
      return INSUFFICIENT;
    } catch (err) {
      log.warn(`cannot get the free space of ${this.#queueDir}: ${(err as Error).message}`);
      return undefined;
    }
  }

  async commit(message: QueuedMessage): Promise<{ queueId: string } | { reject: SmtpdReply }> {
    const s = message.session;
    const namaddr = `${s.client.name}[${s.client.address}]`;
    const whatsup = (to: string) =>
      `; from=<${printable(message.sender)}>${to ? ` to=<${printable(to)}>` : ""} proto=${s.protocol}${s.helo !== undefined ? ` helo=<${s.helo}>` : ""}`;

    const discard = message.actions.find((a) => a.kind === "discard");
    if (discard && discard.kind === "discard") {
      const id = pseudoQueueId();
      log.info(`${id}: ${discard.label ?? "discard"}: ${discard.stage} from ${namaddr}: ${discard.reason}${whatsup(discard.subject)}`);
      return { queueId: id };
    }
    const hold = message.actions.find((a) => a.kind === "hold");
    const attributes: Record<string, string> = {
      client_name: s.client.name,
      client_address: s.client.address,
      client_port: String(s.client.port),
      protocol: s.protocol,
    };
    if (s.helo !== undefined) attributes.helo = s.helo;
    if (s.sasl) {
      attributes.sasl_method = s.sasl.method;
      attributes.sasl_username = s.sasl.username;
    }
    const p = message.mailParams;
    if (p.envid !== undefined) attributes.envid = p.envid;
    if (p.ret !== undefined) attributes.ret = p.ret;
    if (p.body !== undefined) attributes.encoding = p.body;
    if (p.smtputf8) attributes.smtputf8 = "yes";
    const recipients: Recipient[] = message.recipients.map((r) => ({
      address: r.address,
      ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}),
      ...(r.notify ? { notify: r.notify } : {}),
    }));
    // Postfix's smtpd: content_filter first, a FILTER action overrides it; REDIRECT for the queue
    // manager to apply; each BCC one more recipient that never gets a delivery notice
    const logged = message.actions.filter((a) => a.kind === "filter" || a.kind === "redirect" || a.kind === "bcc");
    const filter = message.actions.findLast((a) => a.kind === "filter")?.filter ?? this.#opts.config.str("content_filter");
    if (filter) attributes.filter = filter;
    const redirect = message.actions.findLast((a) => a.kind === "redirect");
    if (redirect) attributes.redirect = redirect.address;
    for (const a of message.actions) if (a.kind === "bcc") recipients.push({ address: a.address, notify: ["NEVER"] });
    const rewriteContext = (await this.#opts.localRewrite(message)) ? "local" : "remote";
    // header and body checks, before the queue file exists: a rejection queues nothing
    let checks: CleanupChecksOutcome | undefined;
    let content: Uint8Array = message.content;
    try {
      const tables = this.#checkTables;
      if (tables) {
        const last = message.recipients.at(-1);
        checks = await runCleanupChecks(content, tables, {
          origin: namaddr,
          sender: printable(message.sender),
          ...(last ? { recipient: printable(last.address) } : {}),
          proto: s.protocol,
          ...(s.helo !== undefined ? { helo: s.helo } : {}),
        }, toLatin1(message.received(QUEUE_ID_PLACEHOLDER)));
      }
    } catch (err) {
      if (!(err instanceof TableError)) throw err;
      log.write("warning", `NOQUEUE: ${err.spec} map lookup problem -- message not accepted, try again later: ${err.detail}`, this.#opts.cleanupTag);
      return { reject: WRITE_ERROR };
    }
    if (checks) {
      for (const w of checks.warnings) log.write("warning", w, this.#opts.cleanupTag);
      content = checks.content;
      if (checks.reject !== undefined || checks.discard) {
        const id = pseudoQueueId();
        for (const line of withQueueId(checks.logs, id)) log.write("info", `${id}: ${line}`, this.#opts.cleanupTag);
        if (checks.reject !== undefined) return { reject: reply(checks.reject.startsWith("4") ? 451 : 550, checks.reject.slice(0, checks.reject.indexOf(" ")), checks.reject.slice(checks.reject.indexOf(" ") + 1)) };
        return { queueId: id };
      }
      recipients.push(...bccRecipients(checks.bcc));
      if (checks.filter !== undefined) attributes.filter = checks.filter;
      if (checks.redirect !== undefined) attributes.redirect = checks.redirect;
    }
    const dir = join(this.#queueDir, hold || checks?.hold ? "hold" : "incoming");
    // the rewrites that look tables up run before the queue file exists: a failed lookup queues nothing
    let rewrites: PreparedRewrites;
    try {
      rewrites = await prepareRewrites({ sender: message.sender, recipients, content, rewriteContext }, this.#settings);
    } catch (err) {
      if (!(err instanceof CleanupDeferral)) throw err;
      log.write("warning", `NOQUEUE: ${err.warning} from ${namaddr}`, this.#opts.cleanupTag);
      return { reject: err.lookupFailed ? WRITE_ERROR : reply(451, err.status, err.reason) };
    }
    let dkim: DkimRequest | undefined;
    const signing = this.#opts.dkim;
    if (signing && (await this.#opts.signClient?.(message))) {
      try {
        dkim = { signing, choice: await signing.choose(Buffer.from(content.buffer, content.byteOffset, content.byteLength), rewrites.sender, rewrites.headerMap.values()) };
      } catch (err) {
        if (!(err instanceof TableError)) throw err;
        log.write("warning", `NOQUEUE: dkim_sign_maps lookup error: ${err.message} from ${namaddr}`, this.#opts.cleanupTag);
        return { reject: WRITE_ERROR };
      }
    }
    const authResults = message.actions.find((a) => a.kind === "auth-results");
    let queueId: string;
    try {
      queueId = await commitFor(this.#opts.alone?.() ?? false)(dir, (id) => {
        const result = cleanupRemoteSubmission(
          {
            arrival: message.arrival,
            sender: message.sender,
            recipients,
            rewrites,
            content,
            received: message.received,
            ...(checks?.ownHeader ? { receivedLines: (id: string) => withQueueId(checks.ownHeader!, id) } : {}),
            prepend: message.actions.flatMap((a) => (a.kind === "prepend" ? [a.header] : [])),
            attributes,
            rewriteContext,
            ...(dkim ? { dkim } : {}),
            ...(authResults?.kind === "auth-results" ? { authResults: { header: authResults.header, authservId: authResults.authservId, ...(authResults.arc ? { arc: authResults.arc } : {}) } } : {}),
          },
          this.#settings,
          id,
        );
        if ("rejection" in result) throw new Refused(result.rejection);
        // logged before the rename makes the file visible to the queue manager, as Postfix's order is
        const sasl = s.sasl ? `, sasl_method=${s.sasl.method}, sasl_username=${s.sasl.username}` : "";
        log.info(`${id}: client=${namaddr}${sasl}`);
        if (hold && hold.kind === "hold") log.info(`${id}: ${hold.label ?? "hold"}: ${hold.stage} from ${namaddr}: ${hold.reason}${whatsup(hold.subject)}`);
        for (const line of withQueueId(checks?.logs ?? [], id)) log.write("info", `${id}: ${line}`, this.#opts.cleanupTag);
        for (const a of logged) log.info(`${id}: ${a.kind}: ${a.stage} from ${namaddr}: ${a.reason}${whatsup(a.subject)}`);
        for (const w of [...rewrites.warnings, ...result.warnings]) log.write("warning", `${id}: ${w}`, this.#opts.cleanupTag);
        for (const line of result.logs) log.write("info", `${id}: ${line}`, this.#opts.cleanupTag);
        return encodeQueueFile(result.file);
      });
    } catch (err) {
      if (err instanceof Refused) {
        log.write("warning", `NOQUEUE: ${err.rejection.warning} from ${namaddr}`, this.#opts.cleanupTag);
        return { reject: reply(err.rejection.code, err.rejection.dsn, err.rejection.text) };
      }
      log.warn(`${namaddr}: cannot write a queue file in ${dir}: ${(err as Error).message}`);
      return { reject: WRITE_ERROR };
    }
    workDone();
    return { queueId };
  }
}
