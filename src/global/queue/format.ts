/**
 * The queue file format, version 1: the contract between sendmail, pickup,
 * cleanup, the queue manager and the queue tools (docs/queue-file.md).
 *
 *     postern-queue 1\n                          magic and version
 *     T <arrival ms>\n                            one
 *     S <sender>\n                                one; "S \n" is the null sender
 *     A <name> <value>\n                          attributes, any number
 *     R <address> [key=value ...]\n               recipients, one or more
 *     M <content bytes>\n                         then exactly that many bytes of message
 *     \nE\n                                       end marker: without it the file is incomplete
 *     D <recipient index> <ms>\n                  appended later: that recipient is finished
 *     X <ms>\n                                   appended later: expiry forced (postsuper -e/-f); read as attribute expire=yes
 *     W <ms>\n                                   appended later: the delay notice was sent; read as attribute delay_warned=yes
 *     V <ms>\n                                   appended later: the sendmail -v report was sent; read as attribute record_sent=yes
 *
 * Values are %XX-escaped (escape.ts). The message is kept with LF line ends.
 * Reading trusts nothing: a file that does not match exactly is corrupt.
 */
import { escapeValue, unescapeValue } from "./escape.ts";

export const QUEUE_FORMAT_MAGIC = "postern-queue";
export const QUEUE_FORMAT_VERSION = 1;

/** DSN NOTIFY keywords (RFC 3461). */
export type NotifyKeyword = "NEVER" | "SUCCESS" | "FAILURE" | "DELAY";

export interface Recipient {
  /** The address mail goes to (after rewriting). */
  address: string;
  /** The address as first received, before aliasing and rewriting (Postfix's original_recipient). */
  original?: string;
  /** DSN ORCPT, as given: "rfc822;user@example.com". */
  orcpt?: string;
  /** DSN NOTIFY; absent means the default (FAILURE, and DELAY at the sender's discretion). */
  notify?: NotifyKeyword[];
  /** Set when a D record finished this recipient (delivered, bounced or dropped). */
  done?: boolean;
}

export interface Envelope {
  /** Arrival time, ms since the epoch. */
  arrivalTime: number;
  /** "" is the null sender. */
  sender: string;
  recipients: Recipient[];
  /** Named attributes: uid, login, full_name, envid, ret, encoding, client_address, sasl_username, ... */
  attributes: Record<string, string>;
}

/**
 * A queue file without its content: what the queue manager keeps of a message in active/ (as Postfix's
 * qmgr reads only the envelope records). The content is read again from the file when a notice needs it.
 */
export interface QueueEnvelope extends Envelope {
  /** The content's length in bytes (the log's size=). */
  size: number;
}

export interface QueueFile extends Envelope {
  /** The message: headers, blank line, body; LF line ends. */
  content: Uint8Array;
}

export class CorruptQueueFileError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "CorruptQueueFileError";
  }
}

const NOTIFY_WORDS = new Set(["NEVER", "SUCCESS", "FAILURE", "DELAY"]);
const END_MARKER = "\nE\n";

function recipientLine(r: Recipient): string {
  let line = `R ${escapeValue(r.address)}`;
  if (r.original !== undefined) line += ` original=${escapeValue(r.original)}`;
  if (r.orcpt !== undefined) line += ` orcpt=${escapeValue(r.orcpt)}`;
  if (r.notify?.length) line += ` notify=${r.notify.join(",")}`;
  return line + "\n";
}

export function encodeQueueFile(q: QueueFile): Uint8Array {
  let head = `${QUEUE_FORMAT_MAGIC} ${QUEUE_FORMAT_VERSION}\nT ${Math.trunc(q.arrivalTime)}\nS ${escapeValue(q.sender)}\n`;
  for (const [name, value] of Object.entries(q.attributes)) {
    if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`invalid attribute name "${name}"`);
    head += `A ${name} ${escapeValue(value)}\n`;
  }
  for (const r of q.recipients) head += recipientLine(r);
  head += `M ${q.content.length}\n`;
  const headBytes = Buffer.from(head, "utf8");
  const out = new Uint8Array(headBytes.length + q.content.length + END_MARKER.length);
  out.set(headBytes, 0);
  out.set(q.content, headBytes.length);
  out.set(Buffer.from(END_MARKER), headBytes.length + q.content.length);
  return out;
}

/** The record postsuper -e/-f appends: the queue manager returns the message at its next attempt. */
export function encodeExpireRecord(time = Date.now()): string {
  return `X ${Math.trunc(time)}\n`;
}

/** The record the queue manager appends once it has sent the delay notice. */
export function encodeDelayWarnedRecord(time = Date.now()): string {
  return `W ${Math.trunc(time)}\n`;
}

/** The record the queue manager appends once it has sent the sendmail -v (record=yes) report: one report, after the first attempt. */
export function encodeRecordSentRecord(time = Date.now()): string {
  return `V ${Math.trunc(time)}\n`;
}

/** The record appended when recipient `index` is finished. */
export function encodeDoneRecord(index: number, time = Date.now()): string {
  return `D ${index} ${Math.trunc(time)}\n`;
}

function fail(reason: string): never {
  throw new CorruptQueueFileError(reason);
}

/** The head of a queue file (the records before the content) ended where more bytes of the file are to be read. */
class HeadNeedsMore extends Error {}

/** The records before the content, and where the content starts and how long it is; the envelope not yet checked. */
interface QueueFileHead {
  arrivalTime: number | undefined;
  sender: string | undefined;
  attributes: Record<string, string>;
  recipients: Recipient[];
  contentStart: number;
  contentLength: number;
}

/** Decodes the records up to and including the M record; `partial`: `buf` may end before the file does. */
function decodeHead(buf: Buffer, partial: boolean): QueueFileHead {
  let pos = 0;
  const nextLine = (): string => {
    const nl = buf.indexOf(10, pos);
    if (nl < 0) {
      if (partial) throw new HeadNeedsMore();
      fail("truncated envelope");
    }
    const line = buf.toString("utf8", pos, nl);
    pos = nl + 1;
    return line;
  };
  const magic = nextLine();
  if (magic !== `${QUEUE_FORMAT_MAGIC} ${QUEUE_FORMAT_VERSION}`) fail(`not a version ${QUEUE_FORMAT_VERSION} queue file: "${magic.slice(0, 40)}"`);
  let arrivalTime: number | undefined;
  let sender: string | undefined;
  const attributes: Record<string, string> = {};
  const recipients: Recipient[] = [];
  for (;;) {
    const line = nextLine();
    const type = line[0];
    if (line[1] !== " ") fail(`malformed record "${line.slice(0, 40)}"`);
    const rest = line.slice(2);
    switch (type) {
      case "T":
        if (!/^\d{1,15}$/.test(rest) || arrivalTime !== undefined) fail("bad arrival time record");
        arrivalTime = Number(rest);
        break;
      case "S":
        if (sender !== undefined || rest.includes(" ")) fail("bad sender record");
        sender = unescapeValue(rest);
        break;
      case "A": {
        // the encoder escapes ASCII blanks and controls only: \S would refuse a value holding U+00A0 or U+2028
        // eslint-disable-next-line no-control-regex
        const m = /^([a-z0-9_]+) ([^\x00-\x20\x7f]*)$/.exec(rest);
        if (!m) fail("bad attribute record");
        // defined, not assigned: "A __proto__ x" is an attribute like any other, never the object's prototype
        Object.defineProperty(attributes, m[1]!, { value: unescapeValue(m[2]!), enumerable: true, writable: true, configurable: true });
        break;
      }
      case "R": {
        const [addr, ...params] = rest.split(" ");
        const r: Recipient = { address: unescapeValue(addr ?? "") };
        for (const p of params) {
          const eq = p.indexOf("=");
          const key = p.slice(0, eq);
          const value = p.slice(eq + 1);
          if (eq < 0) fail("bad recipient parameter");
          if (key === "original") r.original = unescapeValue(value);
          else if (key === "orcpt") r.orcpt = unescapeValue(value);
          else if (key === "notify") {
            const words = value.split(",");
            if (!words.every((w) => NOTIFY_WORDS.has(w))) fail("bad NOTIFY value");
            r.notify = words as NotifyKeyword[];
          } else fail(`unknown recipient parameter "${key}"`);
        }
        recipients.push(r);
        break;
      }
      case "M":
        if (!/^\d{1,12}$/.test(rest)) fail("bad content length");
        return { arrivalTime, sender, attributes, recipients, contentStart: pos, contentLength: Number(rest) };
      default:
        fail(`unknown record type "${type}"`);
    }
  }
}

/** Checks the end marker (`marker`: the 3 bytes after the content) and that the envelope is whole. */
function checkHead(head: QueueFileHead, marker: string): Envelope {
  if (marker !== END_MARKER) fail(marker.length < END_MARKER.length ? "incomplete: content or end marker missing" : "incomplete: no end marker after the content");
  const { arrivalTime, sender, recipients, attributes } = head;
  if (arrivalTime === undefined) fail("no arrival time record");
  if (sender === undefined) fail("no sender record");
  if (recipients.length === 0) fail("no recipient records");
  return { arrivalTime, sender, recipients, attributes };
}

/** Applies the state records appended after the end marker (`tail`); a torn last line (no newline) is ignored. */
function applyStateRecords(tail: Buffer, envelope: Envelope): void {
  let pos = 0;
  while (pos < tail.length) {
    const nl = tail.indexOf(10, pos);
    if (nl < 0) break;
    const line = tail.toString("latin1", pos, nl);
    pos = nl + 1;
    if (/^X \d+$/.test(line)) {
      envelope.attributes.expire = "yes";
      continue;
    }
    if (/^W \d+$/.test(line)) {
      envelope.attributes.delay_warned = "yes";
      continue;
    }
    if (/^V \d+$/.test(line)) {
      envelope.attributes.record_sent = "yes";
      continue;
    }
    const m = /^D (\d+) \d+$/.exec(line);
    if (!m) fail(`bad state record "${line.slice(0, 40)}"`);
    const r = envelope.recipients[Number(m[1])];
    if (!r) fail("state record for a recipient that does not exist");
    r.done = true;
  }
}

export function decodeQueueFile(bytes: Uint8Array): QueueFile {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const head = decodeHead(buf, false);
  const end = head.contentStart + head.contentLength;
  const envelope = checkHead(head, end + END_MARKER.length > buf.length ? "" : buf.toString("latin1", end, end + END_MARKER.length));
  applyStateRecords(buf.subarray(end + END_MARKER.length), envelope);
  return { ...envelope, content: buf.subarray(head.contentStart, end) };
}

/**
 * The first read of a queue file's head: most envelopes take a few hundred bytes, and a file this small is read
 * whole in one call. A head longer than this (hundreds of recipients) is read again, four times larger.
 */
export const QUEUE_HEAD_READ = 16 * 1024;

/**
 * A queue file's envelope without reading its content (decodeQueueFile's rules, the same refusals): the head
 * up to the M record, the end marker and the state records after it, read through `read(position, length)`
 * from a file of `size` bytes. What the queue manager keeps of a message in active/: memory and reads bounded
 * by the envelope, not by the message's size.
 */
export function decodeQueueEnvelope(read: (position: number, length: number) => Buffer, size: number): QueueEnvelope {
  let head: QueueFileHead | undefined;
  for (let want = Math.min(size, QUEUE_HEAD_READ); head === undefined; want = Math.min(size, want * 4)) {
    try {
      head = decodeHead(read(0, want), want < size);
    } catch (err) {
      if (!(err instanceof HeadNeedsMore)) throw err;
    }
  }
  const end = head.contentStart + head.contentLength;
  const envelope = checkHead(head, end + END_MARKER.length > size ? "" : read(end, END_MARKER.length).toString("latin1"));
  applyStateRecords(read(end + END_MARKER.length, size - end - END_MARKER.length), envelope);
  return { ...envelope, size: head.contentLength };
}
