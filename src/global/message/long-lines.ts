/**
 * Breaking lines longer than a limit in a message in the queue's form (LF
 * line ends), exactly as the SMTP client breaks them on the wire
 * (src/smtp/message-data.ts: the first `limit` bytes, then pieces of
 * `limit - 1` bytes each after a space on a new line). Done before a DKIM
 * signature is computed, so the client finds nothing left to break and the
 * signature covers the bytes that are sent.
 *
 * Pure; the content is untrusted and only copied.
 */

/** The content with every line longer than `limit` bytes broken; the same buffer when none is. */
export function breakLongLines(content: Buffer, limit: number): Buffer {
  if (limit <= 0) return content;
  const parts: Buffer[] = [];
  let copiedTo = 0;
  let start = 0;
  while (start < content.length) {
    let nl = content.indexOf(10, start);
    if (nl < 0) nl = content.length;
    // a CR before the LF belongs to the line end, as the client sees it
    const end = nl > start && content[nl - 1] === 13 ? nl - 1 : nl;
    if (end - start > limit) {
      parts.push(content.subarray(copiedTo, start));
      let line = content.subarray(start, end);
      let take = limit;
      while (line.length > take) {
        parts.push(line.subarray(0, take), Buffer.from("\n "));
        line = line.subarray(take);
        take = limit - 1;
      }
      parts.push(line);
      copiedTo = end;
    }
    start = nl + 1;
  }
  if (parts.length === 0) return content;
  parts.push(content.subarray(copiedTo));
  return Buffer.concat(parts);
}
