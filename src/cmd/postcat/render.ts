/**
 * A queue file in postcat's shape: the envelope as Postfix names its records
 * (`message_size:`, `message_arrival_time:`, `sender:`, `recipient:`,
 * `original_recipient:`, `named_attribute:` ...), the message content, and
 * Postfix's section markers (`*** ENVELOPE RECORDS name ***`, `*** MESSAGE
 * CONTENTS name ***`, `*** HEADER EXTRACTED name ***`, `*** MESSAGE FILE
 * END name ***`), which appear when the envelope is shown.
 *
 * The file is decoded (and so validated) first; offsets (-o) are byte
 * offsets of postern's own records, which differ from Postfix's. Envelope
 * values print with control characters as "?" so a value cannot forge a
 * line; message content prints as it is stored.
 */
import { asctime } from "../../util/asctime.ts";
import { decodeQueueFile } from "../../global/queue/format.ts";
import { unescapeValue } from "../../global/queue/escape.ts";
import { smtpMessageSize } from "../../global/queue/listing.ts";

export interface RenderOptions {
  envelope: boolean;
  header: boolean;
  body: boolean;
  offsets: boolean;
}

/** One output line: its byte offset in the file and its text (content lines are bytes). */
type Line = { offset: number | undefined; text: string | Uint8Array };

const NOTIFY_BITS: Record<string, number> = { NEVER: 1, SUCCESS: 2, FAILURE: 4, DELAY: 8 };
const RET_FLAGS: Record<string, number> = { FULL: 1, HDRS: 2 };

function safe(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, "?");
}

interface RawRecord {
  offset: number;
  type: string;
  rest: string;
}

/** The envelope records with their offsets, the content's place, and the records after the end marker. */
function walk(buf: Buffer): { head: RawRecord[]; contentStart: number; contentEnd: number; tail: RawRecord[] } {
  const head: RawRecord[] = [];
  let pos = buf.indexOf(10) + 1; // after the magic line
  let contentStart = -1;
  let contentEnd = -1;
  while (contentStart < 0) {
    const nl = buf.indexOf(10, pos);
    const line = buf.toString("utf8", pos, nl);
    const record = { offset: pos, type: line[0]!, rest: line.slice(2) };
    pos = nl + 1;
    if (record.type === "M") {
      head.push(record);
      contentStart = pos;
      contentEnd = pos + Number(record.rest);
    } else head.push(record);
  }
  const tail: RawRecord[] = [];
  pos = contentEnd + 3; // "\nE\n"
  for (;;) {
    const nl = buf.indexOf(10, pos);
    if (nl < 0) break;
    const line = buf.toString("latin1", pos, nl);
    tail.push({ offset: pos, type: line[0]!, rest: line.slice(2) });
    pos = nl + 1;
  }
  return { head, contentStart, contentEnd, tail };
}

function envelopeLines(buf: Buffer, head: RawRecord[], contentStart: number): Line[] {
  const file = decodeQueueFile(buf);
  const size = smtpMessageSize(file.content);
  const utf8 = file.attributes.smtputf8 !== undefined && !/^(no|0|false)$/i.test(file.attributes.smtputf8) ? 1 : 0;
  const fields = [size, contentStart, file.recipients.length, 0, size, utf8].map((n) => String(n).padStart(15)).join(" ");
  const lines: Line[] = [{ offset: 0, text: `message_size: ${fields}` }];
  const attrs: Line[] = [];
  let createTime: Line | undefined;
  let fullName: Line | undefined;
  let sender: Line | undefined;
  const recipients: Line[] = [];
  let rcptIndex = 0;
  for (const r of head) {
    switch (r.type) {
      case "T":
        lines.push({ offset: r.offset, text: `message_arrival_time: ${asctime(Math.floor(Number(r.rest) / 1000))}` });
        break;
      case "S":
        sender = { offset: r.offset, text: `sender: ${safe(unescapeValue(r.rest))}` };
        break;
      case "A": {
        const sp = r.rest.indexOf(" ");
        const name = r.rest.slice(0, sp);
        const value = unescapeValue(r.rest.slice(sp + 1));
        if (name === "full_name") fullName = { offset: r.offset, text: `sender_fullname: ${safe(value)}` };
        else if (name === "create_time" && /^\d+$/.test(value)) createTime = { offset: r.offset, text: `create_time: ${asctime(Number(value))}` };
        else if (name === "envid") attrs.push({ offset: r.offset, text: `named_attribute: envelope_id=${safe(value)}` });
        else if (name === "ret") attrs.push({ offset: r.offset, text: `named_attribute: ret_flags=${RET_FLAGS[value.toUpperCase()] ?? safe(value)}` });
        else attrs.push({ offset: r.offset, text: `named_attribute: ${name}=${safe(value)}` });
        break;
      }
      case "R": {
        const rcpt = file.recipients[rcptIndex++]!;
        const at = (text: string) => recipients.push({ offset: r.offset, text });
        if (rcpt.notify?.length) at(`named_attribute: notify_flags=${rcpt.notify.reduce((sum, w) => sum | NOTIFY_BITS[w]!, 0)}`);
        if (rcpt.orcpt !== undefined) at(`named_attribute: dsn_orig_rcpt=${safe(rcpt.orcpt)}`);
        if (rcpt.original !== undefined) at(`original_recipient: ${safe(rcpt.original)}`);
        at(`${rcpt.done ? "done_recipient" : "recipient"}: ${safe(rcpt.address)}`);
        break;
      }
    }
  }
  if (createTime) lines.push(createTime);
  lines.push(...attrs);
  if (fullName) lines.push(fullName);
  if (sender) lines.push(sender);
  lines.push(...recipients);
  return lines;
}

/** Header lines run up to the first line that is neither a header field nor its continuation. */
function headerLineCount(lines: Uint8Array[]): number {
  let n = 0;
  for (const line of lines) {
    const text = Buffer.from(line).toString("latin1");
    const isField = /^[\x21-\x39\x3b-\x7e]+[ \t]*:/.test(text);
    const isContinuation = n > 0 && /^[ \t]/.test(text);
    if (!isField && !isContinuation) break;
    n++;
  }
  return n;
}

/** Renders one decoded-valid queue file; `name` is what the markers show (queue/ID, a path, or stdin). */
export function renderQueueFile(buf: Buffer, name: string, opts: RenderOptions): Buffer {
  decodeQueueFile(buf); // throws CorruptQueueFileError: nothing half-printed for a bad file
  const { head, contentStart, contentEnd, tail } = walk(buf);
  const out: Line[] = [];
  if (opts.envelope) {
    out.push({ offset: undefined, text: `*** ENVELOPE RECORDS ${name} ***` });
    out.push(...envelopeLines(buf, head, contentStart));
    out.push({ offset: head.at(-1)!.offset, text: `*** MESSAGE CONTENTS ${name} ***` });
  }
  if (opts.header || opts.body) {
    const contentLines: Line[] = [];
    let pos = contentStart;
    while (pos < contentEnd) {
      const nl = buf.indexOf(10, pos);
      const end = nl < 0 || nl >= contentEnd ? contentEnd : nl;
      contentLines.push({ offset: pos, text: buf.subarray(pos, end) });
      pos = end + 1;
    }
    const headers = headerLineCount(contentLines.map((l) => l.text as Uint8Array));
    if (opts.header) out.push(...contentLines.slice(0, headers));
    if (opts.body) out.push(...contentLines.slice(headers));
  }
  if (opts.envelope) {
    out.push({ offset: contentEnd, text: `*** HEADER EXTRACTED ${name} ***` });
    for (const r of tail) {
      if (r.type === "X") out.push({ offset: r.offset, text: `forced_expire: ${asctime(Math.floor(Number(r.rest) / 1000))}` });
      else if (r.type === "W") out.push({ offset: r.offset, text: `delay_warned: ${asctime(Math.floor(Number(r.rest) / 1000))}` });
    }
    out.push({ offset: buf.length, text: `*** MESSAGE FILE END ${name} ***` });
  }
  const chunks: Buffer[] = [];
  for (const line of out) {
    if (opts.offsets && line.offset !== undefined) chunks.push(Buffer.from(`${String(line.offset).padStart(9)} `));
    chunks.push(typeof line.text === "string" ? Buffer.from(line.text) : Buffer.from(line.text));
    chunks.push(Buffer.from("\n"));
  }
  return Buffer.concat(chunks);
}
