/**
 * A queued message as SMTP DATA: LF line ends become CRLF, a line that
 * starts with "." gets another one (RFC 5321 4.5.2), a line longer than
 * smtp_line_length_limit is broken with CRLF and a space as Postfix does,
 * a last line without LF is ended, and ".\r\n" closes the data.
 *
 * The content comes from a queue file written by cleanup: bytes are passed
 * through unchanged (8-bit included); no MIME conversion is done.
 */

const CRLF = Buffer.from("\r\n");
const CRLF_SPACE = Buffer.from("\r\n ");
const DOT = Buffer.from(".");
const END = Buffer.from(".\r\n");

export interface EncodedData {
  bytes: Buffer;
  /** Lines were broken at the length limit. */
  brokeLongLines: boolean;
}

export function encodeMessageData(content: Uint8Array, lineLengthLimit: number): EncodedData {
  const src = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  const parts: Buffer[] = [];
  let broke = false;
  let start = 0;
  while (start < src.length) {
    let nl = src.indexOf(10, start);
    const hasNl = nl >= 0;
    if (!hasNl) nl = src.length;
    let end = nl;
    // a CR before the LF belongs to the line end, not to the line
    if (end > start && src[end - 1] === 13) end--;
    let line = src.subarray(start, end);
    if (line.length > 0 && line[0] === 0x2e) parts.push(DOT);
    if (lineLengthLimit > 0 && line.length > lineLengthLimit) {
      broke = true;
      let first = true;
      while (line.length > (first ? lineLengthLimit : lineLengthLimit - 1)) {
        const take = first ? lineLengthLimit : lineLengthLimit - 1;
        parts.push(line.subarray(0, take), CRLF_SPACE);
        line = line.subarray(take);
        first = false;
      }
    }
    parts.push(line, CRLF);
    start = hasNl ? nl + 1 : src.length;
  }
  parts.push(END);
  return { bytes: Buffer.concat(parts), brokeLongLines: broke };
}

/** Whether any byte has the high bit set (the message needs 8BITMIME). */
export function hasEightBit(content: Uint8Array): boolean {
  for (let i = 0; i < content.length; i++) if (content[i]! > 0x7f) return true;
  return false;
}
