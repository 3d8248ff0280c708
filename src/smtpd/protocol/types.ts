/**
 * What the SMTP protocol engine needs from the process that runs it, as
 * small interfaces: a transport (the socket, or stdin/stdout for sendmail
 * -bs), a policy (the restriction lists, or "accept" in stand-alone mode),
 * a sink that queues an accepted message, and optionally SASL and STARTTLS.
 * The engine itself knows nothing of tables, DNS or the queue directory.
 */
import type { SmtpdReply } from "./reply.ts";
import type { BareNewlineMode } from "./input.ts";
import type { NotifyWord } from "../../global/message/dsn-params.ts";

export interface TlsSummary {
  protocol: string;
  cipher: string;
  /** Symmetric key bits, when known. */
  bits?: number;
  /** The server name the client asked for (SNI). */
  servername?: string;
}

/** The byte stream of one session. */
export interface SessionTransport {
  write(data: string): void;
  /** Resolves once written data has been handed to the kernel. */
  flushed(): Promise<void>;
  /** Closes after pending output. */
  end(): Promise<void>;
  /** Bytes written and not yet handed to the kernel; optional (stdout has no such count). */
  backlog?(): number;
  /** Closes at once, dropping pending output; optional. */
  destroy?(): void;
  /** Sets the handler for input; the engine calls it once. */
  onData(handler: (chunk: Uint8Array) => void): void;
  onClose(handler: () => void): void;
  /** Stop/resume reading input (back-pressure); optional. */
  pause?(paused: boolean): void;
  /** Switches to TLS after "220 Ready to start TLS"; rejects when the handshake fails. */
  startTls?(): Promise<TlsSummary>;
  /** Already TLS when the session starts (implicit TLS, port 465). */
  readonly tls: TlsSummary | undefined;
}

/** Who is on the other end, as the engine logs and reports it. */
export interface ClientIdentity {
  /** "192.0.2.1" or "2001:db8::1". */
  address: string;
  port: number;
  /** The verified host name, or "unknown". */
  name: string;
  /** The name from the PTR record, verified or not, or "unknown". */
  reverseName: string;
  /** Postfix's client_name_status: ok, or why the name is "unknown" (temp: DNS failure, perm: none). */
  nameStatus: "ok" | "temp" | "perm";
}

export interface SessionSettings {
  myhostname: string;
  /** The greeting text after "220 " (smtpd_banner, expanded). */
  banner: string;
  mailName: string;
  messageSizeLimit: number;
  lineLengthLimit: number;
  recipientLimit: number;
  recipientOvershootLimit: number;
  hardErrorLimit: number;
  softErrorLimit: number;
  errorSleepMs: number;
  junkCommandLimit: number;
  timeoutMs: number;
  starttlsTimeoutMs: number;
  /** smtpd_per_request_deadline: timeoutMs limits a whole command (or its content), not each read. */
  requestDeadline: boolean;
  /** smtpd_min_data_rate: with requestDeadline, content bytes per second that earn more time. */
  minDataRate: number;
  heloRequired: boolean;
  disableVrfy: boolean;
  /** Lower-case EHLO keywords not announced. */
  discardEhloKeywords: ReadonlySet<string>;
  bareNewline: BareNewlineMode;
  bareNewlineRejectCode: number;
  forbidUnauthPipelining: boolean;
  /** Upper-case command names that end the session at once (smtpd_forbidden_commands); lines starting with a non-letter too. */
  forbiddenCommands: ReadonlySet<string>;
  strictRfc821: boolean;
  smtputf8: boolean;
  /** strict_smtputf8: a non-ASCII address needs SMTPUTF8 (553 5.6.7 otherwise). */
  strictSmtputf8: boolean;
  /** TLS: none, may (offer), encrypt (require). */
  tlsLevel: "none" | "may" | "encrypt";
  tlsAuthOnly: boolean;
  tlsReceivedHeader: boolean;
  tlsLogLevel: number;
  saslEnabled: boolean;
  saslAuthenticatedHeader: boolean;
  brokenSaslAuthClients: boolean;
  saslResponseLimit: number;
  /** smtpd_reject_footer: appended to 4xx/5xx replies (as a second line). */
  rejectFooter: string;
  /** smtpd_client_port_logging: "name[addr]:port" in log lines. */
  clientPortLogging?: boolean;
  /** sendmail -bs: the session reads stdin; no ETRN, no AUTH, no TLS. */
  standAlone: boolean;
}

/** MAIL FROM parameters. */
export interface MailParams {
  size?: number;
  body?: "7BIT" | "8BITMIME";
  smtputf8?: boolean;
  envid?: string;
  ret?: "FULL" | "HDRS";
  /** AUTH=, decoded; "<>" for none. */
  auth?: string;
}

export interface AcceptedRecipient {
  /** Internal form. */
  address: string;
  /** As the client wrote it (log lines, "for <...>" in Received:). */
  written: string;
  notify?: NotifyWord[];
  orcpt?: string;
}

/** What a restriction can attach to the message besides accept or reject. */
export type MessageAction =
  | { kind: "hold"; reason: string; stage: string; subject: string; label?: string }
  | { kind: "discard"; reason: string; stage: string; subject: string; label?: string }
  | { kind: "prepend"; header: string }
  /** FILTER transport:nexthop: the queue manager hands the message to that content filter (the last one counts). */
  | { kind: "filter"; filter: string; reason: string; stage: string; subject: string }
  /** REDIRECT user@domain: the message goes to that address instead of all its recipients (the last one counts). */
  | { kind: "redirect"; address: string; reason: string; stage: string; subject: string }
  /** BCC user@domain: one more recipient. */
  | { kind: "bcc"; address: string; reason: string; stage: string; subject: string }
  /** The server's own Authentication-Results: header; those that claim `authservId` are removed from the message. */
  | { kind: "auth-results"; header: string; authservId: string; arc?: string[] };

export interface PolicyResult {
  /** A 4xx/5xx reply: the command is refused. */
  reject?: SmtpdReply;
  actions?: MessageAction[];
}

/** A read-only view of the session for policy checks and the sink. */
export interface SessionView {
  readonly client: ClientIdentity;
  readonly helo: string | undefined;
  readonly esmtp: boolean;
  /** "SMTP" or "ESMTP", as log lines show it. */
  readonly protocol: string;
  readonly tls: TlsSummary | undefined;
  readonly sasl: { method: string; username: string } | undefined;
  readonly sender: string | undefined;
  readonly mailParams: MailParams | undefined;
  readonly recipients: readonly AcceptedRecipient[];
  /** Whether input followed the current command without waiting for its reply. */
  readonly pipelined: boolean;
  /** Whether the client said EHLO and PIPELINING was announced. */
  readonly pipeliningAllowed: boolean;
}

export interface SessionPolicy {
  /** Before the greeting; a reject replaces the greeting (the session then refuses everything but QUIT). */
  connect(s: SessionView): Promise<PolicyResult>;
  helo(s: SessionView, name: string): Promise<PolicyResult>;
  mail(s: SessionView, sender: string): Promise<PolicyResult>;
  rcpt(s: SessionView, recipient: AcceptedRecipient): Promise<PolicyResult>;
  data(s: SessionView): Promise<PolicyResult>;
  /** `content`: the message as received (LF line ends), for checks that read it (mail authentication). */
  endOfData(s: SessionView, size: number, content?: Buffer): Promise<PolicyResult>;
  vrfy(s: SessionView, address: string): Promise<PolicyResult>;
  etrn(s: SessionView, domain: string): Promise<PolicyResult>;
  /** Whether an AUTH attempt is allowed now (smtpd_client_auth_rate_limit). */
  auth?(s: SessionView): Promise<PolicyResult>;
}

export interface QueuedMessage {
  session: SessionView;
  sender: string;
  mailParams: MailParams;
  recipients: readonly AcceptedRecipient[];
  /** The content as received, LF line ends, without the Received: header. */
  content: Buffer;
  /** The Received: header (folded, LF line ends, no final newline) for a queue ID. */
  received(queueId: string): string;
  actions: readonly MessageAction[];
  arrival: Date;
}

export interface MessageSink {
  /** Enough space for a message of `size` bytes (0: unknown)? A reply when not. */
  checkSpace(size: number): Promise<SmtpdReply | undefined>;
  /** Writes the message durably; resolves with its queue ID, or with the reply that refuses it. */
  commit(message: QueuedMessage): Promise<{ queueId: string } | { reject: SmtpdReply }>;
}

export type SaslStep = { kind: "challenge"; challenge: string } | { kind: "success"; username: string } | { kind: "failure"; reason: string };

/** One authentication attempt; responses are the client's base64 text. */
export interface SaslExchange {
  step(response: string | undefined): Promise<SaslStep>;
}

export interface SaslServer {
  /** Mechanisms to announce, upper case. */
  mechanisms(tls: boolean): string[];
  /** Starts an attempt; undefined when the mechanism is not offered. */
  start(mechanism: string, session: SessionView): SaslExchange | undefined;
}

/** ETRN's work: ask the queue manager to deliver mail for a site. */
export type EtrnHandler = (domain: string) => Promise<SmtpdReply>;

export interface SessionLogger {
  info(text: string): void;
  warn(text: string): void;
}

export interface SessionServices {
  settings: SessionSettings;
  policy: SessionPolicy;
  sink: MessageSink;
  sasl?: SaslServer;
  etrn?: EtrnHandler;
  /** smtpd_milters, when the service has any. */
  milters?: SessionMilters;
  log: SessionLogger;
}

/** What a milter step comes to for the engine. */
export interface MilterStep {
  /** A 4xx/5xx reply that refuses the command (or the message). */
  reject?: SmtpdReply;
  /** Actions for the transaction: hold (quarantine), discard. */
  actions?: MessageAction[];
}

/** The milters' verdict at the end of the message, with their changes. */
export interface MilterMessageStep extends MilterStep {
  /** The content with the milters' header and body changes (LF line ends), when they made any. */
  content?: Buffer;
  /** A new envelope sender (SMFIR_CHGFROM). */
  sender?: string;
  /** RET and ENVID from SMFIR_CHGFROM's arguments: they override MAIL FROM's. */
  senderDsn?: Pick<MailParams, "ret" | "envid">;
  /** Added recipients (SMFIR_ADDRCPT, SMFIR_ADDRCPT_PAR with NOTIFY and ORCPT). */
  addRecipients?: Omit<AcceptedRecipient, "written">[];
  deleteRecipients?: string[];
}

/**
 * The session's milters (smtpd_milters), called after the restrictions
 * accepted a step and before its 2xx reply.
 */
export interface SessionMilters {
  connect(s: SessionView): Promise<MilterStep>;
  helo(s: SessionView, name: string): Promise<MilterStep>;
  /** `params`: the ESMTP parameters as the client wrote them. */
  mail(s: SessionView, sender: string, params: string[]): Promise<MilterStep>;
  rcpt(s: SessionView, recipient: AcceptedRecipient, params: string[]): Promise<MilterStep>;
  data(s: SessionView): Promise<MilterStep>;
  unknown(s: SessionView, line: string): Promise<MilterStep>;
  message(s: SessionView, content: Buffer): Promise<MilterMessageStep>;
  /** The transaction ended without a message. */
  abort(): void;
  /** The session ended. */
  quit(): void;
}
