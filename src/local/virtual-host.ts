/**
 * The local service's side of the virtual agent (src/virtual/): the agent
 * decides where a message goes and with which uid/gid, and this host writes
 * it through local delivery's worker layer (worker/performer.ts), in a
 * `local-worker` that became exactly that uid and gid (no supplementary
 * groups), never root: the agent refuses uid 0 before it gets here. The
 * writers are local(8)'s: an mbox file is locked (virtual_mailbox_lock),
 * opened without following symbolic links or accepting hard links, must be
 * owned by the uid (strict_mailbox_ownership) and lie inside
 * virtual_mailbox_base; a Maildir gets its missing folders. Both carry
 * Return-Path:, X-Original-To: and Delivered-To:, as Postfix's virtual(8).
 *
 * Runs in the local service (root; in unprivileged mode everything is
 * written in-process as the invoking user, and strict_mailbox_ownership
 * expects that user). The paths come from the agent,
 * built from untrusted table results and checked there and in the writers.
 */
import type { Config } from "../global/config/config.ts";
import type { VirtualHost, VirtualWrite, WriteResult } from "../virtual/agent.ts";
import type { VirtualSettings } from "../virtual/settings.ts";
import { deliveredToAddresses, envelopePrefix } from "./message-copy.ts";
import type { Performer } from "./worker/performer.ts";

/** `privileged`: jobs run as the mapped ids (root's worker pool); otherwise everything is the invoking user's. */
export function createVirtualHost(config: Config, performer: Performer, privileged = process.getuid?.() === 0): VirtualHost {
  // unprivileged mode writes every mailbox as the invoking user: that is the owner to expect
  const owner = (w: VirtualWrite) => (privileged ? w.uid : (process.getuid?.() ?? w.uid));
  const attempts = Math.max(1, config.int("deliver_lock_attempts"));
  const delayMs = config.time("deliver_lock_delay") * 1000;
  const staleSeconds = config.time("stale_lock_time");
  return {
    async write(w: VirtualWrite, s: VirtualSettings, content: Uint8Array): Promise<WriteResult> {
      const identity = { uid: w.uid, gid: w.gid };
      const lines = { sender: w.sender, returnPath: true, originalTo: w.originalTo, deliveredTo: w.deliveredTo };
      const r =
        w.kind === "maildir"
          ? await performer.run(
              identity,
              { type: "maildir", dir: w.path, prefix: envelopePrefix({ ...lines, fromLine: false }), sizeLimit: s.mailboxLimit, hostname: s.myhostname, within: w.within, defaultDsn: "4.2.0" },
              content,
            )
          : await performer.run(
              identity,
              {
                type: "mbox",
                path: w.path,
                prefix: envelopePrefix({ ...lines, fromLine: true }),
                quote: true,
                blank: true,
                lock: { ...s.locks, dotlockMayFail: false, attempts, delayMs, staleSeconds },
                sizeLimit: s.mailboxLimit,
                defaultDsn: "4.2.0",
                mailbox: { ownerUid: s.strictMailboxOwnership ? owner(w) : undefined },
                within: w.within,
              },
              content,
            );
      return r.ok ? { ok: true } : { ok: false, dsn: r.dsn, text: r.text };
    },
    deliveredTo: deliveredToAddresses,
    close: () => performer.close(),
  };
}
