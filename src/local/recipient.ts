/**
 * Delivery to one local recipient, Postfix's deliver_recipient() and its
 * switch: loop detection through Delivered-To:, the split into user and
 * extension, then aliases, the owner/:include: forwarding rule, .forward,
 * the mailbox, and finally the unknown-user cases (fallback_transport, luser_relay, the
 * required postmaster and MAILER-DAEMON aliases, 5.1.1). Addresses found in
 * an expansion come back through deliverResolvedAddress(): local ones are
 * delivered here recursively, others are forwarded as a new message.
 *
 * Runs in the local delivery agent; addresses are untrusted.
 */
import { addressParts, canonicalAddress, withExtension } from "./address.ts";
import { deliverAlias, deliverDotForward } from "./expansion.ts";
import { deliverMailbox, passToTransport } from "./mailbox.ts";
import { localExpand } from "./local-expand.ts";
import { quoteLocalPart } from "./message-copy.ts";
import { descend, type LocalState, type UserAttr } from "./state.ts";
import { TableError } from "../global/tables/table.ts";

export async function deliverRecipient(parent: LocalState, usr: UserAttr): Promise<boolean> {
  const state = descend(parent);
  const { msg, ctx } = state;
  const s = ctx.settings;
  if (ctx.dup.seen(`recipient ${msg.level} ${msg.recipient}`)) return false;

  // with each level, detect and break forwarding loops between systems
  if (ctx.loopInfo.has(quoteLocalPart(msg.recipient).toLowerCase())) {
    return ctx.bounce(msg, "5.4.6", `mail forwarding loop for ${msg.recipient}`);
  }
  if (msg.delivered === undefined) msg.delivered = msg.recipient;
  if (!msg.recipient.includes("@")) ctx.warn(`no @ in recipient address: ${msg.recipient.toLowerCase()}`);
  const parts = addressParts(msg.recipient, {
    delimiters: s.recipientDelimiter,
    ownerRequestSpecial: s.ownerRequestSpecial,
    doubleBounceSender: s.doubleBounceSender,
  });
  if (parts.illegalExtension) {
    ctx.warn(`${ctx.request.queueId}: address with illegal extension: ${parts.local}`);
  }
  msg.parts = parts;
  msg.unmatched = parts.extension;
  if (parts.user === "") return ctx.bounce(msg, "5.1.3", `null username in "${msg.recipient}"`);
  return deliverSwitch(state, usr);
}

async function deliverSwitch(parent: LocalState, usr: UserAttr): Promise<boolean> {
  const state = descend(parent);
  const { msg, ctx } = state;
  const s = ctx.settings;
  const parts = msg.parts!;

  // aliases first: the whole local part, then the bare user
  msg.unmatched = undefined;
  let r = await deliverAlias(state, usr, parts.local);
  if (r.handled) return r.retry;
  if (parts.extension !== undefined) {
    if (s.propagateExtensions.has("alias")) msg.unmatched = parts.extension;
    r = await deliverAlias(state, usr, parts.user);
    if (r.handled) return r.retry;
    msg.unmatched = parts.extension;
  }

  // mail aliased or forwarded to another local user goes out as a new message
  if (msg.owner !== undefined && msg.owner.toLowerCase() !== parts.user) return deliverIndirect(state);
  if (msg.expType === "include") return deliverIndirect(state);

  if (s.requireHomeDirectory) {
    const pw = ctx.services.getpwnam(parts.user);
    if (pw) {
      const st = await ctx.run(ctx.services.identity(ctx.services.userAttr(pw)), { type: "stat", path: pw.home, follow: true });
      if (!st.ok) return ctx.defer(msg, "4.3.0", `cannot access home directory ${pw.home}: ${st.text.replace(/^cannot access [^:]*: /, "")}`);
    }
  }
  r = await deliverDotForward(state, usr);
  if (r.handled) return r.retry;
  r = await deliverMailbox(state, usr);
  if (r.handled) return r.retry;
  return deliverUnknown(state, usr);
}

/** An address from an alias, .forward or :include: file, or luser_relay. */
export async function deliverResolvedAddress(parent: LocalState, usr: UserAttr, address: string): Promise<boolean> {
  const state = descend(parent);
  const { msg, ctx } = state;
  const s = ctx.settings;
  let canonical = canonicalAddress(address, s.myorigin);
  const at = canonical.lastIndexOf("@");
  if (canonical === "" || at === 0 || at === canonical.length - 1 || /[\s<>]/.test(canonical)) {
    return ctx.bounce(msg, "5.1.3", `bad recipient address syntax: ${canonical}`);
  }
  if (msg.unmatched && s.recipientDelimiter) canonical = withExtension(canonical, msg.unmatched, s.recipientDelimiter[0]!);
  msg.recipient = canonical;
  const domain = canonical.slice(canonical.lastIndexOf("@") + 1);
  let local: boolean;
  try {
    local = await ctx.services.isLocalDomain(domain);
  } catch (err) {
    // mydestination could not answer: Postfix's local(8) defers on a resolver failure, never guesses
    if (!(err instanceof TableError)) throw err;
    ctx.warn(err.message);
    return ctx.defer(msg, "4.3.0", "address resolver failure");
  }
  if (local) return deliverRecipient(state, usr);
  return deliverIndirect(state);
}

/** Forward as a new message (Postfix's deliver_indirect); in verify mode, only say so, once per address. */
export function deliverIndirect(state: LocalState): boolean {
  const { ctx, msg } = state;
  if (ctx.verify) return ctx.dup.seen(`indirect ${msg.recipient}`) ? false : ctx.sent(msg, `forwards to ${msg.recipient}`, "relayed");
  return ctx.forward(msg);
}

async function deliverUnknown(parent: LocalState, usr: UserAttr): Promise<boolean> {
  const state = descend(parent);
  const { msg, ctx } = state;
  const s = ctx.settings;
  const parts = msg.parts!;
  if (ctx.dup.seen(`unknown ${parts.local}`)) return false;
  // users not found in the aliases or the passwd file
  const passed = await passToTransport(state, s.fallbackTransportMaps, s.fallbackTransport);
  if (passed !== undefined) return passed;
  if (s.luserRelay) {
    msg.unmatched = undefined;
    const exp = localExpand(s.luserRelay, expansionValues(state, usr));
    if (exp.error) {
      ctx.warn(`bad parameter value syntax for luser_relay: ${exp.error}`);
      return ctx.defer(msg, "4.3.5", "mail system configuration error");
    }
    return deliverResolvedAddress(state, usr, exp.text);
  }
  if (parts.user === "mailer-daemon" || parts.user === "postmaster") {
    ctx.warn(`required alias not found: ${parts.user}`);
    return ctx.sent(msg, "discarded");
  }
  return ctx.bounce(msg, "5.1.1", `unknown user: "${parts.user}"`);
}

/** The $names of forward_path, luser_relay and command_execution_directory. */
export function expansionValues(state: LocalState, usr: UserAttr): Record<string, string | undefined> {
  const { msg } = state;
  const parts = msg.parts;
  const delimiter = parts && parts.local !== parts.user ? parts.local[parts.user.length] : undefined;
  return {
    user: parts?.user,
    home: usr.home,
    shell: usr.shell,
    domain: parts?.domain,
    local: parts?.local,
    mailbox: parts?.local,
    recipient: msg.recipient,
    extension: parts?.extension,
    recipient_delimiter: delimiter,
  };
}
