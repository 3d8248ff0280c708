/**
 * Postfix 3.9's cleanup_replace_stray_cr_lf: every <CR> or <LF> that is not
 * part of a line end becomes a space, before any other content processing.
 * Queued content has LF line ends, so an LF is always a line end here and
 * every CR is stray (smtpd took the CR of each CRLF off; sendmail took it off
 * when the input had CRLF line ends). A stray CR sent on as `\r.\r\n` would
 * end the message early at a next hop that takes a bare CR for a line end
 * (outbound SMTP smuggling), and a next hop's DKIM check would depend on what
 * it makes of it. The length does not change. NUL and other bytes pass, as in
 * Postfix (message_reject_characters and message_strip_characters are where
 * Postfix lets a site refuse or remove them).
 *
 * Runs inside cleanup (pickup and smtpd, as mail_owner) on untrusted content.
 */

const CR = 13;
const SPACE = 32;

/** The content with each CR made a space; the same buffer when it has none. */
export function replaceStrayCr(content: Buffer): Buffer {
  let i = content.indexOf(CR);
  if (i < 0) return content;
  const out = Buffer.from(content);
  for (; i >= 0; i = out.indexOf(CR, i + 1)) out[i] = SPACE;
  return out;
}
