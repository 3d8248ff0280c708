/**
 * The local delivery agent, Postfix's local(8): createLocalAgent(config)
 * returns a DeliveryAgent the queue manager calls with delivery requests
 * for the local transport. For each recipient it expands aliases, .forward
 * and :include: files, delivers to mailboxes, maildirs, files and commands,
 * forwards what goes elsewhere as new messages, and returns one result per
 * recipient. The queue manager logs and records the results; this module
 * logs only warnings and errors. A request with `verify` set (sendmail -bv)
 * goes through the same lookups and expansions, reads .forward and
 * :include: files, and stops at each leaf with what it would do: nothing is
 * written, run or forwarded.
 *
 * Privileges: started as root, every delivery runs as the recipient (uid,
 * gid and supplementary groups) in a `local-worker` child that dropped its
 * privileges itself (performer.ts), killed when a job overruns its time
 * limit (global/delivery/local-limits.ts); alias commands and files run as
 * default_privs or the alias database's owner, as Postfix decides. Started
 * by another user (unprivileged mode), everything runs in-process as that
 * user. Input is untrusted: message content, addresses, alias values,
 * .forward and :include: files.
 */
import { readRequestedQueueFile } from "../global/queue/safe-read.ts";
import type { Config } from "../global/config/config.ts";
import { localDeliveryLimits } from "../global/delivery/local-limits.ts";
import { addExported, runtimeEnvironment } from "../global/system/child-environment.ts";
import { decodeQueueFile } from "../global/queue/format.ts";
import type { DeliveryAgent, DeliveryRecipient, DeliveryRequest, ExpandedResult, RecipientResult } from "../global/delivery/types.ts";
import { summarizeFinals } from "../global/delivery/pass-on.ts";
import { log } from "../util/log.ts";
import { finishForwards } from "./forward.ts";
import { deliveredToAddresses } from "./message-copy.ts";
import { InProcessPerformer, WorkerPool, type Performer } from "./worker/performer.ts";
import { deliverRecipient } from "./recipient.ts";
import { LocalServices, type TableOpener } from "./services.ts";
import { readLocalSettings } from "./settings.ts";
import { NO_USER, RecipientContext, type MessageAttr } from "./state.ts";

export interface LocalAgentOptions {
  /** Opens an alias_maps or mailbox_command_maps table (default: the shared table opener). */
  openTable?: TableOpener;
  /** Root mode with workers, or unprivileged in-process delivery (default: whether we run as root). */
  privileged?: boolean;
  /** How to start a worker (default: this executable, `postern local-worker`). */
  workerCommand?: string[];
  /** Idle time before a worker exits (default 5 s). */
  workerIdleMs?: number;
  /** The user database (tests point it at a file of their own). */
  passwdFile?: string;
  /** Which domains are delivered here (default: the resolver's mydestination test, tables included). */
  isLocalDomain?: (domain: string) => Promise<boolean>;
  performer?: Performer;
}

export interface LocalAgent extends DeliveryAgent {
  /** Stops the workers (its tables close with its configuration: src/global/config/generation.ts). */
  close(): Promise<void>;
}

async function defaultTableOpener(config: Config): Promise<TableOpener> {
  const { openTable } = await import("../global/tables/open-table.ts");
  return (spec) => openTable(spec, config, { noRegsub: true });
}

/** The workers are this executable again: the allocator's settings and their JSC options, export_environment without BUN_ variables. */
export function workerEnvironment(config: Config): Record<string, string> {
  return addExported({ PATH: "/usr/bin:/bin", ...runtimeEnvironment("local-worker") }, config.list("export_environment"), true);
}

/**
 * Where jobs run: workers that become each identity (root), or this process (unprivileged).
 * The virtual agent's writes use one of these too (virtual-host.ts).
 */
export function createPerformer(config: Config, options: Pick<LocalAgentOptions, "privileged" | "workerCommand" | "workerIdleMs"> = {}): Performer {
  const privileged = options.privileged ?? process.getuid?.() === 0;
  if (!privileged) return new InProcessPerformer();
  return new WorkerPool({
    command: options.workerCommand ?? [process.execPath, "local-worker"],
    argv0: "postern",
    env: workerEnvironment(config),
    cwd: config.str("queue_directory"),
    idleMs: options.workerIdleMs,
    jobTimeoutMs: localDeliveryLimits(config).jobMs,
  });
}

export function createLocalAgent(config: Config, options: LocalAgentOptions = {}): LocalAgent {
  const settings = readLocalSettings(config);
  const limits = localDeliveryLimits(config);
  const privileged = options.privileged ?? process.getuid?.() === 0;
  const performer = options.performer ?? createPerformer(config, { ...options, privileged });
  let opener: Promise<TableOpener> | undefined;
  const services = new LocalServices({
    settings,
    performer,
    privileged,
    openTable: async (spec) => {
      opener ??= options.openTable ? Promise.resolve(options.openTable) : defaultTableOpener(config);
      return (await opener)(spec);
    },
    passwdFile: options.passwdFile,
    isLocalDomain:
      options.isLocalDomain ??
      (async (domain) => {
        const { isLocalDomain } = await import("../global/rewrite/resolve.ts");
        return isLocalDomain(config, domain);
      }),
  });

  async function deliverOne(request: DeliveryRequest, content: Uint8Array, loopInfo: Set<string>, rcpt: DeliveryRecipient, deadline: number): Promise<RecipientResult> {
    const ctx = new RecipientContext(request, content, loopInfo, services, deadline);
    const msg: MessageAttr = {
      level: 0,
      recipient: rcpt.address,
      original: rcpt.original ?? rcpt.address,
      orcpt: rcpt.orcpt,
      notify: rcpt.notify,
      envid: request.attributes.envid,
      ret: request.attributes.ret,
      sender: request.sender,
    };
    let retry: boolean;
    try {
      retry = await deliverRecipient({ msg, ctx }, NO_USER);
      if (!retry) retry = await finishForwards(ctx, msg);
    } catch (err) {
      log.error(`${request.queueId}: local delivery to ${rcpt.address} failed: ${(err as Error)?.stack ?? err}`);
      ctx.defer(msg, "4.3.0", "local delivery failed: internal error");
      retry = true;
    }
    return summarize(rcpt, ctx);
  }

  return {
    async deliver(request: DeliveryRequest): Promise<RecipientResult[]> {
      let content: Uint8Array;
      try {
        // the request names the file, and mail_owner writes the requests: root reads only a queue file
        content = decodeQueueFile(readRequestedQueueFile(settings.queueDirectory, request.queueFile)).content;
      } catch (err) {
        log.warn(`${request.queueId}: cannot read queue file ${request.queueFile}: ${(err as Error).message}`);
        return request.recipients.map((r) => ({
          index: r.index,
          status: "deferred",
          dsn: "4.3.0",
          reason: "cannot read the queue file",
          relay: "local",
          action: "delayed",
        }));
      }
      const loopInfo = deliveredToAddresses(content);
      const results: RecipientResult[] = [];
      // no job starts after this: the queue manager waits a job's length and a margin longer (local-limits.ts)
      const deadline = Date.now() + limits.requestMs;
      // recipients one after another, as Postfix's local(8) does within a request
      for (const rcpt of request.recipients) results.push(await deliverOne(request, content, loopInfo, rcpt, deadline));
      return results;
    },
    close: () => services.close(),
  };
}

/**
 * One result for the recipient: deferred if any part was, bounced if every
 * part bounced, else sent. Addresses passed to another transport count as
 * deferred until the queue manager has delivered them (passOn).
 */
function summarize(rcpt: DeliveryRecipient, ctx: RecipientContext): RecipientResult {
  const expanded: ExpandedResult[] = ctx.outcomes.map((o) => ({ address: o.address, status: o.status, dsn: o.dsn, reason: o.reason, action: o.action }));
  if (ctx.passes.length === 0) return summarizeFinals(rcpt.index, "local", expanded);
  const pending: ExpandedResult[] = ctx.passes.map((p) => ({ address: p.address, status: "deferred", dsn: "4.3.0", reason: `not yet passed to transport ${p.transport}`, action: "delayed" }));
  return { ...summarizeFinals(rcpt.index, "local", [...expanded, ...pending]), expanded, passOn: [...ctx.passes] };
}
