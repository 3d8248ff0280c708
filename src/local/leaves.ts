/**
 * The leaves of local delivery: a /file (mbox format, or a maildir when the
 * name ends in "/"), a maildir, and a |command. Each runs as a job with the
 * rights Postfix would use: the user's, or default_privs when no user
 * context exists or the user is root.
 *
 * In verify mode (sendmail -bv) each leaf stops where Postfix's does, after
 * the duplicate and policy checks and before any rights are taken, and
 * reports what it would do without running a job.
 *
 * Runs in the local delivery agent; the jobs run in it or in a worker.
 */
import { localExpand } from "./local-expand.ts";
import { addExported } from "../global/system/child-environment.ts";
import { judgeCommand } from "./command-status.ts";
import { envelopePrefix } from "./message-copy.ts";
import { expansionValues } from "./recipient.ts";
import { descend, type LocalState, type UserAttr } from "./state.ts";
import type { Identity, MaildirJob, MboxJob } from "./worker/jobs.ts";

/** Postfix's deliver_file. */
export async function deliverFile(parent: LocalState, usrIn: UserAttr, path: string): Promise<boolean> {
  const state = descend(parent);
  const { msg, ctx } = state;
  const s = ctx.settings;
  if (ctx.dup.seen(`file ${usrIn.uid} ${path}`)) return false;
  if (!msg.expType || !s.allowFiles.has(msg.expType)) return ctx.bounce(msg, "5.7.1", "mail to file is restricted");
  // a maildir named in an alias or .forward is "file" here too, as with Postfix
  if (ctx.verify) return ctx.sent(msg, `delivers to file: ${path}`);
  const rights = ctx.services.externalRights(usrIn);
  if ("error" in rights) {
    ctx.warn(rights.error);
    return ctx.defer(msg, "4.3.5", "mail system configuration error");
  }
  const usr = rights.usr;
  if (path.endsWith("/")) return deliverMaildir(state, usr, path);
  const r = await ctx.run(
    ctx.services.identity(usr),
    { ...mboxAppendJob(state, path), lock: { ...s.lock, dotlockMayFail: true }, refuseExecutable: true },
    ctx.content,
  );
  if (!r.ok) return ctx.fail(msg, r.dsn, `cannot append message to file ${path}: ${r.text}`);
  return ctx.sent(msg, `delivered to file: ${path}`);
}

/**
 * What every mbox append shares (a mailbox, or a file a .forward or alias names): the From_ line,
 * Return-Path:, X-Original-To: and Delivered-To: (when delivered_header has "file"), From_ quoting, the
 * blank line after, mailbox_size_limit and 5.2.0 for a failure. Callers add the lock and the checks of
 * their kind.
 */
export function mboxAppendJob(state: LocalState, path: string): Omit<MboxJob, "lock"> {
  const { msg, ctx } = state;
  const s = ctx.settings;
  return {
    type: "mbox",
    path,
    prefix: envelopePrefix({
      fromLine: true,
      sender: msg.sender,
      returnPath: true,
      originalTo: msg.original,
      deliveredTo: s.deliveredHeader.has("file") ? msg.delivered : undefined,
    }),
    quote: true,
    blank: true,
    sizeLimit: s.mailboxSizeLimit,
    defaultDsn: "5.2.0",
  };
}

/** Postfix's deliver_maildir. */
export async function deliverMaildir(parent: LocalState, usr: UserAttr, path: string, gid = usr.gid, within?: string): Promise<boolean> {
  const state = descend(parent);
  const { msg, ctx } = state;
  if (ctx.verify) return ctx.sent(msg, "delivers to maildir");
  const leaf = maildirLeaf(state, usr, path, gid, within);
  const r = await ctx.run(leaf.identity, leaf.job, ctx.content);
  if (!r.ok) return ctx.fail(msg, r.dsn, `maildir delivery failed: ${r.text}`);
  return ctx.sent(msg, "delivered to maildir");
}

/**
 * The job deliverMaildir runs at `state` (its own level, after the verify
 * check), and the rights it runs with; sets the Delivered-To: address on
 * `state.msg` as the delivery does. mailbox.ts plans the same job ahead.
 */
export function maildirLeaf(state: LocalState, usr: UserAttr, path: string, gid = usr.gid, within?: string): { identity: Identity | undefined; job: MaildirJob } {
  const { msg, ctx } = state;
  const s = ctx.settings;
  if (!s.frozenDeliveredTo) msg.delivered = msg.recipient;
  return {
    identity: ctx.services.identity(usr, gid),
    job: {
      type: "maildir",
      dir: path,
      prefix: envelopePrefix({
        fromLine: false,
        sender: msg.sender,
        returnPath: true,
        originalTo: msg.original,
        deliveredTo: s.deliveredHeader.has("file") ? msg.delivered : undefined,
      }),
      sizeLimit: s.mailboxSizeLimit,
      hostname: s.systemHostname,
      ...(within !== undefined ? { within } : {}),
    },
  };
}

function censor(value: string, filter: string): string {
  if (!filter) return value;
  let out = "";
  for (const c of value) out += filter.includes(c) ? c : "_";
  return out;
}

/** Postfix's deliver_command. */
export async function deliverCommand(parent: LocalState, usrIn: UserAttr, command: string): Promise<boolean> {
  const state = descend(parent);
  const { msg, ctx } = state;
  const s = ctx.settings;
  const parts = msg.parts;
  const user = parts?.user ?? "";
  if (ctx.dup.seen(`command ${user}:${usrIn.uid} ${command}`)) return false;
  if (ctx.verify) return ctx.sent(msg, `delivers to command: ${command}`);
  const rights = ctx.services.externalRights(usrIn);
  if ("error" in rights) {
    ctx.warn(rights.error);
    return ctx.defer(msg, "4.3.5", "mail system configuration error");
  }
  const usr = rights.usr;

  const env: Record<string, string> = {};
  const add = (name: string, value: string | undefined) => {
    if (value !== undefined) env[name] = censor(value, s.commandExpansionFilter);
  };
  // only what Postfix passes: message context, then PATH and export_environment
  if (usrIn.home !== undefined) add("HOME", usrIn.home);
  add("LOGNAME", user);
  add("USER", user);
  add("SENDER", msg.sender);
  add("RECIPIENT", msg.recipient);
  add("LOCAL", parts?.local);
  if (usrIn.shell !== undefined) add("SHELL", usrIn.shell);
  if (parts?.domain) add("DOMAIN", parts.domain);
  if (parts?.extension) add("EXTENSION", parts.extension);
  if (msg.original) add("ORIGINAL_RECIPIENT", msg.original);
  const a = ctx.request.attributes;
  for (const [name, key] of [
    ["CLIENT_HOSTNAME", "client_name"],
    ["CLIENT_ADDRESS", "client_address"],
    ["CLIENT_HELO", "helo"],
    ["CLIENT_PROTOCOL", "protocol"],
    ["SASL_METHOD", "sasl_method"],
    ["SASL_SENDER", "sasl_sender"],
    ["SASL_USERNAME", "sasl_username"],
  ] as const) {
    if (a[key]) add(name, a[key]);
  }
  env.PATH = "/usr/bin:/bin";
  addExported(env, s.exportEnvironment);

  let cwd: string | undefined = s.queueDirectory;
  if (s.commandExecutionDirectory) {
    const exp = localExpand(s.commandExecutionDirectory, expansionValues(state, usrIn), s.executionDirectoryExpansionFilter);
    if (exp.error) {
      ctx.warn(`bad parameter value syntax for command_execution_directory: ${s.commandExecutionDirectory}`);
      return ctx.defer(msg, "4.3.5", "mail system configuration error");
    }
    cwd = exp.text || undefined;
  }

  const r = await ctx.run(
    ctx.services.identity(usr),
    {
      type: "command",
      command,
      env,
      cwd,
      shell: s.localCommandShell,
      timeLimitMs: s.commandTimeLimitMs,
      prefix: envelopePrefix({
        fromLine: true,
        sender: msg.sender,
        returnPath: true,
        originalTo: msg.original,
        deliveredTo: s.deliveredHeader.has("command") ? msg.delivered : undefined,
      }),
    },
    ctx.content,
  );
  if (!r.ok) return ctx.defer(msg, "4.3.0", r.text);
  if (r.type !== "command") return ctx.defer(msg, "4.3.0", "local delivery worker: unexpected reply");
  if (r.end.kind === "timeout") ctx.warn("pipe_command_read: read time limit exceeded");
  const verdict = judgeCommand(command, r.end, r.output);
  if (verdict.status === "sent") return ctx.sent(msg, verdict.reason);
  return ctx.fail(msg, verdict.dsn, verdict.reason);
}
