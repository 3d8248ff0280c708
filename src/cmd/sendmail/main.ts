/**
 * sendmail(1), Postfix's Sendmail-compatible submission interface:
 * `sendmail [options] [recipient ...]`. Reads the configuration (-C or
 * MAIL_CONFIG), parses the options as Postfix does (options.ts), and runs
 * the selected mode: delivery (the default, enqueue.ts), -bp (list the
 * queue), -q / -qR / -qI (flush), -bd (start the mail system), -bv (verify
 * recipients through a report), -bi / -I (newaliases), and -bs (an SMTP
 * session on stdin/stdout: the smtpd role stand-alone, `postern smtpd -S`).
 *
 * Runs as the invoking user, never set-uid; starts fast because everything
 * but the delivery path is imported only when its mode is chosen. Errors go
 * to stderr as `sendmail: fatal: ...` and to the mail log.
 */
import { log } from "../../util/log.ts";
import { ExitError, EX_SOFTWARE, EX_USAGE } from "../../util/sysexits.ts";
import { loadConfig, type Config } from "../../global/config/config.ts";
import { setupLog } from "../../global/system/log-setup.ts";
import type { FlushRequest } from "../../global/queue/flush-request.ts";
import { parseSendmailArgs, prescanConfigDir, type SendmailRequest } from "./options.ts";
import { checkSubmitter, enqueue } from "./enqueue.ts";

function noRecipients(req: SendmailRequest, what: string): void {
  if (req.operands.length) throw new ExitError(EX_USAGE, `${what} requires no recipient`);
}

async function listQueue(config: Config): Promise<number> {
  const { listQueueCommand } = await import("../postqueue/list.ts");
  return listQueueCommand(config, false);
}

async function flush(config: Config, request: FlushRequest): Promise<number> {
  const { flushCommand } = await import("../postqueue/flush.ts");
  return flushCommand(config, request);
}

/** -bi / -I: newaliases, on -oA's databases or else alias_database. */
async function rebuildAliases(config: Config, req: SendmailRequest): Promise<number> {
  const { newaliasesCommand } = await import("../postalias/newaliases.ts");
  const databases = req.aliasDatabase?.split(/[\s,]+/).filter(Boolean);
  return newaliasesCommand(config, databases?.length ? databases : undefined);
}

async function startMailSystem(req: SendmailRequest): Promise<number> {
  const { main } = await import("../control/main.ts");
  return main(req.configDir !== undefined ? ["-c", req.configDir] : [], "start");
}

export async function main(args: string[], invokedAs: string): Promise<number> {
  const config = loadConfig(prescanConfigDir(args));
  await setupLog(config, { role: "sendmail", stderrProgram: "sendmail" });
  const req = parseSendmailArgs(args, invokedAs, { verpFilter: config.str("verp_delimiter_filter") });
  // -q<interval> is about a queue-running daemon, which the master's queue manager is
  if (req.queueInterval !== undefined && req.mode !== "daemon") return 0;
  switch (req.mode) {
    case "enqueue":
      if (req.flushSite !== undefined) {
        noRecipients(req, "flush site");
        return flush(config, { kind: "site", site: req.flushSite });
      }
      if (req.flushId !== undefined) {
        noRecipients(req, "flush queue_id");
        return flush(config, { kind: "id", id: req.flushId });
      }
      return enqueue(config, req);
    case "mailq":
      noRecipients(req, "display queue mode");
      return listQueue(config);
    case "flush":
      noRecipients(req, "flush queue mode");
      return flush(config, { kind: "all" });
    case "daemon":
      noRecipients(req, "daemon mode");
      return startMailSystem(req);
    case "newaliases":
      noRecipients(req, "alias initialization mode");
      return rebuildAliases(config, req);
    case "smtp": {
      noRecipients(req, "stand-alone mode");
      const uid = process.getuid?.() ?? 0;
      await checkSubmitter(config, uid);
      // as Postfix's sendmail execs smtpd -S: the SMTP server role, stand-alone, on our stdin and stdout
      const smtpd = Bun.spawn([process.execPath, "smtpd", "-S", "-c", config.source.directory], { stdin: "inherit", stdout: "inherit", stderr: "inherit" });
      return await smtpd.exited;
    }
    case "ignore":
      return 0;
  }
  log.panic(`unknown sendmail mode "${req.mode as string}"`);
  return EX_SOFTWARE;
}
