/**
 * Forwarding as a new message, Postfix's forward_finish(): the addresses an
 * expansion sends elsewhere (other domains, other local users when the
 * expansion has an owner, :include: members) are grouped by Delivered-To:
 * address and envelope sender, and each group becomes one new queue file in
 * incoming/ with a Received: and a Delivered-To: header before the original
 * message. The recipient is then "forwarded as QUEUEID". Nothing is
 * committed when any part of the recipient's delivery must be tried again.
 *
 * Each new message goes through cleanup first, as Postfix's forward.c
 * hands it to the cleanup service with CLEANUP_FLAG_MAP_OK: canonical and
 * masquerade rewrites of the envelope and headers, virtual_alias_maps
 * expansion, no bcc copies (src/cleanup/forwarded-submission.ts). A table
 * that cannot be read defers the recipient; nothing is forwarded
 * unrewritten.
 *
 * Runs in the local delivery agent; as root the queue file is written by a
 * worker running as mail_owner, so the queue manager owns it.
 */
import { join } from "node:path";
import type { Envelope } from "../global/queue/format.ts";
import { CleanupDeferral } from "../cleanup/address-rewrites.ts";
import { cleanupForwarded, type ForwardedCleanup } from "../cleanup/forwarded-submission.ts";
import { mailDate } from "./message-copy.ts";
import type { MessageAttr, RecipientContext } from "./state.ts";

/** Queue-file attributes a forwarded message keeps (Postfix passes the client and SASL ones). */
const KEPT_ATTRIBUTES = ["client_name", "client_address", "helo", "protocol", "sasl_method", "sasl_username", "sasl_sender", "rewrite_context", "encoding", "smtputf8"];

export async function finishForwards(ctx: RecipientContext, top: MessageAttr): Promise<boolean> {
  const s = ctx.settings;
  let retry = false;
  for (const group of ctx.forwards.values()) {
    if (retry) break;
    const now = new Date();
    const attributes: Record<string, string> = {};
    for (const name of KEPT_ATTRIBUTES) {
      const v = ctx.request.attributes[name];
      if (v) attributes[name] = v;
    }
    if (group.envid) attributes.envid = group.envid;
    if (group.ret) attributes.ret = group.ret;
    attributes.origin = "local";
    const rewriteContext = attributes.rewrite_context === "remote" ? "remote" : "local";
    let cleaned: ForwardedCleanup;
    try {
      const recipients = group.recipients.map((r) => ({
        address: r.address,
        ...(r.original ? { original: r.original } : {}),
        ...(r.orcpt ? { orcpt: r.orcpt } : {}),
        ...(r.notify ? { notify: r.notify } : {}),
      }));
      const sub = { sender: group.sender, recipients, content: ctx.content, rewriteContext, queueId: ctx.request.queueId } as const;
      cleaned = await cleanupForwarded(sub, ctx.services.cleanupSettings(), now);
    } catch (err) {
      if (!(err instanceof CleanupDeferral)) throw err;
      ctx.warn(`${ctx.request.queueId}: ${err.warning}`);
      // a table that cannot be read is 4.3.0, as cleanup's CLEANUP_STAT_WRITE; a limit keeps its own status
      retry = err.lookupFailed ? ctx.defer(top, "4.3.0", "unable to forward message") : ctx.defer(top, err.status, err.reason);
      break;
    }
    for (const w of cleaned.warnings) ctx.warn(`${ctx.request.queueId}: ${w}`);
    const envelope: Envelope = { arrivalTime: now.getTime(), sender: cleaned.sender, recipients: cleaned.recipients, attributes };
    let headerTemplate = `Received: by ${s.myhostname} (${s.mailName})\n\tid %QUEUE_ID%; ${mailDate(now)}\n`;
    if (s.deliveredHeader.has("forward")) headerTemplate += `Delivered-To: ${group.delivered}\n`;
    let identity;
    if (ctx.services.privileged) {
      const pw = ctx.services.getpwnam(s.mailOwner);
      if (!pw) {
        ctx.warn(`mail_owner: unknown user "${s.mailOwner}"`);
        retry = ctx.defer(top, "4.3.5", "mail system configuration error");
        break;
      }
      identity = { uid: pw.uid, gid: pw.gid, user: pw.name };
    }
    const r = await ctx.run(identity, { type: "commit", dir: join(s.queueDirectory, "incoming"), envelope, headerTemplate }, cleaned.content);
    if (!r.ok || r.type !== "commit") {
      ctx.warn(`${ctx.request.queueId}: cannot forward message: ${r.ok ? "unexpected reply" : r.text}`);
      retry = ctx.defer(top, "4.3.0", "unable to forward message");
      break;
    }
    ctx.sent(top, `forwarded as ${r.queueId}`, "relayed");
  }
  return retry;
}
