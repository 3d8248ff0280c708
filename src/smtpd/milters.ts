/**
 * smtpd_milters for one SMTP session: the milter chain (src/global/milter)
 * driven by the session's steps, with the macros the session knows, and
 * the milters' verdicts turned into SMTP replies and message actions in
 * Postfix's words:
 *
 * - a reject, tempfail or reply code refuses the step;
 * - SMFIR_SHUTDOWN gets "421 4.7.0 Server closing connection";
 * - discard and quarantine become DISCARD and HOLD actions on the message
 *   (logged "milter-discard", "milter-hold"), quarantine with its reason;
 * - at the end of the message the header, body and envelope changes come
 *   back to the engine, which queues the changed message.
 *
 * The milters see the message as received, without the server's own
 * Received: header (as Postfix hides it). Not sent: the `i` macro (the
 * queue ID exists only once the queue file is written).
 *
 * Runs in smtpd as mail_owner; one milter connection per session and milter.
 */
import type { Config } from "../global/config/config.ts";
import { receiveOverrides } from "../global/config/receive-override.ts";
import { MilterChain } from "../global/milter/chain.ts";
import type { MilterVerdict } from "../global/milter/client.ts";
import { macroDefaults, stageMacrosFromConfig, type MacroLookup } from "../global/milter/macros.ts";
import { MAX_PACKET } from "../global/milter/protocol.ts";
import { milterSpecs } from "../global/milter/spec.ts";
import { parseReplyText, reply, type SmtpdReply } from "./protocol/reply.ts";
import { resolveClientAddress } from "./restrictions/recipient-checks.ts";
import type { AcceptedRecipient, MessageAction, MilterMessageStep, MilterStep, SessionMilters, SessionView } from "./protocol/types.ts";


/** Whether the service runs milters: smtpd_milters set and not turned off by receive_override_options = no_milters. */
export function milterListFor(config: Config): string | undefined {
  if (config.str("smtpd_milters").trim() === "") return undefined;
  if (receiveOverrides(config).noMilters) return undefined;
  return "smtpd_milters";
}

export interface SessionEndpoint {
  /** The server's address and port the client connected to ({daemon_addr}, {daemon_port}). */
  localAddress: string;
  localPort: number;
}

/** A milter's reply text ("550 5.7.1 text", lines joined by CRLF) as a server reply. */
function smtpReply(text: string): SmtpdReply {
  const lines = text.split("\r\n");
  const first = parseReplyText(lines[0]!) ?? { code: 451, dsn: "4.3.5", text: "Server configuration problem - try again later" };
  const rest = lines.slice(1).map((l) => {
    const p = parseReplyText(l.replace(/^(\d{3})-/, "$1 "));
    return p ? p.text : l.slice(4);
  });
  return reply(first.code, first.dsn, first.text, ...rest);
}

export class SmtpdMilters implements SessionMilters {
  #chain: MilterChain;
  #config: Config;
  #endpoint: SessionEndpoint;
  #session: SessionView | undefined;
  /** A quarantine that came before any transaction (connect, HELO): it holds every message of the session. */
  #sessionHold: string | undefined;

  constructor(config: Config, listParam: string, endpoint: SessionEndpoint, warn: (text: string) => void) {
    this.#config = config;
    this.#endpoint = endpoint;
    const limit = config.int("message_size_limit");
    this.#chain = new MilterChain(milterSpecs(config, listParam), {
      macros: stageMacrosFromConfig(config),
      defaults: macroDefaults(config),
      lookup: (name) => this.#macro(name),
      warn,
      // a reply may carry a whole replacement body chunk: bounded by the message size limit, and by Postfix's limit
      packetLimit: Math.min(MAX_PACKET, Math.max(limit > 0 ? limit + 65536 : MAX_PACKET, 1 << 20)),
      limits: { lineLengthLimit: config.int("line_length_limit"), headerSizeLimit: config.int("header_size_limit") },
    });
  }

  #macro: MacroLookup = (name) => {
    const s = this.#session;
    const c = this.#config;
    switch (name) {
      case "j":
        return c.str("myhostname");
      case "v":
        return c.str("milter_macro_v");
      case "daemon_name":
        return c.str("milter_macro_daemon_name");
      case "daemon_addr":
        return this.#endpoint.localAddress || undefined;
      case "daemon_port":
        return this.#endpoint.localPort ? String(this.#endpoint.localPort) : undefined;
    }
    if (!s) return undefined;
    switch (name) {
      case "_":
        return `${s.client.reverseName} [${s.client.address}]${s.client.reverseName.toLowerCase() !== s.client.name.toLowerCase() ? " (may be forged)" : ""}`;
      case "client_addr":
        return s.client.address;
      case "client_port":
        return String(s.client.port);
      case "client_name":
        return s.client.name;
      case "client_ptr":
        return s.client.reverseName;
      case "tls_version":
        return s.tls?.protocol;
      case "cipher":
        return s.tls?.cipher;
      case "cipher_bits":
        return s.tls?.bits === undefined ? undefined : String(s.tls.bits);
      case "auth_type":
        return s.sasl?.method;
      case "auth_authen":
        return s.sasl?.username;
      case "auth_author":
        return s.sasl && s.mailParams?.auth && s.mailParams.auth !== "<>" ? s.mailParams.auth : undefined;
      case "mail_addr":
        return s.sender;
      default:
        return undefined;
    }
  };

  /** The verdict as the engine's step; logs as Postfix's check_milter_reply. */
  #step(v: MilterVerdict | undefined, stage: string, subject: string): MilterStep {
    if (!v) return {};
    switch (v.kind) {
      case "reply":
        return { reject: smtpReply(v.text) };
      case "shutdown":
        return { reject: reply(421, "4.7.0", "Server closing connection") };
      case "discard":
        return { actions: [{ kind: "discard", reason: "milter triggers DISCARD action", stage, subject, label: "milter-discard" }] };
      case "hold":
        return { actions: [this.#hold(v.reason, stage, subject)] };
    }
  }

  #hold(reason: string, stage: string, subject: string): MessageAction {
    return { kind: "hold", reason: reason || "milter triggers HOLD action", stage, subject, label: "milter-hold" };
  }

  /** Quarantines asked for by a milter outside a final verdict (SMFIR_QUARANTINE), once per message. */
  #withHold(step: MilterStep, stage: string, subject: string): MilterStep {
    const reason = this.#chain.hold ?? this.#sessionHold;
    if (reason === undefined || step.reject) return step;
    return { ...step, actions: [...(step.actions ?? []), this.#hold(reason, stage, subject)] };
  }

  async connect(s: SessionView): Promise<MilterStep> {
    this.#session = s;
    const v = await this.#chain.connect(s.client.name, s.client.address, s.client.port);
    if (v?.kind === "hold") this.#sessionHold = v.reason;
    const step = this.#step(v, "CONNECT", "");
    if (!step.reject) return {};
    // Postfix's greeting after a milter refused the connection
    const host = this.#config.str("myhostname");
    if (step.reject.code === 421) return { reject: reply(421, undefined, `${host} Service unavailable - try again later`) };
    if (step.reject.code >= 500) return { reject: reply(554, undefined, `${host} ESMTP not accepting connections`) };
    // a 4xx leaves the greeting alone: the milter answers each later command so
    return {};
  }

  async helo(s: SessionView, name: string): Promise<MilterStep> {
    this.#session = s;
    const v = await this.#chain.helo(name);
    if (v?.kind === "hold") this.#sessionHold = v.reason;
    const step = this.#step(v, s.esmtp ? "EHLO" : "HELO", "");
    return step.reject ? { reject: step.reject } : {};
  }

  /** {X_host} and {X_mailer}: where the shared resolver sends the address (nexthop, transport), as Postfix's smtpd_resolve_addr. */
  async #route(prefix: "mail" | "rcpt", address: string): Promise<Record<string, string>> {
    if (address === "") return { [`${prefix}_host`]: "", [`${prefix}_mailer`]: "" };
    try {
      const r = await resolveClientAddress(this.#config, address);
      return { [`${prefix}_host`]: r.nexthop, [`${prefix}_mailer`]: r.transport, ...(prefix === "rcpt" ? { rcpt_addr: r.address } : {}) };
    } catch {
      return {}; // a table that cannot be read: the macros are left out
    }
  }

  async mail(s: SessionView, sender: string, params: string[]): Promise<MilterStep> {
    this.#session = s;
    const macros = { mail_addr: sender, ...(await this.#route("mail", sender)) };
    return this.#withHold(this.#step(await this.#chain.mail([`<${sender}>`, ...params], macros), "MAIL", ""), "MAIL", "");
  }

  async rcpt(s: SessionView, recipient: AcceptedRecipient, params: string[]): Promise<MilterStep> {
    this.#session = s;
    const macros = { rcpt_addr: recipient.address, ...(await this.#route("rcpt", recipient.address)) };
    const v = await this.#chain.rcpt([`<${recipient.written}>`, ...params], macros);
    return this.#step(v, "RCPT", recipient.written);
  }

  async data(s: SessionView): Promise<MilterStep> {
    this.#session = s;
    return this.#step(await this.#chain.data(), "DATA", "");
  }

  async unknown(s: SessionView, line: string): Promise<MilterStep> {
    this.#session = s;
    const step = this.#step(await this.#chain.unknown(line), "UNKNOWN", "");
    return step.reject ? { reject: step.reject } : {};
  }

  async message(s: SessionView, content: Buffer): Promise<MilterMessageStep> {
    this.#session = s;
    const subject = s.recipients.length === 1 ? s.recipients[0]!.written : "";
    const out = await this.#chain.message(content);
    const step = this.#withHold(this.#step(out.verdict, "END-OF-MESSAGE", subject), "END-OF-MESSAGE", subject);
    if (step.reject) return step;
    const result: MilterMessageStep = { ...step };
    if (out.content) result.content = out.content;
    if (out.above.length) result.actions = [...(result.actions ?? []), ...out.above.map((header) => ({ kind: "prepend" as const, header }))];
    if (out.sender !== undefined) result.sender = out.sender;
    if (out.senderDsn.ret !== undefined || out.senderDsn.envid !== undefined) result.senderDsn = out.senderDsn;
    if (out.addRecipients.length) result.addRecipients = out.addRecipients;
    if (out.deleteRecipients.length) result.deleteRecipients = out.deleteRecipients;
    return result;
  }

  abort(): void {
    this.#chain.abort();
  }

  quit(): void {
    this.#chain.quit();
  }
}
