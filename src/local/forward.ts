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
 * Runs in the local delivery agent; as root, cleanup and the queue file
 * write run in a worker that became mail_owner (worker/forward-commit.ts),
 * so root neither parses the forwarded headers for cleanup nor opens
 * cleanup's tables, and the queue manager owns the file.
 */
import { join } from "node:path";
import type { Envelope } from "../global/queue/format.ts";
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
    const envelope: Envelope = {
      arrivalTime: now.getTime(),
      sender: group.sender,
      recipients: group.recipients.map((r) => ({
        address: r.address,
        ...(r.original ? { original: r.original } : {}),
        ...(r.orcpt ? { orcpt: r.orcpt } : {}),
        ...(r.notify ? { notify: r.notify } : {}),
      })),
      attributes,
    };
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
    const job = { type: "forward", dir: join(s.queueDirectory, "incoming"), configText: s.configText, configDirectory: s.configDirectory, envelope, queueId: ctx.request.queueId, headerTemplate } as const;
    const r = await ctx.run(identity, job, ctx.content);
    if (!r.ok || r.type !== "commit") {
      ctx.warn(`${ctx.request.queueId}: cannot forward message: ${r.ok ? "unexpected reply" : r.text}`);
      // a cleanup table that cannot be read is 4.3.0; a virtual alias limit keeps its 4.6.0
      retry = ctx.defer(top, !r.ok && r.dsn.startsWith("4.") ? r.dsn : "4.3.0", "unable to forward message");
      break;
    }
    ctx.sent(top, `forwarded as ${r.queueId}`, "relayed");
  }
  return retry;
}
