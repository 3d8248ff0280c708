/**
 * Which delivery status notifications a message gets, and for whom: the
 * sender's non-delivery, delay and success reports, the postmaster copies
 * that notify_classes asks for, and the rules that keep reports from
 * looping (Postfix's bounce(8) policy):
 *
 * - failure, sender "": no report to the null sender; with `bounce` or
 *   `2bounce` in notify_classes the postmaster (2bounce_notice_recipient)
 *   gets the report, from double_bounce_sender@$myhostname; otherwise it is
 *   dropped (silently, as Postfix does).
 * - failure, sender double-bounce@$myhostname: a failed postmaster notice;
 *   dropped with "undeliverable postmaster notification discarded".
 * - failure, any other sender: the sender gets the recipients whose NOTIFY
 *   allows it (none given, or FAILURE); with `bounce` in notify_classes
 *   bounce_notice_recipient gets a copy of all of them with headers only.
 * - delay: the sender gets recipients with no NOTIFY or DELAY; `delay` in
 *   notify_classes copies delay_notice_recipient; no delay report ever goes
 *   to or about the null sender or the double-bounce sender.
 * - success: only recipients with NOTIFY=SUCCESS, never to the null or the
 *   double-bounce sender (an info line says so), no postmaster copy.
 * - verify (sendmail -bv) and record (sendmail -v): Postfix's trace reports,
 *   "Mail Delivery Status Report" from the verify template, to the sender
 *   only and on the same terms as success reports, listing every entry in
 *   the order it was logged (one per final address: an alias shows each
 *   address it expanded to), whatever its NOTIFY; each line reads
 *   "delivery via RELAY: reason", and only the headers go back.
 *
 * Reports to the sender use the null envelope sender; postmaster copies use
 * double_bounce_sender, so a copy that fails is dropped instead of looping.
 *
 * A library the queue manager calls (as mail_owner); it reads configuration
 * and the message it is given, and writes nothing: the caller commits each
 * notice into incoming/ and logs it. Entries and message content are
 * untrusted (report.ts sanitises what it prints).
 */
import type { Config } from "../global/config/config.ts";
import type { DeliveryLogEntry } from "../global/queue/delivery-log.ts";
import type { QueueFile, Recipient } from "../global/queue/format.ts";
import { loadTemplate, expandTemplateText, type TemplateName } from "./templates.ts";
import { renderReport, vendorPrefix, type ReportRecipient, type ReportSpec, type ReturnedPart } from "./report.ts";

export type NoticeKind = "failure" | "delay" | "success" | "verify" | "record";

/**
 * One recipient's outcome: a line of bounce/ID or defer/ID, plus what the
 * log does not hold (yet). The optional fields override what is derived.
 */
export interface NoticeEntry extends DeliveryLogEntry {
  /** The address as first received; default: the queue file's `original` of this recipient. */
  original?: string;
  /** relay= of the delivery ("local", "mx.example.com[192.0.2.1]:25"): success reports say "delivery via RELAY: reason". */
  relay?: string;
  /** "dns; mx.example.com"; default: parsed from a reason "host NAME[ADDR] said: ...". */
  remoteMta?: string;
  /** "smtp; 550 5.1.1 ..."; default: the SMTP reply in the reason, else "X-Postern; reason". */
  diagnosticCode?: string;
}

export interface NoticeInput {
  config: Config;
  /** The queue ID of the message the report is about. */
  queueId: string;
  original: QueueFile;
  /** The recipients this report covers (later lines for a recipient replace earlier ones). */
  entries: NoticeEntry[];
  now: Date;
}

export interface Notice {
  /** Who it is for: the original sender, or a postmaster copy. */
  audience: "sender" | "postmaster";
  /** For the log line `QUEUEID: DESCRIPTION: NEWID`, e.g. "sender non-delivery notification". */
  description: string;
  /** Envelope sender: "" for the sender's report, double_bounce_sender@$myhostname for postmaster copies. */
  sender: string;
  /** Envelope recipients, qualified with @$myorigin when they had no domain. */
  recipients: string[];
  /** The recipients the report lists, as Final-Recipient. */
  reported: string[];
  /** The message; `noticeId` is the report's own queue ID (its Received: and Message-Id: name it). */
  content(noticeId: string): Uint8Array;
  /** The complete queue file to commit into incoming/ under `noticeId`. */
  queueFile(noticeId: string): QueueFile;
}

export interface NoticeLogLine {
  severity: "info" | "warning";
  text: string;
}

export interface NoticeResult {
  /** Zero, one or two notices (the sender's and a postmaster copy). */
  notices: Notice[];
  /** Lines the caller logs under `$syslog_name/bounce`, in Postfix's words. */
  log: NoticeLogLine[];
}

/** Who receives a report of `kind` about mail from `sender`, decided before any entry is looked at. */
export interface NoticeRoute {
  audience: "sender" | "postmaster";
  description: string;
  envelopeSender: string;
  recipients: string[];
  /** Sender reports list only recipients whose NOTIFY asks for this kind; postmaster copies list all. */
  honourNotify: boolean;
  /** How much of the original goes back, before bounce_size_limit applies. */
  returned: ReturnedPart;
}

function qualify(address: string, origin: string): string {
  return address.includes("@") ? address : `${address}@${origin}`;
}

/** double_bounce_sender@$myhostname: the sender of postmaster notices. */
export function doubleBounceAddress(config: Config): string {
  return `${config.str("double_bounce_sender")}@${config.str("myhostname")}`;
}

/** The routing decision alone (which reports, to whom, from whom), with Postfix's log lines for dropped ones. */
export function noticeRoutes(kind: NoticeKind, config: Config, sender: string, queueId: string): { routes: NoticeRoute[]; log: NoticeLogLine[] } {
  const classes = new Set(config.list("notify_classes").map((c) => c.toLowerCase()));
  const origin = config.str("myorigin");
  const doubleBounce = doubleBounceAddress(config);
  const isDoubleBounce = sender.toLowerCase() === doubleBounce.toLowerCase();
  const routes: NoticeRoute[] = [];
  const log: NoticeLogLine[] = [];
  const postmaster = (param: string, description: string, returned: ReturnedPart): NoticeRoute => ({
    audience: "postmaster",
    description,
    envelopeSender: doubleBounce,
    recipients: [qualify(config.str(param), origin)],
    honourNotify: false,
    returned,
  });
  switch (kind) {
    case "failure":
      if (isDoubleBounce) log.push({ severity: "warning", text: `${queueId}: undeliverable postmaster notification discarded` });
      else if (sender === "") {
        if (classes.has("2bounce") || classes.has("bounce")) routes.push(postmaster("2bounce_notice_recipient", "postmaster non-delivery notification", "message"));
      } else {
        routes.push({ audience: "sender", description: "sender non-delivery notification", envelopeSender: "", recipients: [sender], honourNotify: true, returned: "message" });
        if (classes.has("bounce")) routes.push(postmaster("bounce_notice_recipient", "postmaster non-delivery notification", "headers"));
      }
      break;
    case "delay":
      if (sender !== "" && !isDoubleBounce) {
        routes.push({ audience: "sender", description: "sender delay notification", envelopeSender: "", recipients: [sender], honourNotify: true, returned: "headers" });
        if (classes.has("delay")) routes.push(postmaster("delay_notice_recipient", "postmaster delay notification", "headers"));
      }
      break;
    case "success":
    case "verify":
    case "record":
      // Postfix's trace service: the same refusal for all three, and NOTIFY matters only for success
      if (sender === "") log.push({ severity: "info", text: `${queueId}: not sending trace/success notification for single-bounce message` });
      else if (isDoubleBounce) log.push({ severity: "info", text: `${queueId}: not sending trace/success notification for double-bounce message` });
      else routes.push({ audience: "sender", description: "sender delivery status notification", envelopeSender: "", recipients: [sender], honourNotify: kind === "success", returned: "headers" });
      break;
  }
  return { routes, log };
}

/** Whether a recipient's DSN NOTIFY asks for a report of this kind (no NOTIFY: failure and delay reports). */
export function notifyAllows(kind: NoticeKind, notify: Recipient["notify"]): boolean {
  // a report the sender asked for with sendmail -bv or -v lists every recipient
  if (kind === "verify" || kind === "record") return true;
  if (!notify?.length) return kind !== "success";
  if (notify.includes("NEVER")) return false;
  return notify.includes(kind === "failure" ? "FAILURE" : kind === "delay" ? "DELAY" : "SUCCESS");
}

const DEFAULT_ACTION: Record<NoticeKind, string> = { failure: "failed", delay: "delayed", success: "delivered", verify: "deliverable", record: "delivered" };
const DEFAULT_STATUS: Record<NoticeKind, string> = { failure: "5.0.0", delay: "4.0.0", success: "2.0.0", verify: "2.0.0", record: "2.0.0" };
const SUCCESS_ACTIONS = new Set(["delivered", "relayed", "expanded"]);

/** Remote-MTA and the SMTP reply from a reason such as "host mx[192.0.2.1] said: 550 5.1.1 ... (in reply to RCPT TO command)". */
export function remoteDetails(reason: string, relay?: string): { remoteMta: string; reply: string } | undefined {
  const m = /^host (\S+?)\[[^\]]*\] (?:said|refused to talk to me): (\d{3}(?:[ -].*?)?)(?: \(in reply to [^()]* command\))?$/.exec(reason);
  if (m) return { remoteMta: `dns; ${m[1]}`, reply: m[2]! };
  const r = relay ? /^([^[\s]+)\[[^\]]*\](?::\d+)?$/.exec(relay) : null;
  if (r && /^\d{3}(?:[ -]|$)/.test(reason)) return { remoteMta: `dns; ${r[1]}`, reply: reason };
  return undefined;
}

/** The latest entry of each recipient, in first-seen order. */
function latestByRecipient(entries: NoticeEntry[]): NoticeEntry[] {
  const byKey = new Map<string, NoticeEntry>();
  for (const e of entries) {
    const key = e.recipient;
    byKey.delete(key);
    byKey.set(key, e);
  }
  return [...byKey.values()];
}

function queueRecipient(original: QueueFile, e: NoticeEntry): Recipient | undefined {
  const same = original.recipients.filter((r) => r.address === e.recipient);
  return same.find((r) => e.orcpt !== undefined && r.orcpt === e.orcpt) ?? same.find((r) => !r.done) ?? same[0];
}

function reportRecipient(kind: NoticeKind, input: NoticeInput, e: NoticeEntry, q: Recipient | undefined, prefix: string): ReportRecipient {
  const action = e.action || DEFAULT_ACTION[kind];
  // trace reports (verify, record) name the relay for every outcome, as Postfix's trace_append() does, except "none"
  const trace = kind === "verify" || kind === "record";
  const via = e.relay && (trace ? e.relay !== "none" : SUCCESS_ACTIONS.has(action));
  const text = via ? `delivery via ${e.relay}: ${e.reason}` : e.reason;
  const remote = e.remoteMta || e.diagnosticCode ? undefined : remoteDetails(e.reason, e.relay);
  const r: ReportRecipient = {
    recipient: e.recipient,
    original: e.original ?? q?.original ?? e.recipient,
    action,
    status: e.status || DEFAULT_STATUS[kind],
    text,
    diagnosticCode: e.diagnosticCode ?? (remote ? `smtp; ${remote.reply}` : `${prefix}; ${text}`),
  };
  const orcpt = e.orcpt ?? q?.orcpt;
  if (orcpt) r.orcpt = orcpt;
  const mta = e.remoteMta ?? remote?.remoteMta;
  if (mta) r.remoteMta = mta;
  if (e.time > 0) r.lastAttempt = new Date(e.time);
  if (kind === "delay") {
    const lifetime = input.config.time(input.original.sender === "" ? "bounce_queue_lifetime" : "maximal_queue_lifetime");
    r.willRetryUntil = new Date(input.original.arrivalTime + lifetime * 1000);
  }
  return r;
}

/** Adds @$myorigin to an address in the template's From: that has no domain ("<MAILER-DAEMON>", "MAILER-DAEMON (...)"). */
function qualifyFrom(from: string, origin: string): string {
  if (/<[^<>@]*>/.test(from)) return from.replace(/<([^<>@]+)>/, (_, a: string) => `<${a}@${origin}>`);
  if (from.includes("<")) return from;
  return from.replace(/^(\s*)([^\s(@]+)(?=\s|\(|$)/, (_, sp: string, a: string) => `${sp}${a}@${origin}`);
}

const RETURNED_LABEL: Record<NoticeKind, Record<ReturnedPart, string>> = {
  failure: { message: "Undelivered Message", headers: "Undelivered Message Headers" },
  delay: { message: "Undelivered Message", headers: "Undelivered Message Headers" },
  success: { message: "Delivered Message", headers: "Message Headers" },
  verify: { message: "Delivered Message", headers: "Message Headers" },
  record: { message: "Delivered Message", headers: "Message Headers" },
};

const TEMPLATE: Record<NoticeKind, TemplateName> = { failure: "failure", delay: "delay", success: "success", verify: "verify", record: "verify" };

/**
 * The notices due for `kind` about `input.original`: the sender's report
 * (unless NOTIFY, the null sender or the double-bounce rule rule it out)
 * and the postmaster copies notify_classes asks for.
 */
export function buildNotices(kind: NoticeKind, input: NoticeInput): NoticeResult {
  const { config, queueId, original, now } = input;
  const { routes, log } = noticeRoutes(kind, config, original.sender, queueId);
  if (!routes.length) return { notices: [], log };

  const template = loadTemplate(config, TEMPLATE[kind]);
  const origin = config.str("myorigin");
  const prefix = vendorPrefix(config.str("mail_name"));
  const sizeLimit = config.int("bounce_size_limit");
  const smtputf8 = config.bool("smtputf8_enable");
  const ret = original.attributes.ret?.toUpperCase();
  let senderText: string | undefined;

  // a trace report lists every final address as logged (an alias's expansions, a recipient twice via two aliases)
  const listed = kind === "verify" || kind === "record" ? input.entries : latestByRecipient(input.entries);
  const candidates = listed
    .map((e) => ({ e, q: queueRecipient(original, e) }))
    // a delay report is about recipients still waiting
    .filter(({ q }) => kind !== "delay" || !q?.done);

  const notices: Notice[] = [];
  for (const route of routes) {
    const chosen = route.honourNotify ? candidates.filter(({ q }) => notifyAllows(kind, q?.notify)) : candidates;
    if (!chosen.length) continue;
    let returned = route.returned;
    if (route.audience === "sender" && kind === "failure" && ret === "HDRS") returned = "headers";
    if (returned === "message" && original.content.length > sizeLimit) returned = "headers";
    if (route.audience === "sender" && senderText === undefined) senderText = expandTemplateText(config, template, TEMPLATE[kind], (text) => log.push({ severity: "warning", text }));
    const spec: ReportSpec = {
      myhostname: config.str("myhostname"),
      mailName: config.str("mail_name"),
      queueId,
      originalSender: original.sender,
      arrival: new Date(original.arrivalTime),
      ...(original.attributes.envid ? { envid: original.attributes.envid } : {}),
      from: qualifyFrom(template.from, origin),
      to: route.recipients,
      subject: route.audience === "sender" ? template.subject : template.postmasterSubject,
      autoSubmitted: route.audience === "sender" ? "auto-replied" : "auto-generated",
      date: now,
      text: route.audience === "sender" ? senderText! : "",
      charset: template.charset,
      recipients: chosen.map(({ e, q }) => reportRecipient(kind, input, e, q, prefix)),
      content: original.content,
      returned,
      returnedLabel: RETURNED_LABEL[kind][returned],
      ...(original.attributes.encoding ? { encoding: original.attributes.encoding.toUpperCase() } : {}),
      smtputf8,
    };
    const content = (noticeId: string) => renderReport(spec, noticeId).bytes;
    notices.push({
      audience: route.audience,
      description: route.description,
      sender: route.envelopeSender,
      recipients: route.recipients,
      reported: spec.recipients.map((r) => r.recipient),
      content,
      queueFile: (noticeId: string) => {
        const { bytes, eightBit } = renderReport(spec, noticeId);
        return {
          arrivalTime: now.getTime(),
          sender: route.envelopeSender,
          recipients: route.recipients.map((address) => ({ address })),
          attributes: { origin: "bounce", rewrite_context: "local", encoding: eightBit ? "8BITMIME" : "7BIT" },
          content: bytes,
        };
      },
    });
  }
  return { notices, log };
}
