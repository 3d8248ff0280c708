/**
 * Expansion of a recipient into other destinations, as Postfix's local(8):
 * alias_maps entries (with owner-NAME aliases that take the errors and the
 * alias database owner's rights), the user's .forward file (searched along
 * forward_path, owned by the user, read with the user's rights) and
 * :include: files (rights of the file's owner when the alias is root's).
 * Each destination is a file, a |command, an :include:, or an address.
 *
 * Runs in the local delivery agent; alias values and .forward and :include:
 * contents are untrusted.
 */
import { TableError } from "../global/tables/table.ts";
import { canonicalAddress } from "./address.ts";
import { splitDestinations } from "./destinations.ts";
import { deliverCommand, deliverFile } from "./leaves.ts";
import { plannedMailboxLeaf } from "./mailbox.ts";
import { localExpand } from "./local-expand.ts";
import { deliverResolvedAddress, expansionValues } from "./recipient.ts";
import { descend, NO_USER, notifyWithoutSuccess, type LocalState, type UserAttr } from "./state.ts";

export interface Handled {
  handled: boolean;
  retry: boolean;
}

const NO: Handled = { handled: false, retry: false };
const yes = (retry: boolean): Handled => ({ handled: true, retry });

/** Postfix's deliver_alias: looks `name` up in alias_maps and delivers to the expansion. */
export async function deliverAlias(parent: LocalState, usrIn: UserAttr, name: string): Promise<Handled> {
  const state = descend(parent);
  const { msg, ctx } = state;
  const s = ctx.settings;
  let usr = usrIn;
  // an alias that lists its own name means the user of that name
  if (msg.expFrom !== undefined && msg.expFrom.toLowerCase() === name.toLowerCase()) return NO;
  if (msg.level > 100) {
    ctx.warn(`alias database loop for ${name}`);
    return yes(ctx.bounce(msg, "5.4.6", `alias database loop for ${name}`));
  }
  msg.expFrom = name;

  for (const spec of s.aliasMaps) {
    let table;
    let value: string | undefined;
    try {
      table = await ctx.services.table(spec);
      value = await table.lookup(name);
    } catch (err) {
      ctx.warn(`${err instanceof TableError ? err.message : `${spec}: ${(err as Error).message}`}`);
      return yes(ctx.defer(msg, "4.3.0", "alias database unavailable"));
    }
    if (value === undefined) continue;
    msg.expType = "alias";

    // whose rights for |command and /file: default_privs when root owns the database, else its owner's
    let owner;
    try {
      owner = ctx.services.tableOwner(table);
    } catch (err) {
      ctx.warn((err as Error).message);
      return yes(ctx.defer(msg, "4.3.0", "alias database unavailable"));
    }
    if (owner.status === "trusted") usr = NO_USER;
    else {
      const pw = ctx.services.getpwuid(owner.uid);
      if (!pw) {
        ctx.warn(`cannot find alias database owner for ${spec}`);
        return yes(ctx.defer(msg, "4.3.0", "cannot find alias database owner"));
      }
      usr = ctx.services.userAttr(pw);
    }

    // who hears of problems: the owner- alias when there is one
    let canonOwner: string | undefined;
    if (s.ownerRequestSpecial) {
      const ownerName = `owner-${name}`;
      let found;
      try {
        found = await ctx.services.mapsFind(s.aliasMaps, ownerName);
      } catch (err) {
        ctx.warn((err as Error).message);
        return yes(ctx.defer(msg, "4.3.0", "alias database unavailable"));
      }
      if (found) canonOwner = canonicalAddress(s.expandOwnerAlias ? (splitDestinations(found.value)[0] ?? ownerName) : ownerName, s.myorigin);
    }
    if (canonOwner !== undefined) {
      msg.sender = canonOwner;
      msg.owner = canonOwner;
    } else if (s.resetOwnerAlias) msg.owner = undefined;

    if (!s.frozenDeliveredTo) msg.delivered = msg.recipient;

    // DSN: a mailing list (owner- alias) starts afresh; a plain alias passes ENVID, RET and ORCPT on
    msg.notify = notifyWithoutSuccess(msg.notify);
    if (canonOwner !== undefined) {
      msg.envid = undefined;
      msg.ret = undefined;
      msg.orcpt = undefined;
      msg.original = "";
    }
    const destinations = splitDestinations(value);
    if (destinations.length === 0) {
      ctx.warn(`no recipient in alias lookup result for ${name}`);
      return yes(ctx.defer(msg, "4.3.0", "alias database unavailable"));
    }
    let retry = false;
    for (const d of destinations) retry = (await deliverToken(state, usr, d)) || retry;
    return yes(retry);
  }
  return NO;
}

/** One destination: /file, ~/file, |command, :include:/file, or an address. */
export async function deliverToken(state: LocalState, usr: UserAttr, destination: string): Promise<boolean> {
  const { msg, ctx } = state;
  const s = ctx.settings;
  if (destination.startsWith("/")) return deliverFile(state, usr, destination);
  if (destination.startsWith("~")) {
    if (destination[1] !== "/") return ctx.bounce(msg, "5.3.5", `bad home directory syntax for: ${destination}`);
    if (usr.home === undefined) return ctx.bounce(msg, "5.3.5", `unknown home directory for: ${destination}`);
    return deliverFile(state, usr, usr.home === "/" ? destination.slice(1) : usr.home + destination.slice(1));
  }
  if (destination.startsWith("|")) {
    if (!msg.expType || !s.allowCommands.has(msg.expType)) return ctx.bounce(msg, "5.7.1", "mail to command is restricted");
    return deliverCommand(state, usr, destination.slice(1));
  }
  if (destination.toLowerCase().startsWith(":include:")) return deliverInclude(state, usr, destination.slice(":include:".length));
  return deliverResolvedAddress(state, usr, destination);
}

/** Lines of a .forward or :include: file; stops at the first destination that must be tried again. */
async function deliverLines(state: LocalState, usr: UserAttr, text: string): Promise<{ retry: boolean; count: number }> {
  let count = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    let retry = false;
    for (const d of splitDestinations(line)) {
      count++;
      retry = (await deliverToken(state, usr, d)) || retry;
    }
    if (retry) return { retry, count };
  }
  return { retry: false, count };
}

/** Postfix's deliver_dotforward: the first forward_path file that exists, if it is the user's. */
export async function deliverDotForward(parent: LocalState, _usr: UserAttr): Promise<Handled> {
  const state = descend(parent);
  const { msg, ctx } = state;
  const s = ctx.settings;
  const parts = msg.parts!;
  if (s.forwardPath.length === 0) return NO;
  const pw = ctx.services.getpwnam(parts.user);
  if (!pw) return NO;
  if (!s.frozenDeliveredTo) msg.delivered = msg.recipient;
  // the recipient's rights for everything in the file, never the file owner's
  const usr = ctx.services.userAttr(pw);
  const identity = ctx.services.identity(usr);
  msg.expType = "forward";
  msg.owner = parts.user;

  // every forward_path file in one job; when none exists, the mailbox delivery that follows runs in
  // the same job if it is known now and has the same rights (one worker round trip per delivery)
  const candidates = [];
  for (const pattern of s.forwardPath) {
    const exp = localExpand(pattern, expansionValues(state, usr), s.forwardExpansionFilter);
    if (!exp.error && !exp.undefinedName) candidates.push(exp);
  }
  if (candidates.length === 0) return NO;
  const leaf = plannedMailboxLeaf(parent, pw);
  const mailbox = leaf && JSON.stringify(leaf.identity ?? null) === JSON.stringify(identity ?? null) ? leaf : undefined;
  const search = await ctx.run(identity, { type: "forward-search", paths: candidates.map((c) => c.text), ...(mailbox ? { otherwise: mailbox.job } : {}) }, mailbox ? ctx.content : undefined);
  if (!search.ok || search.type !== "forward-search") return NO;
  const found = candidates[search.index];
  if (!found || !search.status) {
    if (mailbox && search.index === -1 && search.otherwise) ctx.prepare(mailbox.identity, mailbox.job, search.otherwise);
    return NO;
  }
  const path = found.text;
  const status = search.status;
  if (found.extensionUsed || !s.propagateExtensions.has("forward")) msg.unmatched = undefined;

  if (!ctx.dup.seen(`forward ${path}`)) {
    msg.expFrom = parts.local;
    if (!status.isFile) ctx.warn(`file ${path} is not a regular file`);
    else if (status.uid !== 0 && status.uid !== (ctx.services.privileged ? usr.uid : status.uid)) ctx.warn(`file ${path} has bad owner uid ${status.uid}`);
    else if (status.mode & 0o002) ctx.warn(`file ${path} is world writable`);
    else {
      const read = await ctx.run(identity, { type: "read", path, maxBytes: 1 << 20 });
      if (!read.ok || read.type !== "read") ctx.warn(read.ok ? `cannot open file ${path}` : read.text);
      else {
        msg.notify = notifyWithoutSuccess(msg.notify);
        const r = await deliverLines(state, usr, read.text);
        if (r.count > 0) {
          ctx.dup.seen(`forward-done ${path}`);
          return yes(r.retry);
        }
        return { handled: false, retry: r.retry };
      }
    }
    return NO;
  }
  // the user's .forward lists the user again: the mailbox gets it, unless the file was done already
  return ctx.dup.has(`forward-done ${path}`) ? yes(false) : NO;
}

/** Postfix's deliver_include. */
async function deliverInclude(parent: LocalState, usrIn: UserAttr, path: string): Promise<boolean> {
  const state = descend(parent);
  const { msg, ctx } = state;
  const s = ctx.settings;
  let usr = usrIn;
  if (msg.level > 100) {
    ctx.warn(`:include: nesting limit exceeded for ${path}`);
    return ctx.bounce(msg, "5.4.6", ":include: nesting limit exceeded");
  }
  if (ctx.dup.seen(`include ${usr.uid} ${path}`)) return false;
  msg.expFrom = msg.parts?.local;
  const configError = (warning: string) => {
    ctx.warn(warning);
    return ctx.bounce(msg, "5.3.5", "mail system configuration error");
  };
  if (!path.startsWith("/")) return configError(`:include:${path} uses a relative path`);
  const st = await ctx.run(ctx.services.identity(usr), { type: "stat", path, follow: true });
  if (!st.ok || st.type !== "stat") return configError(`unable to lookup :include: file ${path}: ${st.ok ? "" : st.text.replace(/^cannot access [^:]*: /, "")}`);
  if (!st.status.isFile) return configError(`:include: file ${path} is not a regular file`);
  if (st.status.mode & 0o002) return configError(`:include: file ${path} is world writable`);
  msg.expType = "include";

  // a root-owned alias lending its rights to a user's include file would give that user default_privs
  if (usr.uid === 0 && ctx.services.privileged) {
    const pw = ctx.services.getpwuid(st.status.uid);
    if (!pw) {
      ctx.warn(`cannot find username for uid ${st.status.uid}`);
      ctx.warn(`${path}: cannot find :include: file owner username`);
      return ctx.defer(msg, "4.3.5", "mail system configuration error");
    }
    if (pw.uid !== 0) usr = ctx.services.userAttr(pw);
  }
  if (msg.owner === undefined) msg.owner = msg.recipient;
  const read = await ctx.run(ctx.services.identity(usr), { type: "read", path, maxBytes: 1 << 24 });
  if (!read.ok || read.type !== "read") return configError(`cannot open include file ${path}: ${read.ok ? "" : read.text.replace(/^cannot open file [^:]*: /, "")}`);
  if (!s.propagateExtensions.has("include")) msg.unmatched = undefined;
  return (await deliverLines(state, usr, read.text)).retry;
}
