/**
 * The configuration local delivery reads, checked and converted once when
 * the agent is created (Postfix's local(8) main.cf tables and masks).
 *
 * Runs in the local delivery agent; the values are configuration text.
 */
import { hostname } from "node:os";
import type { Config } from "../global/config/config.ts";
import { ConfigError } from "../global/config/source.ts";
import type { LockPlan } from "./worker/jobs.ts";

export type ExpansionType = "alias" | "forward" | "include";
export type DeliveredHeaderContext = "command" | "file" | "forward";

export interface LocalSettings {
  myhostname: string;
  myorigin: string;
  mailName: string;
  mydestination: Set<string>;
  recipientDelimiter: string;
  ownerRequestSpecial: boolean;
  expandOwnerAlias: boolean;
  resetOwnerAlias: boolean;
  frozenDeliveredTo: boolean;
  allowCommands: Set<ExpansionType>;
  allowFiles: Set<ExpansionType>;
  deliveredHeader: Set<DeliveredHeaderContext>;
  /** propagate_unmatched_extensions, as words: canonical, virtual, alias, forward, include, generic. */
  propagateExtensions: Set<string>;
  aliasMaps: string[];
  /** Raw (unexpanded) patterns; local(8) expands them per recipient. */
  forwardPath: string[];
  luserRelay: string;
  mailboxCommand: string;
  mailboxCommandMaps: string[];
  homeMailbox: string;
  mailSpoolDirectory: string;
  /** "transport[:nexthop]" local(8) passes mailbox deliveries to (Postfix's deliver_pass), per user from the maps first. */
  mailboxTransport: string;
  mailboxTransportMaps: string[];
  /** The same for recipients without a passwd entry, before luser_relay. */
  fallbackTransport: string;
  fallbackTransportMaps: string[];
  mailboxSizeLimit: number;
  lock: LockPlan;
  commandTimeLimitMs: number;
  commandExecutionDirectory: string;
  localCommandShell: string[];
  exportEnvironment: string[];
  commandExpansionFilter: string;
  forwardExpansionFilter: string;
  executionDirectoryExpansionFilter: string;
  defaultPrivs: string;
  mailOwner: string;
  requireHomeDirectory: boolean;
  strictMailboxOwnership: boolean;
  duplicateFilterLimit: number;
  queueDirectory: string;
  /** The configuration file's text and directory: cleanup's settings for forwarded mail are made from them (worker/forward-commit.ts). */
  configText: string;
  configDirectory: string;
  doubleBounceSender: string;
  /** local_recipient_maps is empty: any local part is a recipient (used in unprivileged mode, see mailbox.ts). */
  anyLocalRecipient: boolean;
  /** The system host name, for maildir file names. */
  systemHostname: string;
}

function words<T extends string>(config: Config, name: string, allowed: readonly T[]): Set<T> {
  const out = new Set<T>();
  for (const w of config.list(name)) {
    const lower = w.toLowerCase() as T;
    if (!allowed.includes(lower)) throw new ConfigError(`${name}: unknown value "${w}" (use ${allowed.join(", ")})`);
    out.add(lower);
  }
  return out;
}

export function readLocalSettings(config: Config): LocalSettings {
  const lockWords = words(config, "mailbox_delivery_lock", ["fcntl", "flock", "dotlock"] as const);
  if (lockWords.size === 0) throw new ConfigError("mailbox_delivery_lock specifies no applicable mailbox locking method");
  const mailboxSizeLimit = config.int("mailbox_size_limit");
  const messageSizeLimit = config.int("message_size_limit");
  if (mailboxSizeLimit > 0 && mailboxSizeLimit < messageSizeLimit) {
    throw new ConfigError(`mailbox_size_limit (${mailboxSizeLimit}) is smaller than message_size_limit (${messageSizeLimit})`);
  }
  const expansionTypes = ["alias", "forward", "include"] as const;
  return {
    myhostname: config.str("myhostname"),
    myorigin: config.str("myorigin"),
    mailName: config.str("mail_name"),
    mydestination: new Set(config.list("mydestination").filter((d) => !d.includes(":") && !d.startsWith("/")).map((d) => d.toLowerCase())),
    recipientDelimiter: config.str("recipient_delimiter"),
    ownerRequestSpecial: config.bool("owner_request_special"),
    expandOwnerAlias: config.bool("expand_owner_alias"),
    resetOwnerAlias: config.bool("reset_owner_alias"),
    frozenDeliveredTo: config.bool("frozen_delivered_to"),
    allowCommands: words(config, "allow_mail_to_commands", expansionTypes),
    allowFiles: words(config, "allow_mail_to_files", expansionTypes),
    deliveredHeader: words(config, "prepend_delivered_header", ["command", "file", "forward"] as const),
    propagateExtensions: new Set(config.list("propagate_unmatched_extensions").map((w) => w.toLowerCase())),
    aliasMaps: config.list("alias_maps"),
    // raw parameters: split the text, expand $home and friends per recipient later
    forwardPath: config.list("forward_path"),
    luserRelay: config.str("luser_relay"),
    mailboxCommand: config.str("mailbox_command"),
    mailboxCommandMaps: config.list("mailbox_command_maps"),
    homeMailbox: config.str("home_mailbox"),
    mailSpoolDirectory: config.str("mail_spool_directory"),
    mailboxTransport: config.str("mailbox_transport"),
    mailboxTransportMaps: config.list("mailbox_transport_maps"),
    fallbackTransport: config.str("fallback_transport"),
    fallbackTransportMaps: config.list("fallback_transport_maps"),
    mailboxSizeLimit,
    lock: {
      dotlock: lockWords.has("dotlock"),
      fcntl: lockWords.has("fcntl"),
      flock: lockWords.has("flock"),
      dotlockMayFail: false,
      attempts: Math.max(1, config.int("deliver_lock_attempts")),
      delayMs: config.time("deliver_lock_delay") * 1000,
      staleSeconds: config.time("stale_lock_time"),
    },
    commandTimeLimitMs: config.time("command_time_limit") * 1000,
    commandExecutionDirectory: config.str("command_execution_directory"),
    localCommandShell: config.str("local_command_shell").split(/[ \t\r\n]+/).filter(Boolean),
    exportEnvironment: config.list("export_environment"),
    commandExpansionFilter: config.str("command_expansion_filter"),
    forwardExpansionFilter: config.str("forward_expansion_filter"),
    executionDirectoryExpansionFilter: config.str("execution_directory_expansion_filter"),
    defaultPrivs: config.str("default_privs"),
    mailOwner: config.str("mail_owner"),
    requireHomeDirectory: config.bool("require_home_directory"),
    strictMailboxOwnership: config.bool("strict_mailbox_ownership"),
    duplicateFilterLimit: config.int("duplicate_filter_limit"),
    queueDirectory: config.str("queue_directory"),
    configText: config.source.text,
    configDirectory: config.source.directory,
    // the bounce service owns double_bounce_sender; until it is registered Postfix's default applies
    doubleBounceSender: (config.raw("double_bounce_sender") !== undefined && config.str("double_bounce_sender")) || "double-bounce",
    anyLocalRecipient: config.list("local_recipient_maps").length === 0,
    systemHostname: hostname(),
  };
}
