/**
 * Renders a delivery status notification (RFC 3464, RFC 3462) in Postfix's
 * layout: a multipart/report with report-type=delivery-status holding the
 * human-readable text, the message/delivery-status part, and the original
 * message (message/rfc822) or its headers (text/rfc822-headers).
 *
 * Runs in the queue manager. Everything that comes from mail (addresses,
 * reasons from remote servers, the ENVID) is untrusted: control characters
 * become spaces so no value can add a header or break the MIME structure,
 * and the boundary is checked against the returned message. The returned
 * message is copied byte for byte.
 */
import { messageIdStamp, mailDate } from "../global/message/mail-date.ts";
import { oneLine, wrapLine } from "./line-wrap.ts";

/** One recipient of the report. */
export interface ReportRecipient {
  recipient: string;
  /** The address as first received; shown as "(expanded from <...>)" when it differs. */
  original?: string;
  /** DSN ORCPT as stored, "rfc822;user@example.com". */
  orcpt?: string;
  /** DSN action: failed, delayed, delivered, relayed, expanded. */
  action: string;
  /** Enhanced status code. */
  status: string;
  /** What the human-readable part says after `<recipient>: `. */
  text: string;
  /** "dns; mx.example.com" when a remote server gave the answer. */
  remoteMta?: string;
  /** "smtp; 550 5.1.1 ..." or "X-Postern; ...". */
  diagnosticCode: string;
  lastAttempt?: Date;
  willRetryUntil?: Date;
}

export type ReturnedPart = "message" | "headers";

export interface ReportSpec {
  myhostname: string;
  /** mail_name, e.g. "postern": names the Received: line and the X-...-Queue-ID field. */
  mailName: string;
  /** The queue ID of the message the report is about. */
  queueId: string;
  /** Its envelope sender as shown (X-...-Sender:, Return-Path:); "" is shown as MAILER-DAEMON@$myhostname. */
  originalSender: string;
  arrival: Date;
  envid?: string;
  /** Header values. */
  from: string;
  to: string[];
  subject: string;
  autoSubmitted: "auto-replied" | "auto-generated";
  date: Date;
  /** The expanded template text (may be empty, as in postmaster copies). */
  text: string;
  charset: string;
  recipients: ReportRecipient[];
  /** The original message content (LF line ends) and how much of it to return. */
  content: Uint8Array;
  returned: ReturnedPart;
  /** Content-Description of the returned part: "Undelivered Message", "Message Headers", ... */
  returnedLabel: string;
  /** The original's declared body type: "8BITMIME", "7BIT" or undefined. */
  encoding?: string;
  /** smtputf8_enable: reports are then 8bit with a UTF-8 text part, as Postfix's are. */
  smtputf8: boolean;
}

const LF = 0x0a;

/** The header section of a message: everything up to and including the line before the first empty line. */
export function headerSection(content: Uint8Array): Uint8Array {
  if (content[0] === LF) return content.subarray(0, 0);
  const buf = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  const end = buf.indexOf("\n\n");
  return end < 0 ? content : content.subarray(0, end + 1);
}

function nonAscii(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b > 0x7f) return true;
  return false;
}

/** "X-" plus mail_name with its first letter in upper case: X-Postern, or X-Postfix with mail_name = Postfix. */
export function vendorPrefix(mailName: string): string {
  const name = mailName.replace(/[^A-Za-z0-9-]/g, "") || "Postern";
  return `X-${name[0]!.toUpperCase()}${name.slice(1)}`;
}

/** Postfix's quoting of a local part that is not a dot-atom. */
export function quoteAddress(address: string): string {
  const at = address.lastIndexOf("@");
  const local = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? "" : address.slice(at);
  const special = /[\x00-\x20()<>@,;:\\".[\]\x7f]/;
  if (local === "" || !local.split(".").some((part) => part === "" || special.test(part))) return address;
  return `"${local.replace(/["\\]/g, (c) => `\\${c}`)}"${domain}`;
}

function fold(name: string, value: string): string {
  return wrapLine(`${name}: ${oneLine(value)}`).join("\n") + "\n";
}

function field(name: string, value: string): string {
  return `${name}: ${oneLine(value)}\n`;
}

/** The per-recipient lines of the human-readable part, each group after an empty line. */
function recipientText(r: ReportRecipient): string {
  const expanded = r.original && r.original !== r.recipient ? ` (expanded from <${oneLine(r.original)}>)` : "";
  return "\n" + wrapLine(`<${oneLine(r.recipient)}>${expanded}: ${oneLine(r.text)}`).join("\n") + "\n";
}

function recipientFields(r: ReportRecipient): string {
  let s = "\n" + field("Final-Recipient", `rfc822; ${r.recipient}`);
  if (r.orcpt) s += field("Original-Recipient", r.orcpt);
  else if (r.original) s += field("Original-Recipient", `rfc822;${r.original}`);
  s += field("Action", r.action) + field("Status", r.status);
  if (r.remoteMta) s += field("Remote-MTA", r.remoteMta);
  s += fold("Diagnostic-Code", r.diagnosticCode);
  if (r.lastAttempt) s += field("Last-Attempt-Date", mailDate(r.lastAttempt));
  if (r.willRetryUntil) s += field("Will-Retry-Until", mailDate(r.willRetryUntil));
  return s;
}

/** A boundary like Postfix's, `QUEUEID.SECONDS/HOST`, made longer until no line of the content starts with it. */
function chooseBoundary(spec: ReportSpec, parts: Uint8Array[]): string {
  let boundary = `${spec.queueId}.${Math.floor(spec.date.getTime() / 1000)}/${oneLine(spec.myhostname).replace(/[^\x21-\x7e]/g, "")}`;
  const clashes = (b: string) => parts.some((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength).includes(`--${b}`));
  while (clashes(boundary)) boundary += `.${Math.random().toString(36).slice(2, 8)}`;
  return boundary;
}

export interface RenderedReport {
  bytes: Uint8Array;
  /** Declared Content-Transfer-Encoding: 8bit (the notice is queued as 8BITMIME). */
  eightBit: boolean;
}

/**
 * The report's bytes. `noticeId` is the queue ID of the report itself
 * (named by its Received: and Message-Id: headers, as Postfix's are).
 */
export function renderReport(spec: ReportSpec, noticeId: string): RenderedReport {
  const prefix = vendorPrefix(spec.mailName);
  const shownSender = spec.originalSender || `MAILER-DAEMON@${spec.myhostname}`;

  // the part that returns the original: Return-Path first, as Postfix's does
  let returned = spec.returned === "headers" ? headerSection(spec.content) : spec.content;
  const returnPath = Buffer.from(`Return-Path: <${oneLine(shownSender)}>\n`);
  if (returned.length && returned[returned.length - 1] !== LF) returned = Buffer.concat([returned, Buffer.from("\n")]);

  const text = spec.text + spec.recipients.map(recipientText).join("");
  let status = field("Reporting-MTA", `dns; ${spec.myhostname}`);
  if (spec.envid) status += field("Original-Envelope-Id", spec.envid);
  status += field(`${prefix}-Queue-ID`, spec.queueId) + field(`${prefix}-Sender`, `rfc822; ${shownSender}`) + field("Arrival-Date", mailDate(spec.arrival));
  status += spec.recipients.map(recipientFields).join("");

  const textBytes = Buffer.from(text);
  const statusBytes = Buffer.from(status);
  const eightBit = spec.encoding === "8BITMIME" || spec.smtputf8 || nonAscii(textBytes) || nonAscii(statusBytes) || nonAscii(returned);
  const sevenBit = !eightBit && spec.encoding === "7BIT";
  const charset = eightBit && spec.charset.toLowerCase() === "us-ascii" ? "utf-8" : spec.charset;
  const boundary = chooseBoundary(spec, [textBytes, statusBytes, returnPath, returned]);

  let head = "";
  head += `Received: by ${spec.myhostname} (${spec.mailName})\n\tid ${noticeId}; ${mailDate(spec.date)}\n`;
  head += field("Date", mailDate(spec.date));
  head += field("From", spec.from);
  head += field("Subject", spec.subject);
  head += field("To", spec.to.map(quoteAddress).join(", "));
  head += field("Auto-Submitted", spec.autoSubmitted);
  head += "MIME-Version: 1.0\n";
  head += `Content-Type: multipart/report; report-type=delivery-status;\n\tboundary="${boundary}"\n`;
  if (eightBit) head += "Content-Transfer-Encoding: 8bit\n";
  else if (sevenBit) head += "Content-Transfer-Encoding: 7bit\n";
  head += `Message-Id: <${messageIdStamp(spec.date)}.${noticeId}@${spec.myhostname}>\n`;
  head += "\nThis is a MIME-encapsulated message.\n\n";

  head += `--${boundary}\nContent-Description: Notification\nContent-Type: text/plain; charset=${charset}\n`;
  if (eightBit) head += "Content-Transfer-Encoding: 8bit\n";
  head += "\n";

  const statusHead = `\n--${boundary}\nContent-Description: Delivery report\nContent-Type: message/delivery-status\n\n`;

  let returnHead = `\n--${boundary}\nContent-Description: ${spec.returnedLabel}\n`;
  returnHead += `Content-Type: ${spec.returned === "headers" ? "text/rfc822-headers" : "message/rfc822"}\n`;
  if (eightBit) returnHead += "Content-Transfer-Encoding: 8bit\n";
  returnHead += "\n";

  const bytes = Buffer.concat([
    Buffer.from(head),
    textBytes,
    Buffer.from(statusHead),
    statusBytes,
    Buffer.from(returnHead),
    returnPath,
    returned,
    Buffer.from(`\n--${boundary}--\n`),
  ]);
  return { bytes, eightBit };
}
