/**
 * The parameters of the virtual delivery agent, Postfix's virtual(8):
 * virtual_mailbox_base, virtual_mailbox_maps, virtual_uid_maps,
 * virtual_gid_maps, virtual_minimum_uid, virtual_mailbox_limit and
 * virtual_mailbox_lock (plus the lock timing and strict_mailbox_ownership
 * it shares with local(8)). A value Postfix would stop at (a relative base,
 * an unknown lock word, no lock at all) is a ConfigError.
 *
 * Read by the local service (root), which runs the virtual agent; the
 * configuration is root's and trusted.
 */
import type { Config } from "../global/config/config.ts";
import { ConfigError } from "../global/config/source.ts";

export interface VirtualLocks {
  dotlock: boolean;
  fcntl: boolean;
  flock: boolean;
}

export interface VirtualSettings {
  /** Absolute directory every mailbox path is relative to ("" when unset: every delivery defers). */
  mailboxBase: string;
  mailboxMaps: string[];
  uidMaps: string[];
  gidMaps: string[];
  minimumUid: number;
  /** Largest size of an mbox file or maildir message, 0 for none. */
  mailboxLimit: number;
  locks: VirtualLocks;
  strictMailboxOwnership: boolean;
  recipientDelimiter: string;
  myhostname: string;
}

const LOCK_WORDS = ["fcntl", "flock", "dotlock"] as const;

export function readVirtualSettings(config: Config): VirtualSettings {
  const mailboxBase = config.str("virtual_mailbox_base").trim();
  if (mailboxBase !== "" && !mailboxBase.startsWith("/")) throw new ConfigError(`do not specify relative pathname: virtual_mailbox_base = ${mailboxBase}`);
  const locks: VirtualLocks = { dotlock: false, fcntl: false, flock: false };
  for (const w of config.list("virtual_mailbox_lock")) {
    const lower = w.toLowerCase();
    if (!(LOCK_WORDS as readonly string[]).includes(lower)) throw new ConfigError(`virtual_mailbox_lock: unknown value "${w}" (use ${LOCK_WORDS.join(", ")})`);
    locks[lower as keyof VirtualLocks] = true;
  }
  if (!locks.dotlock && !locks.fcntl && !locks.flock) throw new ConfigError("virtual_mailbox_lock specifies no applicable mailbox locking method");
  const mailboxLimit = config.int("virtual_mailbox_limit");
  const messageSizeLimit = config.int("message_size_limit");
  if (mailboxLimit > 0 && mailboxLimit < messageSizeLimit) {
    throw new ConfigError(`virtual_mailbox_limit (${mailboxLimit}) is smaller than message_size_limit (${messageSizeLimit})`);
  }
  return {
    mailboxBase: mailboxBase.length > 1 ? mailboxBase.replace(/\/+$/, "") : mailboxBase,
    mailboxMaps: config.list("virtual_mailbox_maps"),
    uidMaps: config.list("virtual_uid_maps"),
    gidMaps: config.list("virtual_gid_maps"),
    minimumUid: config.int("virtual_minimum_uid"),
    mailboxLimit,
    locks,
    strictMailboxOwnership: config.bool("strict_mailbox_ownership"),
    recipientDelimiter: config.str("recipient_delimiter"),
    myhostname: config.str("myhostname"),
  };
}
