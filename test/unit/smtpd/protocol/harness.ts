/**
 * A protocol session without a network: a fake transport the test writes
 * client bytes into and reads replies from, a policy whose answers the test
 * sets, a sink that keeps committed messages, and a log that keeps lines.
 */
import { SmtpdSession } from "../../../../src/smtpd/protocol/session.ts";
import type {
  ClientIdentity,
  MessageSink,
  PolicyResult,
  QueuedMessage,
  SaslServer,
  SessionPolicy,
  SessionServices,
  SessionSettings,
  SessionMilters,
  SessionTransport,
  TlsSummary,
} from "../../../../src/smtpd/protocol/types.ts";
import type { SmtpdReply } from "../../../../src/smtpd/protocol/reply.ts";

export function settings(over: Partial<SessionSettings> = {}): SessionSettings {
  return {
    myhostname: "mx.example.test",
    banner: "mx.example.test ESMTP postern",
    mailName: "postern",
    messageSizeLimit: 10240000,
    lineLengthLimit: 2048,
    recipientLimit: 1000,
    recipientOvershootLimit: 1000,
    hardErrorLimit: 20,
    softErrorLimit: 10,
    errorSleepMs: 0,
    junkCommandLimit: 100,
    timeoutMs: 5000,
    starttlsTimeoutMs: 5000,
    heloRequired: false,
    disableVrfy: false,
    discardEhloKeywords: new Set(),
    bareNewline: "normalize",
    bareNewlineRejectCode: 550,
    forbidUnauthPipelining: true,
    forbiddenCommands: new Set(["CONNECT", "GET", "POST"]),
    strictRfc821: false,
    strictSmtputf8: false,
    requestDeadline: false,
    minDataRate: 500,
    smtputf8: true,
    tlsLevel: "none",
    tlsAuthOnly: false,
    tlsReceivedHeader: false,
    tlsLogLevel: 0,
    saslEnabled: false,
    saslAuthenticatedHeader: false,
    brokenSaslAuthClients: false,
    saslResponseLimit: 12288,
    rejectFooter: "",
    standAlone: false,
    ...over,
  };
}

export class FakeTransport implements SessionTransport {
  out = "";
  closed = false;
  tls: TlsSummary | undefined;
  startTls?: () => Promise<TlsSummary>;
  backlog?: () => number;
  destroy?: () => void;
  #handler: ((chunk: Uint8Array) => void) | undefined;
  #closers: Array<() => void> = [];
  #waiters: Array<() => void> = [];
  #cursor = 0;
  /** Set by start(): whether the session waits for client input. */
  idle: () => boolean = () => true;

  write(data: string): void {
    this.out += data;
    queueMicrotask(() => {
      for (const w of this.#waiters.splice(0)) w();
    });
  }
  async flushed(): Promise<void> {}
  async end(): Promise<void> {
    this.closed = true;
    for (const w of this.#waiters.splice(0)) w();
  }
  onData(handler: (chunk: Uint8Array) => void): void {
    this.#handler = handler;
  }
  onClose(handler: () => void): void {
    this.#closers.push(handler);
  }
  /** The client sends bytes. */
  send(text: string): void {
    this.#handler!(Buffer.from(text, "latin1"));
  }
  /** The client hangs up. */
  hangUp(): void {
    for (const c of this.#closers) c();
  }

  /** The next complete reply after the last one read (all its lines, CRLF-joined), or "" when the session closed first. */
  async reply(timeoutMs = 3000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rest = this.out.slice(this.#cursor);
      const m = /^(?:\d{3}-.*\r\n)*\d{3}(?: .*)?\r\n/.exec(rest);
      // a reply is whole once the session has gone back to reading (or closed): nothing more of it will come
      if (m && (this.closed || this.idle())) {
        this.#cursor += m[0].length;
        return m[0];
      }
      if (this.closed) return "";
      if (Date.now() > deadline) throw new Error(`no reply; output so far: ${JSON.stringify(this.out)}`);
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 5);
      });
    }
  }

  /** Sends a line and returns the reply. */
  async cmd(line: string): Promise<string> {
    this.send(`${line}\r\n`);
    return this.reply();
  }

  async closedAfter(timeoutMs = 3000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await Bun.sleep(10);
    return this.closed;
  }
}

const accept = async (): Promise<PolicyResult> => ({});

export function acceptAll(): SessionPolicy {
  return { connect: accept, helo: accept, mail: accept, rcpt: accept, data: accept, endOfData: accept, vrfy: accept, etrn: accept };
}

export class MemorySink implements MessageSink {
  messages: Array<QueuedMessage & { queueId: string }> = [];
  space: SmtpdReply | undefined;
  refuse: SmtpdReply | undefined;
  async checkSpace(): Promise<SmtpdReply | undefined> {
    return this.space;
  }
  async commit(m: QueuedMessage) {
    if (this.refuse) return { reject: this.refuse };
    const queueId = `ID${this.messages.length + 1}`;
    this.messages.push({ ...m, content: Buffer.from(m.content), queueId });
    return { queueId };
  }
}

export const CLIENT: ClientIdentity = { address: "192.0.2.7", port: 4321, name: "client.example.org", reverseName: "client.example.org", nameStatus: "ok" };

export interface Harness {
  t: FakeTransport;
  session: SmtpdSession;
  sink: MemorySink;
  logs: string[];
  done: Promise<void>;
}

export function start(
  opts: { settings?: Partial<SessionSettings>; policy?: Partial<SessionPolicy>; sasl?: SaslServer; transport?: (t: FakeTransport) => void; etrn?: SessionServices["etrn"]; milters?: SessionMilters } = {},
): Harness {
  const t = new FakeTransport();
  opts.transport?.(t);
  const sink = new MemorySink();
  const logs: string[] = [];
  const services: SessionServices = {
    settings: settings(opts.settings),
    policy: { ...acceptAll(), ...opts.policy },
    sink,
    ...(opts.sasl ? { sasl: opts.sasl } : {}),
    ...(opts.etrn ? { etrn: opts.etrn } : {}),
    ...(opts.milters ? { milters: opts.milters } : {}),
    log: { info: (l) => logs.push(l), warn: (l) => logs.push(`warning: ${l}`) },
  };
  const session = new SmtpdSession(t, CLIENT, services);
  t.idle = () => session.input.waiting;
  const done = session.run();
  return { t, session, sink, logs, done };
}
