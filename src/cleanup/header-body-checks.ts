/**
 * header_checks, mime_header_checks, nested_header_checks and body_checks in
 * cleanup, with the actions of Postfix's cleanup_act (header_checks(5)):
 *
 * - REJECT [text]: the message is refused (smtpd answers at the end of DATA)
 *   or, for local mail, returned to the sender; the text gets "5.7.1" in
 *   front unless it starts with a status; the default is "5.7.1 message
 *   content rejected". A 4.x.x status defers instead. Inspection stops.
 * - DISCARD [text]: accepted and dropped. Inspection stops.
 * - HOLD [text]: the message goes to hold/.
 * - FILTER transport:destination: the queue file's `filter` attribute (the
 *   last one wins). REDIRECT user@domain: its `redirect` attribute;
 *   inspection stops. BCC user@domain: one more recipient (NOTIFY=NEVER).
 * - PREPEND text: a line before this one (a header must be a header);
 *   REPLACE text: this line replaced; IGNORE: dropped silently; STRIP:
 *   dropped and logged.
 * - WARN, INFO [text]: logged. PASS [text]: logged, inspection stops.
 *   DUNNO and OK: nothing.
 *
 * Each action is logged as Postfix's cleanup logs it:
 *   QUEUEID: reject: header Subject: hi from host[1.2.3.4]; from=<a@b> to=<c@d> proto=ESMTP helo=<h>: 5.7.1 text
 * (the logs are returned without the queue ID, which the caller adds).
 *
 * Runs in smtpd and pickup as mail_owner before the queue file is written
 * (lookups are asynchronous); the content is untrusted, the tables are the
 * administrator's. Substitutions ($1) in FILTER and REDIRECT come from the
 * message: the administrator's rules decide whether to use them.
 */
import type { Config } from "../global/config/config.ts";
import { receiveOverrides } from "../global/config/receive-override.ts";
import { checkHeader, commonLineAction, openCheckTables, runContentChecks, splitAction, type CheckTables, type LineFate } from "../global/checks/content-checks.ts";
import type { Recipient } from "../global/queue/format.ts";
import { printable } from "../util/printable.ts";

/** Text from $1 that cannot go into a queue-file attribute or an address: line breaks, controls, blanks. */
const UNSAFE_WORD = /[\x00-\x20\x7f]/;

export interface CheckLogContext {
  /** "host[addr]" for mail from smtpd, "local" from sendmail. */
  origin: string;
  sender: string;
  /** The last envelope recipient. */
  recipient?: string;
  /** ESMTP, SMTP, ... (mail from smtpd). */
  proto?: string;
  helo?: string;
}

export interface CleanupChecksOutcome {
  content: Uint8Array;
  changed: boolean;
  /** REJECT: "5.7.1 text" (a status, a space, the text); 4.x.x means defer. */
  reject?: string;
  discard: boolean;
  hold: boolean;
  filter?: string;
  redirect?: string;
  bcc: string[];
  /** Info lines for cleanup's log, without the queue ID. */
  logs: string[];
  /** Warnings about the tables (bad actions), without the queue ID. */
  warnings: string[];
  /** What the receiving server's own header (its Received:) became: the lines to write in its place. */
  ownHeader?: string[];
}

/**
 * Stands for the queue ID in the receiving server's own Received: header while it is checked (the ID
 * exists only once the queue file does); ownHeaderLines() and the callers' log writers put the ID in.
 */
export const QUEUE_ID_PLACEHOLDER = "\0QUEUEID\0";

/** The checked own header with the queue ID in place. */
export function withQueueId(lines: readonly string[], queueId: string): string[] {
  return lines.map((l) => l.replaceAll(QUEUE_ID_PLACEHOLDER, queueId));
}

const DEFAULT_REJECT = "5.7.1 message content rejected";
const NESTING_REJECT = "5.6.0 MIME nesting exceeds safety limit";

/** The checks cleanup runs for `config` (a service's, with its overrides), or undefined without any. */
export function cleanupCheckTables(config: Config): CheckTables | undefined {
  if (receiveOverrides(config).noHeaderBodyChecks) return undefined;
  return openCheckTables(config, "cleanup");
}

/** "5.7.1 text" from REJECT's text: a status at the front is kept, else "5.7.1" goes in front (Postfix's dsn_prepend). */
export function rejectReason(raw: string, warnings: string[]): string {
  // $1 may bring a folded header's line breaks or other bytes from the message: the reply is one printable line
  const text = printable(raw.replace(/\s*[\r\n]+\s*/g, " ").trim());
  if (text === "") return DEFAULT_REJECT;
  const m = /^(\d)\.\d{1,3}\.\d{1,3}(?=\s|$)/.exec(text);
  if (!m) return `5.7.1 ${text}`;
  if (m[1] === "4" || m[1] === "5") return text;
  warnings.push(`bad DSN action in ${text} -- need 4.x.x or 5.x.x`);
  return `4${text.slice(1)}`;
}

/**
 * Runs the checks on `content`. `ownHeader` is the header the receiving server puts on top (its
 * Received:, latin1, with QUEUE_ID_PLACEHOLDER for the ID): Postfix's cleanup sees it as the first
 * primary header, so it is checked first.
 */
export async function runCleanupChecks(content: Uint8Array, tables: CheckTables, ctx: CheckLogContext, ownHeader?: string): Promise<CleanupChecksOutcome> {
  const o: CleanupChecksOutcome = { content, changed: false, discard: false, hold: false, bcc: [], logs: [], warnings: [] };
  let active = true;
  const log = (action: string, where: string, line: string, text: string) => {
    let s = `${action}: ${where} ${line.slice(0, 200)} from ${ctx.origin}; from=<${ctx.sender}>`;
    if (ctx.recipient !== undefined) s += ` to=<${ctx.recipient}>`;
    if (ctx.proto !== undefined) s += ` proto=${ctx.proto}`;
    if (ctx.helo !== undefined) s += ` helo=<${ctx.helo}>`;
    if (text) s += `: ${text}`;
    o.logs.push(s);
  };
  const actor = {
    get active() {
      return active;
    },
    act(where: "header" | "body", line: string, value: string, mapClass: string, prepend: (text: string) => void): LineFate {
      const { command, text } = splitAction(value);
      const common = commonLineAction(command, text, { where, line, mapClass, log, warn: (t) => o.warnings.push(t), prepend });
      if (common !== undefined) return common;
      switch (command) {
        case "REJECT":
          o.reject = rejectReason(text, o.warnings);
          log("reject", where, line, o.reject);
          active = false;
          return "keep";
        case "FILTER":
          if (text === "") o.warnings.push(`missing FILTER command argument in ${mapClass} map`);
          else if (!text.includes(":") || UNSAFE_WORD.test(text)) o.warnings.push(`bad FILTER command ${text} in ${mapClass} -- need transport:destination`);
          else {
            o.filter = text;
            log("filter", where, line, text);
          }
          return "keep";
        case "PASS":
          log("pass", where, line, text);
          active = false;
          return "keep";
        case "DISCARD":
          log("discard", where, line, text);
          o.discard = true;
          active = false;
          return "keep";
        case "HOLD":
          if (!o.hold && !o.discard) {
            log("hold", where, line, text);
            o.hold = true;
          }
          return "keep";
        case "REDIRECT":
          if (!text.includes("@") || UNSAFE_WORD.test(text)) o.warnings.push(`bad REDIRECT target "${text}" in ${mapClass} map -- need user@domain`);
          else {
            o.redirect = text;
            log("redirect", where, line, text);
            active = false;
          }
          return "keep";
        case "BCC":
          if (!text.includes("@") || UNSAFE_WORD.test(text)) o.warnings.push(`bad BCC address "${text}" in ${mapClass} map -- need user@domain`);
          else {
            o.bcc.push(text);
            log("bcc", where, line, text);
          }
          return "keep";
        default:
          o.warnings.push(`unknown command in ${mapClass} map: ${value}`);
          return "keep";
      }
    },
  };
  if (ownHeader !== undefined) o.ownHeader = (await checkHeader(ownHeader, "primary", tables, actor)).lines;
  const checked = await runContentChecks(content, tables, actor);
  o.content = checked.content;
  o.changed = checked.changed;
  // as Postfix, a nesting error rejects only where header checks are set
  const headerChecks = tables.header || tables.mime || tables.nested;
  if (checked.nestingExceeded !== undefined && headerChecks && o.reject === undefined && !o.discard) {
    o.reject = NESTING_REJECT;
    o.logs.push(`reject: mime-error MIME nesting exceeds safety limit: ${checked.nestingExceeded} from ${ctx.origin}; from=<${ctx.sender}> to=<${ctx.recipient ?? "unknown"}>`);
  }
  return o;
}

/** BCC actions as recipients: NOTIFY=NEVER, each address once (cleanup then rewrites them as any recipient). */
export function bccRecipients(addresses: readonly string[]): Recipient[] {
  return [...new Set(addresses)].map((address) => ({ address, notify: ["NEVER"] }));
}
