/**
 * One mail transaction on an open session, as Postfix's smtp_xfer() runs
 * it: MAIL FROM (SIZE, BODY, SMTPUTF8, DSN's RET and ENVID), a RCPT TO per
 * recipient (DSN's NOTIFY and ORCPT), DATA, the content, and the end of
 * data; all of MAIL, RCPT and DATA in one write when the server offers
 * PIPELINING. Every reply is matched to its command; the outcome is one
 * result per recipient (SMTP: the reply to the end of data; LMTP: one reply
 * per accepted recipient) or a failure for the whole message, in Postfix's
 * words ("host NAME[ADDR] said: ... (in reply to RCPT TO command)"). An
 * aborted transaction ends with RSET, so the connection can be reused.
 *
 * Verify mode (sendmail -bv) probes as Postfix's smtp(8) does for a
 * trace-only request: MAIL FROM and the RCPT TOs, never DATA, then RSET;
 * each recipient's answer is the reply to its RCPT TO.
 *
 * The server's replies are untrusted: only their codes steer, and their
 * text is passed on as the reason.
 */
import { externalizeAddress } from "../global/address/quote.ts";
import { encodeOrcpt, encodeXtext } from "../global/message/dsn-params.ts";
import type { NotifyKeyword } from "../global/queue/format.ts";
import type { RemoteReply } from "../global/smtp-reply/reply.ts";
import { replyFailure, type Failure } from "./failure.ts";
import { streamFailure, type Features } from "./handshake.ts";
import { SessionError, type SmtpClientSession } from "./session.ts";
import type { ClientSettings } from "./settings.ts";

export interface TxRecipient {
  index: number;
  address: string;
  original?: string;
  orcpt?: string;
  notify?: NotifyKeyword[];
}

export interface TxInput {
  session: SmtpClientSession;
  settings: ClientSettings;
  features: Features;
  namaddr: string;
  sender: string;
  recipients: TxRecipient[];
  /** The DATA bytes, dot-stuffed and ending in ".\r\n" (built on first use). */
  data: () => Uint8Array;
  /** Postfix's message_size (for SIZE=). */
  size: number;
  /** BODY=8BITMIME (else BODY=7BIT when the message says 7BIT). */
  eightBit: boolean;
  sevenBit: boolean;
  smtputf8Requested: boolean;
  envid?: string;
  ret?: string;
  /** The session came from the connection cache. */
  reused: boolean;
  /** Probe only (sendmail -bv): a 2xx reply to RCPT TO is the recipient's result, and no DATA follows. */
  verify?: boolean;
}

export type RcptOutcome = { kind: "sent"; reply: RemoteReply } | { kind: "failed"; failure: Failure };

export interface TxResult {
  outcomes: Map<number, RcptOutcome>;
  /** For every recipient without an outcome. */
  messageFailure?: Failure;
  /** The connection broke (lost, timed out): it cannot be used again. */
  broken: boolean;
  /** A cached connection turned out dead before the server answered anything: nothing happened, retry on a new one. */
  stale: boolean;
  /** The server is between transactions: fit for reuse. */
  clean: boolean;
}

function mailCommand(input: TxInput): string {
  const f = input.features;
  let cmd = `MAIL FROM:<${input.sender ? externalizeAddress(input.sender) : ""}>`;
  if (f.size) cmd += ` SIZE=${input.size}`;
  if (f.eightBitMime) {
    if (input.eightBit) cmd += " BODY=8BITMIME";
    else if (input.sevenBit) cmd += " BODY=7BIT";
  }
  if (f.dsn) {
    if (input.envid) cmd += ` ENVID=${encodeXtext(input.envid)}`;
    if (input.ret === "FULL" || input.ret === "HDRS") cmd += ` RET=${input.ret}`;
  }
  if (f.smtputf8 && input.smtputf8Requested) cmd += " SMTPUTF8";
  return cmd;
}

function rcptCommand(input: TxInput, r: TxRecipient): string {
  let cmd = `RCPT TO:<${externalizeAddress(r.address)}>`;
  if (input.features.dsn) {
    // none kept: the original address, of type utf-8 when it needs it and the sender asked for SMTPUTF8 (as Postfix)
    const original = r.original ? externalizeAddress(r.original) : "";
    const orcpt = r.orcpt || (original ? `${input.smtputf8Requested && /[^\x00-\x7f]/.test(original) ? "utf-8" : "rfc822"};${original}` : "");
    if (orcpt) cmd += ` ORCPT=${encodeOrcpt(orcpt)}`;
    if (r.notify?.length) cmd += ` NOTIFY=${r.notify.join(",")}`;
  }
  return cmd;
}

const isClass = (r: RemoteReply, c: number) => Math.floor(r.code / 100) === c;

export async function runTransaction(input: TxInput): Promise<TxResult> {
  const { session, settings, features, namaddr } = input;
  const t = settings.timeouts;
  const outcomes = new Map<number, RcptOutcome>();
  const result = (r: Partial<TxResult>): TxResult => ({ outcomes, broken: false, stale: false, clean: false, ...r });

  if (features.size && features.sizeLimit > 0 && input.size > features.sizeLimit) {
    return result({ messageFailure: { dsn: "5.3.4", reason: `message size ${input.size} exceeds size limit ${features.sizeLimit} of server ${namaddr}` }, clean: true });
  }

  let where = "sending MAIL FROM";
  let gotMailReply = false;
  // the first failure stands: a server that rejects MAIL FROM and hangs up gets its rejection reported
  let messageFailure: Failure | undefined;
  try {
    const mail = mailCommand(input);
    const rcpts = input.recipients.map((r) => rcptCommand(input, r));
    let mailReply: RemoteReply;
    const rcptReplies: Array<Promise<RemoteReply>> = [];
    let dataReply: Promise<RemoteReply> | undefined;
    if (features.pipelining) {
      session.writeLine((input.verify ? [mail, ...rcpts] : [mail, ...rcpts, "DATA"]).join("\r\n"));
      const m = session.expect(t.mail);
      for (let i = 0; i < rcpts.length; i++) rcptReplies.push(session.expect(t.rcpt));
      if (!input.verify) dataReply = session.expect(t.dataInit);
      mailReply = await m;
    } else {
      mailReply = await session.command(mail, t.mail);
    }
    gotMailReply = true;
    const mailRejected = !isClass(mailReply, 2);
    if (mailRejected && input.reused && mailReply.code === 421) {
      // the server closed an idle cached connection on us: nothing was done
      return result({ stale: true, broken: true });
    }
    if (mailRejected) messageFailure = replyFailure(namaddr, mailReply, "MAIL FROM command");

    where = "sending RCPT TO";
    const accepted: TxRecipient[] = [];
    const acceptedReplies = new Map<number, RemoteReply>();
    for (let i = 0; i < input.recipients.length; i++) {
      const r = input.recipients[i]!;
      if (!features.pipelining && mailRejected) break;
      const reply = features.pipelining ? await rcptReplies[i]! : await session.command(rcpts[i]!, t.rcpt);
      if (mailRejected) continue;
      if (isClass(reply, 2)) {
        accepted.push(r);
        acceptedReplies.set(r.index, reply);
      } else outcomes.set(r.index, { kind: "failed", failure: replyFailure(namaddr, reply, "RCPT TO command") });
    }

    if (input.verify) {
      // the probe ends here: the RCPT TO reply is the answer, and RSET leaves the session reusable
      if (!mailRejected) for (const r of accepted) outcomes.set(r.index, { kind: "sent", reply: acceptedReplies.get(r.index)! });
      where = "sending final RSET";
      const rset = await session.command("RSET", t.rset).catch(() => undefined);
      return result({ ...(messageFailure ? { messageFailure } : {}), clean: !!rset && isClass(rset, 2) });
    }

    where = "sending DATA command";
    let aborted = mailRejected || accepted.length === 0;
    if (features.pipelining || !aborted) {
      const reply = dataReply ? await dataReply : await session.command("DATA", t.dataInit);
      if (aborted) {
        // a server that takes DATA without recipients gets an empty message end at once
        if (reply.code === 354) {
          where = "sending end of data -- message may be sent more than once";
          await session.command(".", t.dataDone);
        }
      } else if (!isClass(reply, 3)) {
        messageFailure = replyFailure(namaddr, reply, "DATA command");
        aborted = true;
      } else {
        where = "sending message body";
        await session.writeData(input.data(), t.dataXfer);
        where = "sending end of data -- message may be sent more than once";
        if (settings.lmtp) {
          // the replies may arrive together: every one must be expected before the first is read
          const ends = accepted.map(() => session.expect(t.dataDone));
          for (const [i, r] of accepted.entries()) {
            const end = await ends[i]!;
            if (isClass(end, 2)) outcomes.set(r.index, { kind: "sent", reply: end });
            else outcomes.set(r.index, { kind: "failed", failure: replyFailure(namaddr, end, "end of DATA command") });
          }
        } else {
          const end = await session.expect(t.dataDone);
          if (isClass(end, 2)) for (const r of accepted) outcomes.set(r.index, { kind: "sent", reply: end });
          else messageFailure = replyFailure(namaddr, end, "end of DATA command");
        }
      }
    }

    let clean = true;
    if (aborted) {
      where = "sending final RSET";
      const rset = await session.command("RSET", t.rset).catch(() => undefined);
      clean = !!rset && isClass(rset, 2);
    }
    return result({ ...(messageFailure ? { messageFailure } : {}), clean });
  } catch (err) {
    if (!(err instanceof SessionError)) throw err;
    if (where === "sending final RSET") return result({ broken: true });
    if (input.reused && !gotMailReply) return result({ stale: true, broken: true });
    return result({ messageFailure: messageFailure ?? streamFailure(err, namaddr, where), broken: true });
  }
}
