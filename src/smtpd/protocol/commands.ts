/**
 * The SMTP server's commands as a table: each row says how a command may be
 * pipelined, whether it is allowed before STARTTLS when TLS is required,
 * whether it is a "junk" command, what state and syntax it needs (check),
 * and what it does (proceed). Replies and their enhanced status codes are
 * Postfix's, including its BDAT, ETRN and VRFY wording.
 *
 * Runs inside SmtpdSession (session.ts); every argument is untrusted client
 * text.
 */
import { decodeXtext, parseNotify, parseOrcpt, validEnvid } from "../../global/message/dsn-params.ts";
import { parsePath, splitParams } from "./args.ts";
import { GrowingBuffer, type CommandLine } from "./input.ts";
import { reply, type SmtpdReply } from "./reply.ts";
import { printable } from "../../util/printable.ts";
import { receivedHeader } from "./received.ts";
import type { SmtpdSession } from "./session.ts";
import type { AcceptedRecipient, MailParams, MessageAction } from "./types.ts";

export type CommandName = "HELO" | "EHLO" | "STARTTLS" | "AUTH" | "MAIL" | "RCPT" | "DATA" | "BDAT" | "RSET" | "NOOP" | "VRFY" | "ETRN" | "HELP" | "QUIT";

export interface CommandRow {
  name: CommandName;
  /** The name in the disconnect statistics. */
  stat: string;
  /** Must be the last command of a pipelined group (RFC 2920, 3207, 4954). */
  last: boolean;
  /** Allowed before STARTTLS when smtpd_tls_security_level = encrypt. */
  beforeTls: boolean;
  /** Counts against smtpd_junk_command_limit. */
  junk: boolean;
  /** State and syntax; a reply refuses the command. */
  check(s: SmtpdSession, arg: string): SmtpdReply | undefined;
  proceed(s: SmtpdSession, arg: string, line: CommandLine): Promise<"continue" | "close">;
}

const ok = (): SmtpdReply | undefined => undefined;
/** Postfix's reply (strict_smtputf8) to a non-ASCII address without SMTPUTF8. */
const UNICODE_NEEDS_SMTPUTF8 = reply(553, "5.6.7", "Must declare SMTPUTF8 to send unicode address");
const MAX_SIZE = Number.MAX_SAFE_INTEGER;

/** HELO/EHLO names as Postfix keeps them: anything but printable ASCII becomes "?". */
function heloName(arg: string, utf8: boolean): string {
  return printable(arg, utf8).replace(/ /g, "?");
}

function ehloKeywords(s: SmtpdSession): string[] {
  const st = s.settings;
  const out: string[] = [];
  const add = (keyword: string, text = keyword) => {
    if (s.announced(keyword.toLowerCase())) out.push(text);
  };
  add("PIPELINING");
  add("SIZE", st.messageSizeLimit > 0 ? `SIZE ${st.messageSizeLimit}` : "SIZE");
  if (!st.disableVrfy) add("VRFY");
  if (!st.standAlone) add("ETRN");
  if (st.tlsLevel !== "none" && !s.tls && s.transport.startTls) add("STARTTLS");
  const mechs = authMechanisms(s);
  if (mechs.length) {
    add("AUTH", `AUTH ${mechs.join(" ")}`);
    if (st.brokenSaslAuthClients && s.announced("auth")) out.push(`AUTH=${mechs.join(" ")}`);
  }
  add("ENHANCEDSTATUSCODES");
  add("8BITMIME");
  add("DSN");
  if (st.smtputf8) add("SMTPUTF8");
  add("CHUNKING");
  return out;
}

/** Mechanisms to offer now: none without SASL, before TLS with smtpd_tls_auth_only, or once authenticated. */
function authMechanisms(s: SmtpdSession): string[] {
  const st = s.settings;
  if (!st.saslEnabled || !s.services.sasl || st.standAlone) return [];
  if (st.tlsAuthOnly && !s.tls) return [];
  return s.services.sasl.mechanisms(s.tls !== undefined);
}

function hello(esmtp: boolean): CommandRow {
  const verb = esmtp ? "EHLO" : "HELO";
  return {
    name: verb,
    stat: verb.toLowerCase(),
    last: true,
    beforeTls: true,
    junk: true,
    check: (_s, arg) => (arg === "" ? reply(501, undefined, `Syntax: ${verb} hostname`) : undefined),
    async proceed(s, arg) {
      const name = heloName(arg, s.settings.smtputf8);
      const result = await s.services.policy.helo(s, name);
      if (result.reject) {
        const saved = s.helo;
        s.helo = name;
        s.logReject(verb, result.reject, false);
        s.helo = saved;
        await s.send(result.reject);
        return "continue";
      }
      const milter = (await s.services.milters?.helo(s, name))?.reject;
      if (milter) {
        s.logReject(verb, milter, false, "milter-reject");
        await s.send(milter);
        return milter.code === 421 ? "close" : "continue";
      }
      s.resetTransaction();
      s.bdatError = false;
      s.helo = name;
      s.esmtp = esmtp;
      if (!esmtp) await s.send(reply(250, undefined, s.settings.myhostname));
      else await s.send(reply(250, undefined, s.settings.myhostname, ...ehloKeywords(s)));
      return "continue";
    },
  };
}

function parseMailParams(s: SmtpdSession, rest: string): MailParams | SmtpdReply {
  const params: MailParams = {};
  const seen = new Set<string>();
  for (const p of splitParams(rest)) {
    const unsupported = reply(555, "5.5.4", `Unsupported option: ${printable(p.word)}`);
    const dup = seen.has(p.key);
    seen.add(p.key);
    switch (p.key) {
      case "SIZE":
        if (p.value === undefined || !/^\d+$/.test(p.value) || dup) return reply(501, "5.5.4", "Bad message size syntax");
        if (Number(p.value) > MAX_SIZE) return reply(552, "5.3.4", "Message size exceeds file system imposed limit");
        params.size = Number(p.value);
        break;
      case "BODY": {
        const v = p.value?.toUpperCase();
        if ((v !== "7BIT" && v !== "8BITMIME") || !s.announced("8bitmime")) return unsupported;
        params.body = v;
        break;
      }
      case "SMTPUTF8":
        if (p.value !== undefined || !s.settings.smtputf8 || !s.announced("smtputf8")) return unsupported;
        params.smtputf8 = true;
        break;
      case "AUTH": {
        // accepted (and ignored unless the client authenticated) even without SASL, as Postfix does; kept as
        // sent, xtext and all, only made printable (Postfix's smtpd_sasl_mail_opt), for policy and milters
        if (p.value === undefined) return unsupported;
        if (dup) return reply(503, "5.5.4", "Error: multiple AUTH= options");
        params.auth = printable(p.value, s.settings.smtputf8);
        break;
      }
      case "ENVID": {
        if (!s.announced("dsn")) return unsupported;
        const v = p.value === undefined ? undefined : decodeXtext(p.value);
        if (v === undefined || !validEnvid(v) || dup) return reply(501, "5.5.4", "Bad ENVID parameter syntax");
        params.envid = v;
        break;
      }
      case "RET": {
        if (!s.announced("dsn")) return unsupported;
        const v = p.value?.toUpperCase();
        if ((v !== "FULL" && v !== "HDRS") || dup) return reply(501, "5.5.4", "Bad RET parameter syntax");
        params.ret = v;
        break;
      }
      default:
        return unsupported;
    }
  }
  return params;
}

const MAIL: CommandRow = {
  name: "MAIL",
  stat: "mail",
  last: false,
  beforeTls: false,
  junk: false,
  check(s, arg) {
    if (s.settings.heloRequired && s.helo === undefined) return reply(503, "5.5.1", "Error: send HELO/EHLO first");
    if (s.bdatError || s.tx?.bdat) return reply(503, "5.5.1", "Error: MAIL after BDAT");
    if (s.tx) return reply(503, "5.5.1", "Error: nested MAIL command");
    if (!/^FROM:/i.test(arg)) return reply(501, "5.5.4", "Syntax: MAIL FROM:<address>");
    return undefined;
  },
  async proceed(s, arg) {
    const path = parsePath(arg.slice(5), { strict: s.settings.strictRfc821, allowEmpty: true });
    if (path === "syntax") {
      await s.send(reply(501, "5.5.4", "Syntax: MAIL FROM:<address>"));
      return "continue";
    }
    if (path === "address") {
      s.services.log.warn(`Illegal address syntax from ${s.namaddr} in MAIL command: ${printable(arg.slice(5).trim())}`);
      await s.send(reply(501, "5.1.7", "Bad sender address syntax"));
      return "continue";
    }
    const params = parseMailParams(s, path.rest);
    if ("code" in params) {
      await s.send(params);
      return "continue";
    }
    const limit = s.settings.messageSizeLimit;
    if (params.size !== undefined && limit > 0 && params.size > limit) {
      await s.send(reply(552, "5.3.4", "Message size exceeds fixed limit"));
      return "continue";
    }
    if (path.eightBit && !params.smtputf8 && s.settings.strictSmtputf8) {
      await s.send(UNICODE_NEEDS_SMTPUTF8);
      return "continue";
    }
    const space = await s.services.sink.checkSpace(params.size ?? 0);
    if (space) {
      await s.send(space);
      return "continue";
    }
    s.tx = { sender: path.address, senderWritten: path.written, params, recipients: [], actions: [] };
    const result = await s.services.policy.mail(s, path.address);
    if (result.reject) {
      s.logReject("MAIL", result.reject, false);
      s.resetTransaction();
      await s.send(result.reject);
      return "continue";
    }
    s.tx.actions.push(...(result.actions ?? []));
    const milter = await s.services.milters?.mail(s, path.address, splitParams(path.rest).map((p) => p.word));
    if (milter?.reject) {
      s.logReject("MAIL", milter.reject, false, "milter-reject");
      s.resetTransaction();
      await s.send(milter.reject);
      return milter.reject.code === 421 ? "close" : "continue";
    }
    s.tx?.actions.push(...(milter?.actions ?? []));
    await s.send(reply(250, "2.1.0", "Ok"));
    return "continue";
  },
};

const RCPT: CommandRow = {
  name: "RCPT",
  stat: "rcpt",
  last: false,
  beforeTls: false,
  junk: false,
  check(s, arg) {
    if (!s.tx) return reply(503, "5.5.1", "Error: need MAIL command");
    if (s.tx.bdat) return reply(503, "5.5.1", "Error: RCPT after BDAT");
    if (!/^TO:/i.test(arg)) return reply(501, "5.5.4", "Syntax: RCPT TO:<address>");
    return undefined;
  },
  async proceed(s, arg) {
    const tx = s.tx!;
    const path = parsePath(arg.slice(3), { strict: s.settings.strictRfc821, allowEmpty: false });
    if (path === "syntax") {
      await s.send(reply(501, "5.5.4", "Syntax: RCPT TO:<address>"));
      return "continue";
    }
    if (path === "address") {
      s.services.log.warn(`Illegal address syntax from ${s.namaddr} in RCPT command: ${printable(arg.slice(3).trim())}`);
      await s.send(reply(501, "5.1.3", "Bad recipient address syntax"));
      return "continue";
    }
    s.lastRecipient = path.written;
    if (tx.recipients.length >= s.settings.recipientLimit) {
      if (s.overshoot++ >= s.settings.recipientOvershootLimit) s.errorCount++;
      await s.send(reply(452, "4.5.3", "Error: too many recipients"));
      return "continue";
    }
    const rcpt: AcceptedRecipient = { address: path.address, written: path.written };
    const seen = new Set<string>();
    for (const p of splitParams(path.rest)) {
      const dup = seen.has(p.key);
      seen.add(p.key);
      if ((p.key === "NOTIFY" || p.key === "ORCPT") && !s.announced("dsn")) {
        await s.send(reply(555, "5.5.4", `Unsupported option: ${printable(p.word)}`));
        return "continue";
      }
      if (p.key === "NOTIFY") {
        const words = p.value === undefined ? undefined : parseNotify(p.value);
        if (!words || dup) {
          await s.send(reply(501, "5.5.4", "Error: Bad NOTIFY parameter syntax"));
          return "continue";
        }
        rcpt.notify = words;
      } else if (p.key === "ORCPT") {
        const orcpt = p.value === undefined ? undefined : parseOrcpt(p.value);
        if (!orcpt || dup) {
          await s.send(reply(501, "5.5.4", "Error: Bad ORCPT parameter syntax"));
          return "continue";
        }
        rcpt.orcpt = orcpt;
      } else {
        await s.send(reply(555, "5.5.4", `Unsupported option: ${printable(p.word)}`));
        return "continue";
      }
    }
    if (path.eightBit && !tx.params.smtputf8 && s.settings.strictSmtputf8) {
      await s.send(UNICODE_NEEDS_SMTPUTF8);
      return "continue";
    }
    const result = await s.services.policy.rcpt(s, rcpt);
    if (result.reject) {
      s.logReject("RCPT", result.reject);
      await s.send(result.reject);
      return "continue";
    }
    tx.actions.push(...(result.actions ?? []));
    const milter = await s.services.milters?.rcpt(s, rcpt, splitParams(path.rest).map((p) => p.word));
    if (milter?.reject) {
      s.logReject("RCPT", milter.reject, true, "milter-reject");
      await s.send(milter.reject);
      return milter.reject.code === 421 ? "close" : "continue";
    }
    tx.actions.push(...(milter?.actions ?? []));
    tx.recipients.push(rcpt);
    await s.send(reply(250, "2.1.5", "Ok"));
    return "continue";
  },
};

/** The end of DATA or BDAT LAST: end-of-data restrictions, then the queue. */
async function finishMessage(s: SmtpdSession, content: Buffer | undefined, size: number, bareLf: boolean, okText: (id: string) => string): Promise<"continue" | "close"> {
  const tx = s.tx!;
  s.stage = "END-OF-MESSAGE";
  try {
    if (bareLf && s.settings.bareNewline === "reject") {
      const r = reply(s.settings.bareNewlineRejectCode, "5.5.2", "Error: bare <LF> received");
      s.logReject("END-OF-MESSAGE", r);
      await s.send(r);
      return "continue";
    }
    if (content === undefined) {
      // Postfix's reply for a message that grew past message_size_limit (SIZE= at MAIL FROM has its own)
      const r = reply(552, "5.3.4", "Error: message file too big");
      s.logReject("END-OF-MESSAGE", r);
      await s.send(r);
      return "continue";
    }
    const eod = await s.services.policy.endOfData(s, size, content);
    if (eod.reject) {
      s.logReject("END-OF-MESSAGE", eod.reject);
      await s.send(eod.reject);
      return "continue";
    }
    let sender = tx.sender;
    let mailParams = tx.params;
    let recipients = tx.recipients;
    let milterActions: MessageAction[] = [];
    const milter = await s.services.milters?.message(s, content);
    if (milter) {
      if (milter.reject) {
        s.logReject("END-OF-MESSAGE", milter.reject, true, "milter-reject");
        await s.send(milter.reject);
        return milter.reject.code === 421 ? "close" : "continue";
      }
      milterActions = milter.actions ?? [];
      if (milter.content) content = milter.content;
      if (milter.sender !== undefined) sender = milter.sender;
      if (milter.senderDsn) mailParams = { ...mailParams, ...milter.senderDsn };
      recipients = milterRecipients(recipients, milter.addRecipients ?? [], milter.deleteRecipients ?? []);
      if (recipients.length === 0) {
        // every recipient deleted: nothing to deliver, as Postfix's cleanup discards such a message
        milterActions.push({ kind: "discard", reason: "milter deleted all recipients", stage: "END-OF-MESSAGE", subject: "", label: "milter-discard" });
        recipients = tx.recipients;
      }
    }
    // restriction results kept for the session come back with every recipient: each action once
    const actions = [...new Map([...tx.actions, ...(eod.actions ?? []), ...milterActions].map((a) => [JSON.stringify(a), a])).values()];
    const only = recipients.length === 1 ? recipients[0]!.written : undefined;
    const arrival = new Date();
    const result = await s.services.sink.commit({
      session: s,
      sender,
      mailParams,
      recipients,
      content,
      actions,
      arrival,
      received: (queueId) =>
        receivedHeader({
          helo: s.helo,
          client: s.client,
          myhostname: s.settings.myhostname,
          mailName: s.settings.mailName,
          esmtp: s.esmtp,
          smtputf8: tx.params.smtputf8 === true,
          tls: s.tls,
          saslUser: s.sasl?.username,
          showTls: s.settings.tlsReceivedHeader,
          showSaslUser: s.settings.saslAuthenticatedHeader,
          singleRecipient: only === undefined ? undefined : printable(only, tx.params.smtputf8 === true),
          queueId,
          date: arrival,
        }),
    });
    if ("reject" in result) {
      await s.send(result.reject);
      return "continue";
    }
    s.delivered();
    await s.send(reply(250, "2.0.0", okText(result.queueId)));
    return "continue";
  } finally {
    s.resetTransaction();
  }
}

/** The recipients after a milter's SMFIR_ADDRCPT(_PAR) and SMFIR_DELRCPT (addresses compared without regard to case). */
function milterRecipients(current: readonly AcceptedRecipient[], add: readonly Omit<AcceptedRecipient, "written">[], remove: readonly string[]): AcceptedRecipient[] {
  const gone = new Set(remove.map((r) => r.toLowerCase()));
  const kept = current.filter((r) => !gone.has(r.address.toLowerCase()) && !gone.has(r.written.toLowerCase()));
  return [...kept, ...add.map((r) => ({ ...r, written: r.address }))];
}

const DATA: CommandRow = {
  name: "DATA",
  stat: "data",
  last: true,
  beforeTls: false,
  junk: false,
  check(s, arg) {
    if (!s.tx) return reply(503, "5.5.1", "Error: need RCPT command");
    if (s.tx.bdat) return reply(503, "5.5.1", "Error: DATA after BDAT");
    if (s.tx.recipients.length > 0 && arg !== "") return reply(501, "5.5.4", "Syntax: DATA");
    return undefined;
  },
  async proceed(s, _arg, line) {
    if (s.tx!.recipients.length === 0) {
      const r = reply(554, "5.5.1", "Error: no valid recipients");
      s.logReject("DATA", r);
      await s.send(r);
      return "continue";
    }
    const result = await s.services.policy.data(s);
    if (result.reject) {
      s.logReject("DATA", result.reject);
      await s.send(result.reject);
      return "continue";
    }
    s.tx!.actions.push(...(result.actions ?? []));
    const milter = await s.services.milters?.data(s);
    if (milter?.reject) {
      s.logReject("DATA", milter.reject, true, "milter-reject");
      await s.send(milter.reject);
      return milter.reject.code === 421 ? "close" : "continue";
    }
    s.tx!.actions.push(...(milter?.actions ?? []));
    await s.send(reply(354, undefined, "End data with <CR><LF>.<CR><LF>"));
    s.input.received = 0;
    s.contentDeadline();
    const data = await s.input.readData(s.settings.bareNewline, s.settings.messageSizeLimit, !line.bareLf);
    return finishMessage(s, data.content, data.size, data.bareLf, (id) => `Ok: queued as ${id}`);
  },
};

/** BDAT's CRLF content turned into LF line ends in place; says whether a bare LF was there. */
function chunkContent(all: Buffer): { content: Buffer; bareLf: boolean } {
  let bareLf = false;
  let w = 0;
  let start = 0;
  for (let i = all.indexOf(10); i >= 0; i = all.indexOf(10, i + 1)) {
    if (i > 0 && all[i - 1] === 13) {
      w += all.copy(all, w, start, i - 1);
      start = i;
    } else bareLf = true;
  }
  w += all.copy(all, w, start);
  return { content: all.subarray(0, w), bareLf };
}

const BDAT: CommandRow = {
  name: "BDAT",
  stat: "bdat",
  last: false,
  beforeTls: false,
  junk: false,
  check: ok,
  async proceed(s, arg) {
    const m = /^(\d{1,15})(?:[ \t]+(LAST))?$/i.exec(arg);
    if (!m) {
      await s.send(reply(521, "5.5.4", "Syntax: BDAT count [LAST]"));
      return "close";
    }
    const count = Number(m[1]);
    const last = m[2] !== undefined;
    s.contentDeadline();
    const discard = async (r: SmtpdReply) => {
      await s.input.readBytes(count, () => {});
      if (last) {
        s.bdatError = false;
        s.resetTransaction();
      } else s.bdatError = true;
      await s.send(r);
      return "continue" as const;
    };
    const tx = s.tx;
    if (s.bdatError) return discard(reply(551, "5.0.0", `Discarded ${count} bytes after earlier error`));
    if (!tx) return discard(reply(503, "5.5.1", "Error: need RCPT command"));
    if (tx.recipients.length === 0) {
      const r = reply(554, "5.5.1", "Error: no valid recipients");
      s.logReject("BDAT", r);
      return discard(r);
    }
    if (count === 0 && !last) return discard(reply(551, "5.7.1", "Null BDAT request"));
    if (!tx.bdat) {
      const result = await s.services.policy.data(s);
      if (result.reject) {
        s.logReject("BDAT", result.reject);
        return discard(result.reject);
      }
      tx.actions.push(...(result.actions ?? []));
      const milter = await s.services.milters?.data(s);
      if (milter?.reject) {
        s.logReject("BDAT", milter.reject, true, "milter-reject");
        return discard(milter.reject);
      }
      tx.actions.push(...(milter?.actions ?? []));
      tx.bdat = { content: new GrowingBuffer(), size: 0, tooBig: false, failed: false };
    }
    const bdat = tx.bdat;
    const limit = s.settings.messageSizeLimit;
    await s.input.readBytes(count, (bytes) => {
      bdat.size += bytes.length;
      if (limit > 0 && bdat.size > limit && !bdat.tooBig) {
        bdat.tooBig = true;
        bdat.content.clear();
      }
      if (!bdat.tooBig) bdat.content.append(bytes);
    });
    if (!last) {
      await s.send(reply(250, "2.0.0", `Ok: ${count} bytes`));
      return "continue";
    }
    const total = bdat.size;
    const { content, bareLf } = chunkContent(bdat.content.bytes());
    return finishMessage(s, bdat.tooBig ? undefined : content, content.length, bareLf, (id) => `Ok: ${total} bytes queued as ${id}`);
  },
};

const RSET: CommandRow = {
  name: "RSET",
  stat: "rset",
  last: false,
  beforeTls: false,
  junk: true,
  check: (_s, arg) => (arg !== "" ? reply(501, "5.5.4", "Syntax: RSET") : undefined),
  async proceed(s) {
    s.resetTransaction();
    s.bdatError = false;
    await s.send(reply(250, "2.0.0", "Ok"));
    return "continue";
  },
};

const NOOP: CommandRow = {
  name: "NOOP",
  stat: "noop",
  last: true,
  beforeTls: true,
  junk: true,
  check: ok,
  async proceed(s) {
    await s.send(reply(250, "2.0.0", "Ok"));
    return "continue";
  },
};

const QUIT: CommandRow = {
  name: "QUIT",
  stat: "quit",
  last: false,
  beforeTls: true,
  junk: false,
  check: ok,
  async proceed(s) {
    await s.send(reply(221, "2.0.0", "Bye"));
    return "close";
  },
};

const HELP: CommandRow = {
  name: "HELP",
  stat: "help",
  last: true,
  beforeTls: true,
  junk: true,
  check: ok,
  async proceed(s) {
    const commands = ["HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", "VRFY", "ETRN", "STARTTLS", "AUTH"];
    await s.send(reply(214, "2.0.0", `Commands: ${commands.join(" ")}`));
    return "continue";
  },
};

const VRFY: CommandRow = {
  name: "VRFY",
  stat: "vrfy",
  last: true,
  beforeTls: false,
  junk: true,
  check(s, arg) {
    if (s.settings.disableVrfy || !s.announced("vrfy")) return reply(502, "5.5.1", "VRFY command is disabled");
    if (arg === "") return reply(501, "5.5.4", "Syntax: VRFY address [SMTPUTF8]");
    return undefined;
  },
  async proceed(s, arg) {
    // an optional SMTPUTF8 at the end; the rest is one address (Postfix answers "a b" as bad syntax)
    const text = arg.replace(/[ \t]+SMTPUTF8$/i, "");
    const smtputf8 = text !== arg && s.settings.smtputf8 && s.announced("smtputf8");
    const path = /^<.*>$/.test(text) || !/[ \t]/.test(text) ? parsePath(text, { strict: false, allowEmpty: false }) : "address";
    if (typeof path === "string" || path.rest !== "") {
      await s.send(reply(501, "5.1.3", "Bad recipient address syntax"));
      return "continue";
    }
    if (path.eightBit && !smtputf8 && s.settings.strictSmtputf8) {
      await s.send(UNICODE_NEEDS_SMTPUTF8);
      return "continue";
    }
    const result = await s.services.policy.vrfy(s, path.address);
    if (result.reject) {
      const saved = s.lastRecipient;
      s.lastRecipient = path.written;
      s.logReject("VRFY", result.reject);
      s.lastRecipient = saved;
      await s.send(result.reject);
      return "continue";
    }
    await s.send(reply(252, "2.0.0", printable(text)));
    return "continue";
  },
};

const ETRN: CommandRow = {
  name: "ETRN",
  stat: "etrn",
  last: false,
  beforeTls: false,
  junk: true,
  check(s, arg) {
    if (arg === "") return reply(500, undefined, "Syntax: ETRN domain");
    if (s.settings.heloRequired && s.helo === undefined) return reply(503, undefined, "Error: send HELO/EHLO first");
    if (s.tx) return reply(503, undefined, "Error: MAIL transaction in progress");
    if (!/^[@#]?[A-Za-z0-9._-]+$/.test(arg)) return reply(501, undefined, "Error: invalid parameter syntax");
    return undefined;
  },
  async proceed(s, arg) {
    const domain = arg.replace(/^@/, "");
    const result = await s.services.policy.etrn(s, domain);
    if (result.reject) {
      s.logReject("ETRN", result.reject, false);
      await s.send(result.reject);
      return "continue";
    }
    if (arg.startsWith("#") || !s.services.etrn) {
      await s.send(reply(458, undefined, "Unable to queue messages"));
      return "continue";
    }
    await s.send(await s.services.etrn(domain));
    return "continue";
  },
};

const STARTTLS: CommandRow = {
  name: "STARTTLS",
  stat: "starttls",
  last: true,
  beforeTls: true,
  junk: false,
  check(s, arg) {
    if (arg !== "") return reply(501, "5.5.4", "Syntax: STARTTLS");
    if (s.tls) return reply(554, "5.5.1", "Error: TLS already active");
    if (s.settings.tlsLevel === "none" || !s.transport.startTls || !s.announced("starttls")) return reply(502, "5.5.1", "Error: command not implemented");
    return undefined;
  },
  async proceed(s) {
    await s.send(reply(220, "2.0.0", "Ready to start TLS"));
    await s.transport.flushed();
    let info;
    try {
      info = await s.upgradeTls();
    } catch (err) {
      s.services.log.warn(`TLS handshake failed with ${s.namaddr}: ${(err as Error).message}`);
      return "close";
    }
    if (s.settings.tlsLogLevel >= 1) {
      s.services.log.info(`Anonymous TLS connection established from ${s.namaddr}: ${info.protocol} with cipher ${info.cipher}${info.bits ? ` (${info.bits}/${info.bits} bits)` : ""}`);
    }
    s.resetAfterTls();
    return "continue";
  },
};

/** base64 text as SASL responses are: the client's text, checked before any backend sees it. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const AUTH: CommandRow = {
  name: "AUTH",
  stat: "auth",
  last: true,
  beforeTls: false,
  junk: false,
  check(s, arg) {
    if (!s.settings.saslEnabled || !s.services.sasl || s.settings.standAlone) return reply(503, "5.5.1", "Error: authentication not enabled");
    if (s.settings.tlsAuthOnly && !s.tls) return reply(538, "5.7.11", "Encryption required for requested authentication mechanism");
    if (s.sasl) return reply(503, "5.5.1", "Error: already authenticated");
    const words = arg.split(/[ \t]+/).filter(Boolean);
    if (words.length < 1 || words.length > 2) return reply(501, "5.5.4", "Syntax: AUTH mechanism");
    if (s.tx) return reply(503, "5.5.1", "Error: MAIL transaction in progress");
    return undefined;
  },
  async proceed(s, arg) {
    const [mechWord, initial] = arg.split(/[ \t]+/).filter(Boolean) as [string, string | undefined];
    const mechanism = mechWord.toUpperCase();
    const limited = await s.services.policy.auth?.(s);
    if (limited?.reject) {
      await s.send(limited.reject);
      return "continue";
    }
    const fail = async (reason: string) => {
      s.services.log.warn(`${s.namaddr}: SASL ${printable(mechanism)} authentication failed: ${reason}`);
      await s.send(reply(535, "5.7.8", `Error: authentication failed: ${reason}`));
    };
    const exchange = authMechanisms(s).includes(mechanism) ? s.services.sasl!.start(mechanism, s) : undefined;
    if (!exchange) {
      await fail("Invalid authentication mechanism");
      return "continue";
    }
    let response: string | undefined = initial === undefined ? undefined : initial === "=" ? "" : initial;
    for (;;) {
      if (response !== undefined && response !== "" && !BASE64.test(response)) {
        await s.send(reply(501, "5.5.2", "Cannot decode response"));
        return "continue";
      }
      const step = await exchange.step(response);
      if (step.kind === "success") {
        s.sasl = { method: mechanism, username: step.username };
        await s.send(reply(235, "2.7.0", "Authentication successful"));
        return "continue";
      }
      if (step.kind === "failure") {
        await fail(step.reason);
        return "continue";
      }
      await s.send(reply(334, undefined, step.challenge));
      const line = await s.input.readLine(s.settings.saslResponseLimit);
      if (line.truncated) {
        await s.send(reply(500, "5.5.6", "Authentication exchange line is too long"));
        return "continue";
      }
      if (line.text === "*") {
        await s.send(reply(501, "5.7.0", "Authentication aborted"));
        return "continue";
      }
      response = line.text;
    }
  },
};

export const COMMANDS: readonly CommandRow[] = [hello(false), hello(true), STARTTLS, AUTH, MAIL, RCPT, DATA, BDAT, RSET, NOOP, VRFY, ETRN, HELP, QUIT];
