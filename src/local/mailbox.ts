/**
 * Mailbox delivery, Postfix's deliver_mailbox(): mailbox_transport_maps or
 * mailbox_transport (the recipient is passed to that transport, by the queue
 * manager), else mailbox_command_maps or
 * mailbox_command, else home_mailbox (a maildir when it ends in "/", an mbox
 * file otherwise), else mail_spool_directory/USER (a maildir when the
 * directory name ends in "/").
 *
 * Rights, as Postfix chooses them: a home mailbox is written as the user; in
 * a world-writable spool directory as the user; in a group-writable one as
 * the user with the directory's group (so the dotlock can be made); in any
 * other spool directory as root, and a new mailbox is given to the user.
 *
 * Unprivileged mode has one account, the invoking user's. There, when
 * local_recipient_maps is empty (the embedded `npm start` configuration:
 * "any local part is a recipient"), a name without a passwd entry still has
 * a mailbox in mail_spool_directory, written as the invoking user. As root,
 * and with local_recipient_maps set, such a name is an unknown user, as with
 * Postfix.
 *
 * Runs in the local delivery agent.
 */
import { stat } from "node:fs/promises";
import { TableError } from "../global/tables/table.ts";
import type { Handled } from "./expansion.ts";
import { deliverCommand, deliverMaildir, maildirLeaf, mboxAppendJob } from "./leaves.ts";
import { mailboxNameProblem, spoolMailboxPath } from "./mailbox-name.ts";
import { descend, type LocalState, type UserAttr } from "./state.ts";
import type { Identity, MaildirJob, MboxJob } from "./worker/jobs.ts";
import type { PasswdEntry } from "../util/passwd.ts";

export async function deliverMailbox(parent: LocalState, _usr: UserAttr): Promise<Handled> {
  const state = descend(parent);
  const { msg, ctx } = state;
  const s = ctx.settings;
  const parts = msg.parts!;
  const yes = (retry: boolean): Handled => ({ handled: true, retry });
  if (ctx.dup.seen(`mailbox ${parts.local}`)) return yes(false);
  // delegate mailbox delivery to another transport, whether or not the user exists
  const passed = await passToTransport(state, s.mailboxTransportMaps, s.mailboxTransport);
  if (passed !== undefined) return yes(passed);
  const pw = ctx.services.getpwnam(parts.user);
  let usr: UserAttr;
  if (pw) usr = ctx.services.userAttr(pw);
  else if (!ctx.services.privileged && s.anyLocalRecipient && !s.homeMailbox && spoolMailboxPath(s.mailSpoolDirectory, parts.user) !== undefined) {
    usr = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, logname: parts.user };
  } else return { handled: false, retry: false };

  if (s.mailboxCommandMaps.length > 0) {
    try {
      const found = await ctx.services.mapsFind(s.mailboxCommandMaps, parts.user);
      if (found) return yes(await deliverCommand(state, usr, found.value));
    } catch (err) {
      ctx.warn(err instanceof TableError ? err.message : (err as Error).message);
      return yes(ctx.defer(msg, "4.3.0", "table lookup failure"));
    }
  }
  if (s.mailboxCommand) return yes(await deliverCommand(state, usr, s.mailboxCommand));
  if (s.homeMailbox.endsWith("/")) return yes(await deliverMaildir(state, usr, `${usr.home}/${s.homeMailbox}`, usr.gid, usr.home));
  if (s.homeMailbox) return yes(await deliverMailboxFile(state, usr, `${usr.home}/${s.homeMailbox}`));
  // a passwd name too: "." or "a/b" in /etc/passwd is no reason to write outside the spool
  const spoolPath = spoolMailboxPath(s.mailSpoolDirectory, parts.user);
  if (spoolPath === undefined) {
    ctx.warn(`${ctx.request.queueId}: no mailbox for recipient name ${JSON.stringify(parts.user)} in ${s.mailSpoolDirectory}: ${mailboxNameProblem(parts.user)}`);
    return { handled: false, retry: false };
  }
  if (s.mailSpoolDirectory.endsWith("/")) return yes(await deliverMaildir(state, usr, spoolPath, usr.gid, s.mailSpoolDirectory));
  return yes(await deliverMailboxFile(state, usr, spoolPath));
}

/**
 * mailbox_transport(_maps) and fallback_transport(_maps): the user's entry
 * in `maps`, else `service`, gets the recipient (Postfix's deliver_pass);
 * a failed lookup defers. Undefined when neither applies.
 */
export async function passToTransport(state: LocalState, maps: string[], service: string): Promise<boolean | undefined> {
  const { msg, ctx } = state;
  if (maps.length > 0) {
    try {
      const found = await ctx.services.mapsFind(maps, msg.parts!.user);
      if (found) return ctx.pass(msg, found.value);
    } catch (err) {
      ctx.warn(err instanceof TableError ? err.message : (err as Error).message);
      return ctx.defer(msg, "4.3.0", "table lookup failure");
    }
  }
  if (service) return ctx.pass(msg, service);
  return undefined;
}

async function deliverMailboxFile(parent: LocalState, usr: UserAttr, mailbox: string): Promise<boolean> {
  const state = descend(parent);
  const { msg, ctx } = state;
  const s = ctx.settings;
  const user = msg.parts!.user;
  if (ctx.verify) return ctx.sent(msg, "delivers to mailbox");
  const spool = s.homeMailbox ? undefined : s.mailSpoolDirectory;

  let identity = ctx.services.identity(usr);
  let chown: { uid: number; gid: number } | undefined;
  if (ctx.services.privileged && spool !== undefined && usr.uid !== 0) {
    const st = await stat(spool).catch(() => undefined);
    if (!st || st.mode & 0o002) {
      // world-writable (or missing): the user's own rights
    } else if (st.mode & 0o020) {
      identity = ctx.services.identity(usr, st.gid);
    } else {
      identity = undefined;
      chown = { uid: usr.uid, gid: usr.gid };
    }
  }
  const r = await ctx.run(identity, mailboxFileJob(state, usr, mailbox, chown), ctx.content);
  if (!r.ok) return ctx.fail(msg, r.dsn, `cannot update mailbox ${mailbox} for user ${user}. ${r.text}`);
  return ctx.sent(msg, "delivered to mailbox");
}

/** The job deliverMailboxFile runs at `state`; sets the Delivered-To: address on `state.msg` as the delivery does. */
function mailboxFileJob(state: LocalState, usr: UserAttr, mailbox: string, chown?: { uid: number; gid: number }): MboxJob {
  const { msg, ctx } = state;
  const s = ctx.settings;
  if (!s.frozenDeliveredTo) msg.delivered = msg.recipient;
  const spool = s.homeMailbox ? undefined : s.mailSpoolDirectory;
  return {
    ...mboxAppendJob(state, mailbox),
    lock: s.lock,
    ...(chown ? { chown } : {}),
    mailbox: { ownerUid: s.strictMailboxOwnership ? (ctx.services.privileged ? usr.uid : process.getuid?.()) : undefined },
    within: spool ?? usr.home,
  };
}

/**
 * The mailbox job deliverMailbox will run for the passwd user `pw`, when it
 * is known before the .forward search, so the search and this job go to the
 * worker together (expansion.ts): not -bv, no mailbox delivery of this name
 * yet, no mailbox_transport(_maps) or mailbox_command(_maps), and a home
 * maildir or mbox or a spool maildir (a spool mbox's rights wait for a stat
 * of the spool). Built by the code the delivery itself runs, at the levels
 * it runs at, so RecipientContext.run can match the two.
 */
export function plannedMailboxLeaf(parent: LocalState, pw: PasswdEntry): { identity: Identity | undefined; job: MaildirJob | MboxJob } | undefined {
  const { msg, ctx } = parent;
  const s = ctx.settings;
  const parts = msg.parts!;
  if (ctx.verify || ctx.dup.has(`mailbox ${parts.local}`)) return undefined;
  if (s.mailboxTransportMaps.length > 0 || s.mailboxTransport || s.mailboxCommandMaps.length > 0 || s.mailboxCommand) return undefined;
  const usr = ctx.services.userAttr(pw);
  // deliverMailbox's level, then its leaf's
  const state = descend(descend(parent));
  if (s.homeMailbox.endsWith("/")) return maildirLeaf(state, usr, `${usr.home}/${s.homeMailbox}`, usr.gid, usr.home);
  if (s.homeMailbox) return { identity: ctx.services.identity(usr), job: mailboxFileJob(state, usr, `${usr.home}/${s.homeMailbox}`) };
  const spoolPath = spoolMailboxPath(s.mailSpoolDirectory, parts.user);
  if (spoolPath !== undefined && s.mailSpoolDirectory.endsWith("/")) return maildirLeaf(state, usr, spoolPath, usr.gid, s.mailSpoolDirectory);
  return undefined;
}
