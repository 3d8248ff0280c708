/**
 * The virtual delivery agent, Postfix's virtual(8): mail for
 * virtual_mailbox_domains goes to mailboxes that are not UNIX accounts. For
 * each recipient, in Postfix's order: a Delivered-To: header already naming
 * it is a mail loop (bounce 5.4.6); virtual_mailbox_maps gives the mailbox
 * below virtual_mailbox_base (no entry: bounce 5.1.1 `unknown user`);
 * virtual_uid_maps and virtual_gid_maps give the rights the write uses (uid
 * below virtual_minimum_uid, or 0: defer 4.3.5); then the host writes the
 * Maildir or mbox file with those rights only. A table that fails defers
 * (4.3.5 "mail system configuration error"), never bounces.
 *
 * This module decides; the writing is the host's (`VirtualHost`): the local
 * service runs this agent and writes through its worker layer, as the
 * mapped uid/gid (src/local/virtual-host.ts; docs/architecture.md says why).
 *
 * Runs in the local service (root, or the invoking user in unprivileged
 * mode). Distrusts the request's addresses, the message (its Delivered-To:
 * lines are only compared) and every table result (paths, uids, gids).
 */
import type { Config } from "../global/config/config.ts";
import type { DeliveryAgent, DeliveryRecipient, DeliveryRequest, RecipientResult } from "../global/delivery/types.ts";
import { decodeQueueFile } from "../global/queue/format.ts";
import { readRequestedQueueFile } from "../global/queue/safe-read.ts";
import { lookupAddress } from "../global/tables/address-lookup.ts";
import { TableError, type Table } from "../global/tables/table.ts";
import { log } from "../util/log.ts";
import { virtualMailboxPath } from "./mailbox-path.ts";
import { virtualGid, virtualUid } from "./owner.ts";
import { readVirtualSettings, type VirtualSettings } from "./settings.ts";

/** One write the host performs with exactly `uid`/`gid`. */
export interface VirtualWrite {
  kind: "maildir" | "mbox";
  /** Absolute; a maildir ends in "/". Lies inside `within` (virtual_mailbox_base). */
  path: string;
  within: string;
  uid: number;
  gid: number;
  /** Envelope sender, for From_ and Return-Path:. */
  sender: string;
  /** X-Original-To: value. */
  originalTo: string;
  /** Delivered-To: value. */
  deliveredTo: string;
}

export type WriteResult = { ok: true } | { ok: false; dsn: string; text: string };

/** What the agent needs from the process that runs it. */
export interface VirtualHost {
  write(w: VirtualWrite, settings: VirtualSettings, content: Uint8Array): Promise<WriteResult>;
  /** Lower-cased Delivered-To: values of the message header. */
  deliveredTo(content: Uint8Array): Set<string>;
  close(): Promise<void>;
}

export interface VirtualAgentOptions {
  host: VirtualHost;
  queueDirectory: string;
  /** Opens a table (default: the shared opener). */
  openTable?: (spec: string) => Table;
}

export interface VirtualAgent extends DeliveryAgent {
  close(): Promise<void>;
}

type Outcome = Omit<RecipientResult, "index" | "relay">;

const CONFIG_ERROR = "mail system configuration error";

export function createVirtualAgent(config: Config, options: VirtualAgentOptions): VirtualAgent {
  const settings = readVirtualSettings(config);
  let opener: ((spec: string) => Table) | undefined = options.openTable;
  const tables = async (specs: string[]): Promise<Table[]> => {
    if (!opener) {
      const { openTable } = await import("../global/tables/open-table.ts");
      opener = (spec) => openTable(spec, config);
    }
    return specs.map((s) => opener!(s));
  };
  /** mail_addr_find over one parameter's tables: the value, undefined for none; throws on failure. */
  const find = async (param: string, specs: string[], user: string): Promise<string | undefined> => {
    if (specs.length === 0) return undefined;
    try {
      return (await lookupAddress(await tables(specs), user, settings.recipientDelimiter))?.value;
    } catch (err) {
      const text = err instanceof TableError ? err.message : (err as Error).message;
      throw new LookupFailure(`table ${param}: lookup ${user}: ${text}`);
    }
  };

  const defer = (dsn: string, reason: string): Outcome => ({ status: "deferred", dsn, reason, action: "delayed" });
  const bounce = (dsn: string, reason: string): Outcome => ({ status: "bounced", dsn, reason, action: "failed" });

  async function deliverOne(request: DeliveryRequest, content: Uint8Array, loops: Set<string>, rcpt: DeliveryRecipient): Promise<Outcome> {
    const address = rcpt.address;
    const user = address.toLowerCase();
    if (loops.has(user)) return bounce("5.4.6", `mail forwarding loop for ${address}`);
    if (settings.mailboxBase === "") {
      log.warn(`${request.queueId}: virtual_mailbox_base is not set; deferring mail for ${address}`);
      return defer("4.3.5", CONFIG_ERROR);
    }
    let mailbox: string | undefined;
    let uidText: string | undefined;
    let gidText: string | undefined;
    try {
      mailbox = await find("virtual_mailbox_maps", settings.mailboxMaps, user);
      if (mailbox === undefined) return bounce("5.1.1", `unknown user: "${user}"`);
      uidText = await find("virtual_uid_maps", settings.uidMaps, user);
      gidText = uidText === undefined ? undefined : await find("virtual_gid_maps", settings.gidMaps, user);
    } catch (err) {
      if (!(err instanceof LookupFailure)) throw err;
      log.warn(`${request.queueId}: ${err.message}`);
      return defer("4.3.5", CONFIG_ERROR);
    }
    const place = virtualMailboxPath(settings.mailboxBase, mailbox);
    if (!place.ok) {
      log.warn(`recipient ${user}: bad mailbox path ${JSON.stringify(mailbox)} in virtual_mailbox_maps`);
      return defer("4.3.5", CONFIG_ERROR);
    }
    if (uidText === undefined) {
      log.warn(`recipient ${user}: not found in virtual_uid_maps`);
      return defer("4.3.5", CONFIG_ERROR);
    }
    const uid = virtualUid(uidText, settings.minimumUid);
    if (uid === undefined) {
      log.warn(`recipient ${user}: bad uid ${uidText} in virtual_uid_maps`);
      return defer("4.3.5", CONFIG_ERROR);
    }
    if (gidText === undefined) {
      log.warn(`recipient ${user}: not found in virtual_gid_maps`);
      return defer("4.3.5", CONFIG_ERROR);
    }
    const gid = virtualGid(gidText);
    if (gid === undefined) {
      log.warn(`recipient ${user}: bad gid ${gidText} in virtual_gid_maps`);
      return defer("4.3.5", CONFIG_ERROR);
    }
    const maildir = place.kind === "maildir";
    // sendmail -bv: the lookups ran, nothing is written
    if (request.verify) return { status: "sent", dsn: "2.0.0", reason: maildir ? "delivers to maildir" : "delivers to mailbox", action: "delivered" };
    const r = await options.host.write(
      { kind: place.kind, path: place.path, within: settings.mailboxBase, uid, gid, sender: request.sender, originalTo: rcpt.original ?? address, deliveredTo: address },
      settings,
      content,
    );
    if (r.ok) return { status: "sent", dsn: "2.0.0", reason: maildir ? "delivered to maildir" : "delivered to mailbox", action: "delivered" };
    const reason = maildir ? `maildir delivery failed: ${r.text}` : `delivery failed to mailbox ${place.path}: ${r.text}`;
    return r.dsn.startsWith("4") ? defer(r.dsn, reason) : bounce(r.dsn, reason);
  }

  return {
    async deliver(request: DeliveryRequest): Promise<RecipientResult[]> {
      let content: Uint8Array;
      try {
        content = decodeQueueFile(readRequestedQueueFile(options.queueDirectory, request.queueFile)).content;
      } catch (err) {
        log.warn(`${request.queueId}: cannot read queue file ${request.queueFile}: ${(err as Error).message}`);
        return request.recipients.map((r) => ({ index: r.index, status: "deferred", dsn: "4.3.0", reason: "cannot read the queue file", relay: "virtual", action: "delayed" }));
      }
      const loops = options.host.deliveredTo(content);
      const results: RecipientResult[] = [];
      for (const rcpt of request.recipients) {
        let outcome: Outcome;
        try {
          outcome = await deliverOne(request, content, loops, rcpt);
        } catch (err) {
          log.error(`${request.queueId}: virtual delivery to ${rcpt.address} failed: ${(err as Error)?.stack ?? err}`);
          outcome = defer("4.3.0", "virtual delivery failed: internal error");
        }
        results.push({ index: rcpt.index, relay: "virtual", ...outcome });
      }
      return results;
    },
    close: () => options.host.close(),
  };
}

class LookupFailure extends Error {}
