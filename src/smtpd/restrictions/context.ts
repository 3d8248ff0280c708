/**
 * What a restriction sees when it runs: the service's configuration, the
 * session (client, HELO, sender, recipients, TLS, SASL), the recipient or
 * domain being checked, the client's DNS names, the resolver, and the
 * evaluation's flags (defer_if_permit, defer_if_reject, warn_if_reject) and
 * message actions. Also the reply texts Postfix builds for each stage:
 * `<name>: Client host rejected: text` and friends.
 *
 * Runs in smtpd as mail_owner; everything about the session is untrusted.
 */
import type { Config } from "../../global/config/config.ts";
import type { ClientNames, DnsQuerier } from "../../global/dns/index.ts";
import { reply, type SmtpdReply } from "../protocol/reply.ts";
import { printable } from "../../util/printable.ts";
import type { AcceptedRecipient, MessageAction, SessionView } from "../protocol/types.ts";
import type { HostMatcher } from "./host-list.ts";

/** Which list is running: decides the subject of generic replies. */
export type Stage = "client" | "helo" | "sender" | "relay" | "recipient" | "data" | "end_of_data" | "etrn";

/** Whose data a reply is about. */
export type Subject = "client" | "helo" | "sender" | "recipient" | "data" | "end_of_data" | "etrn";

export type Decision = { kind: "dunno" } | { kind: "permit" } | { kind: "reject"; reply: SmtpdReply };

export const DUNNO: Decision = { kind: "dunno" };
export const PERMIT: Decision = { kind: "permit" };

export interface CheckEnv {
  config: Config;
  dns: DnsQuerier;
  mynetworks: HostMatcher;
  /** The client's DNS names, looked up at connect. */
  names: ClientNames;
  /** Logs a warning line (unknown restriction, table trouble). */
  warn(text: string): void;
  info(text: string): void;
}

export class CheckContext {
  deferIfPermit: SmtpdReply | undefined;
  deferIfReject = false;
  warnIfReject = false;
  readonly actions: MessageAction[] = [];
  /** Nested restriction classes, to stop loops. */
  depth = 0;
  /** Policy default actions being evaluated: one that asks a policy server again gets the built-in default. */
  policyDefaultDepth = 0;
  /** The message's size at END-OF-MESSAGE (the policy request's size attribute). */
  messageSize: number | undefined;

  constructor(
    readonly env: CheckEnv,
    readonly session: SessionView,
    /** The SMTP command being answered: CONNECT, EHLO, MAIL, RCPT, DATA, END-OF-MESSAGE, ETRN, VRFY. */
    readonly command: string,
    public stage: Stage,
    /** The recipient being checked (relay, recipient stages). */
    readonly recipient: AcceptedRecipient | undefined,
    /** The ETRN domain. */
    readonly etrnDomain?: string,
  ) {}

  get config(): Config {
    return this.env.config;
  }

  /** The stage's own subject. */
  // biome-ignore lint/suspicious/useGetterReturn: the switch is exhaustive (tsc checks it)
  get subject(): Subject {
    switch (this.stage) {
      case "client":
      case "helo":
      case "sender":
      case "data":
      case "end_of_data":
      case "etrn":
        return this.stage;
      case "relay":
      case "recipient":
        return "recipient";
    }
  }

  /** `<name>` and "Class" for a reply about `subject`. */
  subjectText(subject: Subject): { name: string; what: string } {
    const s = this.session;
    switch (subject) {
      case "client":
        return { name: `${s.client.name}[${s.client.address}]`, what: "Client host" };
      case "helo":
        return { name: s.helo ?? "", what: "Helo command" };
      case "sender":
        return { name: printable(s.sender ?? ""), what: "Sender address" };
      case "recipient":
        return { name: printable(this.recipient?.address ?? ""), what: "Recipient address" };
      case "data":
        return { name: "DATA", what: "Data command" };
      case "end_of_data":
        return { name: "END-OF-MESSAGE", what: "End-of-data" };
      case "etrn":
        return { name: printable(this.etrnDomain ?? ""), what: "Etrn command" };
    }
  }

  /** "554 5.7.1 <name>: Class rejected: text". */
  rejectReply(code: number, dsn: string, text: string, subject: Subject = this.subject): SmtpdReply {
    const { name, what } = this.subjectText(subject);
    const d = `${String(code)[0]}${dsn.slice(1)}`;
    // Postfix's smtpd_check_reject: one line of at most 510 characters, controls made spaces; the text
    // may come from a policy server or a table, and a CR in it must not end the reply line
    const line = printable(`<${name}>: ${what} rejected: ${text}`, false, " ").slice(0, Math.max(0, 510 - `${code} ${d} `.length));
    return reply(code, d, line);
  }

  reject(code: number, dsn: string, text: string, subject?: Subject): Decision {
    return { kind: "reject", reply: this.rejectReply(code, dsn, text, subject) };
  }

  /** Postfix's reject_tempfail_action and friends: what a restriction does when it cannot decide now. */
  tempfail(actionParam: string, r: SmtpdReply): Decision {
    const action = this.config.str(actionParam).toLowerCase();
    switch (action) {
      case "defer":
        return { kind: "reject", reply: r };
      case "defer_if_reject":
        this.deferIfReject = true;
        return DUNNO;
      default:
        this.deferIfPermit ??= r;
        return DUNNO;
    }
  }
}
