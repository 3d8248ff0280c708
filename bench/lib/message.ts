/**
 * Test messages: a plain-text message of an exact size in bytes, the kind a
 * cron job or script sends (From, To, Subject, a body of short lines).
 */

export function makeMessage(size: number, opts: { from: string; to: string; subject: string }): string {
  const head = `From: ${opts.from}\nTo: ${opts.to}\nSubject: ${opts.subject}\n\n`;
  const line = "The quick brown fox jumps over the lazy dog; postern bench body text.\n";
  let body = "";
  while (head.length + body.length + line.length <= size) body += line;
  const rest = size - head.length - body.length;
  if (rest > 0) body += "x".repeat(Math.max(rest - 1, 0)) + (rest > 0 ? "\n" : "");
  const text = head + body;
  if (text.length !== size) throw new Error(`Message of ${size} bytes came out as ${text.length}`);
  return text;
}
