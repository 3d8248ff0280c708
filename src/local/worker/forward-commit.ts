/**
 * The forward job (jobs.ts ForwardJob): mail that local delivery forwards
 * goes through cleanup's rewrites (src/cleanup/forwarded-submission.ts,
 * the one cleanup pipeline) and is committed as a new queue file in
 * incoming/ with local's Received: and Delivered-To: lines on top.
 *
 * As root this runs in a `local-worker` that became mail_owner, as
 * Postfix's cleanup runs: cleanup's tables are opened and the message's
 * headers parsed with mail_owner's rights, never root's, and the queue
 * manager owns the file. Unprivileged, it runs in the local service.
 *
 * Cleanup's settings come from the local service's configuration text,
 * sent with the job (the same generation the service delivers with, no
 * file read here); they are kept while the text stays the same. The
 * message and its addresses are untrusted; a table that cannot be read is
 * a temporary failure and nothing is committed.
 */
import { configSourceFromText } from "../../global/config/source.ts";
import { Config } from "../../global/config/config.ts";
import { commitQueueFile } from "../../global/queue/commit.ts";
import { encodeQueueFile } from "../../global/queue/format.ts";
import { CleanupDeferral } from "../../cleanup/address-rewrites.ts";
import { cleanupForwarded, type ForwardedCleanup } from "../../cleanup/forwarded-submission.ts";
import { cleanupSettings, type CleanupSettings } from "../../cleanup/settings.ts";
import type { ForwardJob, JobResult } from "./jobs.ts";
import { errnoText } from "./mbox-file.ts";

let cached: { key: string; settings: CleanupSettings } | undefined;

function settingsFor(job: ForwardJob): CleanupSettings {
  const key = `${job.configDirectory}\0${job.configText}`;
  if (cached?.key !== key) cached = { key, settings: cleanupSettings(new Config(configSourceFromText(job.configText, job.configDirectory))) };
  return cached.settings;
}

export async function commitForwarded(job: ForwardJob, payload: Uint8Array): Promise<JobResult> {
  const env = job.envelope;
  const rewriteContext = env.attributes.rewrite_context === "remote" ? "remote" : "local";
  let cleaned: ForwardedCleanup;
  try {
    cleaned = await cleanupForwarded({ sender: env.sender, recipients: env.recipients, content: payload, rewriteContext, queueId: job.queueId }, settingsFor(job), new Date(env.arrivalTime));
  } catch (err) {
    if (err instanceof CleanupDeferral) {
      // a table that cannot be read is 4.3.0, as cleanup's CLEANUP_STAT_WRITE; a limit keeps its own status
      return { ok: false, dsn: err.lookupFailed ? "4.3.0" : err.status, text: err.warning };
    }
    return { ok: false, dsn: "4.3.5", text: `cleanup of the forwarded message: ${(err as Error).message}` };
  }
  const warnings = cleaned.warnings.map((w) => `${job.queueId}: ${w}`);
  try {
    const queueId = await commitQueueFile(job.dir, (id) => {
      const head = Buffer.from(job.headerTemplate.replaceAll("%QUEUE_ID%", id), "utf8");
      const content = Buffer.concat([head, cleaned.content]);
      return encodeQueueFile({ ...env, sender: cleaned.sender, recipients: cleaned.recipients, content });
    });
    return { ok: true, type: "commit", queueId, warnings };
  } catch (err) {
    return { ok: false, dsn: "4.3.0", text: `cannot create a queue file in ${job.dir}: ${errnoText(err)}`, warnings };
  }
}
