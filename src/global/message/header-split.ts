/**
 * Splitting a message into its primary headers and its body, as Postfix's
 * MIME reader does for cleanup and `sendmail -t`:
 *
 * - A header starts with a name of printable ASCII characters other than
 *   `:`, optional blanks, and a colon (`Subject : x` is read as `Subject: x`);
 *   lines starting with a blank continue it.
 * - The headers end at an empty line (which stays, as the start of the
 *   body), at a line that is not a header (the body starts there; Postfix
 *   puts an empty line before it), or at the end of the message.
 * - header_size_limit: once a header holds that many bytes, the rest of it
 *   is discarded (the header is kept, shortened; `truncated` is set). Lines
 *   are taken in pieces of line_length_limit bytes, as Postfix's records,
 *   so a long line is cut at a piece boundary.
 *
 * The content is bytes with LF line ends (the queue's form); header text is
 * handled as latin1 ("binary") strings so any byte survives unchanged.
 * Runs in sendmail and in pickup/cleanup; the content is untrusted.
 */

export interface HeaderField {
  /** The name as written, blanks before the colon removed. */
  name: string;
  /** The whole header: `Name:value`, continuation lines joined with "\n", no final newline. */
  text: string;
}

export type HeaderEnd = "blank" | "nonheader" | "eof";

export interface SplitMessage {
  headers: HeaderField[];
  /** Offset of the body in the content: the empty line, the first non-header line, or the end. */
  bodyOffset: number;
  endedBy: HeaderEnd;
  /** Headers that were cut at header_size_limit, by name. */
  truncated: string[];
}

export interface SplitLimits {
  lineLengthLimit: number;
  headerSizeLimit: number;
}

const HEADER_START = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:/;

/** The name length when `line` starts a header, else 0 (Postfix's is_header). */
export function headerNameLength(line: string): number {
  const m = HEADER_START.exec(line);
  return m ? m[1]!.length : 0;
}

/** The header's value with folding undone (line breaks removed) and outer blanks trimmed. */
export function headerValue(field: HeaderField): string {
  return field.text
    .slice(field.text.indexOf(":") + 1)
    .replace(/\r?\n(?=[ \t])/g, "")
    .trim();
}

export function unfold(text: string): string {
  return text.replace(/\r?\n(?=[ \t])/g, "");
}

export function findHeaders(headers: readonly HeaderField[], name: string): HeaderField[] {
  const want = name.toLowerCase();
  return headers.filter((h) => h.name.toLowerCase() === want);
}

export function splitMessage(content: Uint8Array, limits: SplitLimits): SplitMessage {
  const buf = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  const headers: HeaderField[] = [];
  const truncated: string[] = [];
  const chunk = Math.max(1, limits.lineLengthLimit);
  let current: { name: string; text: string; cut: boolean } | undefined;
  const finish = () => {
    if (!current) return;
    headers.push({ name: current.name, text: current.text });
    if (current.cut) truncated.push(current.name);
    current = undefined;
  };
  let pos = 0;
  while (pos < buf.length) {
    const nl = buf.indexOf(10, pos);
    const lineEnd = nl < 0 ? buf.length : nl;
    const next = nl < 0 ? buf.length : nl + 1;
    const line = buf.toString("latin1", pos, lineEnd);
    const first = line.slice(0, chunk);
    if (current && (first.startsWith(" ") || first.startsWith("\t"))) {
      // a continuation line, taken piece by piece while the header has room
      for (let off = 0; off < line.length; off += chunk) {
        if (current.text.length < limits.headerSizeLimit) current.text += (off === 0 ? "\n" : "") + line.slice(off, off + chunk);
        else current.cut = true;
      }
      pos = next;
      continue;
    }
    const nameLength = headerNameLength(first);
    if (nameLength === 0) {
      finish();
      return { headers, bodyOffset: pos, endedBy: line === "" ? "blank" : "nonheader", truncated };
    }
    finish();
    const name = first.slice(0, nameLength);
    // "Name  :value" is read as "Name:value"
    const normalized = name + line.slice(line.indexOf(":", nameLength));
    current = { name, text: normalized.slice(0, chunk), cut: false };
    for (let off = chunk; off < normalized.length; off += chunk) {
      if (current.text.length < limits.headerSizeLimit) current.text += normalized.slice(off, off + chunk);
      else current.cut = true;
    }
    pos = next;
  }
  finish();
  return { headers, bodyOffset: buf.length, endedBy: "eof", truncated };
}
