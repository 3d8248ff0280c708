/**
 * Why a delivery attempt did not succeed, in the two parts Postfix reports:
 * an enhanced status code (4.x.x defers, 5.x.x bounces) and the reason the
 * log, mailq and the bounce show. Plain values; nothing here does I/O.
 */
import { replyDsn, replyText, type RemoteReply } from "../global/smtp-reply/reply.ts";

export interface Failure {
  dsn: string;
  reason: string;
}

export function isSoft(f: Failure): boolean {
  return f.dsn.startsWith("4");
}

/**
 * "host NAME[ADDR] said: 550 5.1.1 ... (in reply to RCPT TO command)"; a
 * reply outside 4xx/5xx is a protocol error (5.5.0), as Postfix reports it.
 */
export function replyFailure(namaddr: string, reply: RemoteReply, inReplyTo: string): Failure {
  const text = `host ${namaddr} said: ${replyText(reply)} (in reply to ${inReplyTo})`;
  const klass = Math.floor(reply.code / 100);
  if (klass !== 4 && klass !== 5) return { dsn: "5.5.0", reason: `Protocol error: ${text}` };
  return { dsn: replyDsn(reply), reason: text };
}

/** "host NAME[ADDR] refused to talk to me: 554 ..." for greeting and EHLO/HELO refusals. */
export function refusedFailure(namaddr: string, reply: RemoteReply, skip5xx: boolean): Failure {
  let dsn = replyDsn(reply);
  const klass = Math.floor(reply.code / 100);
  const text = `host ${namaddr} refused to talk to me: ${replyText(reply)}`;
  if (klass !== 4 && klass !== 5) return { dsn: "5.5.0", reason: `Protocol error: ${text}` };
  if (klass === 5 && skip5xx) dsn = `4${dsn.slice(1)}`;
  return { dsn, reason: text };
}

/** Turns a permanent failure into a temporary one (soft_bounce-style safety nets). */
export function softened(f: Failure, dsn?: string): Failure {
  if (isSoft(f)) return f;
  return { dsn: dsn ?? `4${f.dsn.slice(1)}`, reason: f.reason };
}
