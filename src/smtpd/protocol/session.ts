/**
 * One SMTP server session: greeting, the command loop, replies and the
 * session's log lines, in Postfix's words. What each command checks and does
 * is the table in commands.ts; this file is the machinery around it: reading
 * a command, refusing pipelining where RFC 2920 forbids it, TLS-required and
 * access-denied states, the error counters (smtpd_soft_error_limit,
 * smtpd_hard_error_limit, smtpd_junk_command_limit), timeouts (per read,
 * or per request with smtpd_per_request_deadline and smtpd_min_data_rate), and the
 * `disconnect from ... ehlo=1 mail=1 ... commands=N` statistics.
 *
 * Shared by the smtpd daemon (a socket) and `sendmail -bs` (stdin/stdout);
 * the caller supplies policy, queue sink, SASL and TLS (types.ts). All input
 * is untrusted; client text reaches replies and logs only through printable().
 */
import { COMMANDS, type CommandName, type CommandRow } from "./commands.ts";
import { InputClosedError, InputTimeoutError, SmtpInput, type CommandLine, type GrowingBuffer } from "./input.ts";
import { formatReply, replyLogText, reply, type SmtpdReply } from "./reply.ts";
import { printable } from "../../util/printable.ts";
import type {
  AcceptedRecipient,
  MailParams,
  MessageAction,
  SessionServices,
  SessionTransport,
  SessionView,
  TlsSummary,
  ClientIdentity,
} from "./types.ts";

/** Statistics names in Postfix's order for the disconnect line. */
const STAT_ORDER = ["helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat", "rset", "noop", "vrfy", "etrn", "help", "quit", "unknown"];

export class SessionClosed extends Error {}

/** Reply bytes a client may leave unread before the session waits for it to read them. */
const OUTPUT_WINDOW = 64 * 1024;

/** The mail transaction between MAIL and the end of DATA/BDAT LAST (or RSET). */
export interface Transaction {
  sender: string;
  senderWritten: string;
  params: MailParams;
  recipients: AcceptedRecipient[];
  actions: MessageAction[];
  /** Set once a BDAT chunk arrived: the content so far (one growing buffer), or an error that discards the rest. */
  bdat?: { content: GrowingBuffer; size: number; tooBig: boolean; failed: boolean };
}

export class SmtpdSession implements SessionView {
  readonly input: SmtpInput;
  readonly services: SessionServices;
  readonly transport: SessionTransport;
  readonly client: ClientIdentity;
  helo: string | undefined;
  esmtp = false;
  tls: TlsSummary | undefined;
  sasl: { method: string; username: string } | undefined;
  tx: Transaction | undefined;
  pipelined = false;
  /** The last recipient a client asked for, accepted or not (log lines). */
  lastRecipient: string | undefined;
  /** Set when connect-time restrictions refused the client: everything but QUIT gets 503. */
  accessDenied: SmtpdReply | undefined;
  /** A BDAT failed: later chunks are read and discarded until BDAT LAST or RSET. */
  bdatError = false;
  errorCount = 0;
  junkCount = 0;
  overshoot = 0;
  /** What the session was doing, for "lost connection after X" and "timeout after X". */
  stage = "CONNECT";
  #stats = new Map<string, { ok: number; total: number }>();
  #lastReplyCode = 0;
  #tlsGate = false;

  constructor(transport: SessionTransport, client: ClientIdentity, services: SessionServices) {
    this.transport = transport;
    this.client = client;
    this.services = services;
    this.tls = transport.tls;
    this.input = new SmtpInput({
      timeoutMs: services.settings.timeoutMs,
      onPressure: (paused) => transport.pause?.(paused),
    });
    transport.onData((chunk) => {
      if (!this.#tlsGate) this.input.push(chunk);
    });
    transport.onClose(() => this.input.end());
  }

  get settings() {
    return this.services.settings;
  }

  get protocol(): string {
    return this.esmtp ? "ESMTP" : "SMTP";
  }

  get sender(): string | undefined {
    return this.tx?.sender;
  }

  get mailParams(): MailParams | undefined {
    return this.tx?.params;
  }

  get recipients(): readonly AcceptedRecipient[] {
    return this.tx?.recipients ?? [];
  }

  get pipeliningAllowed(): boolean {
    return this.esmtp && this.announced("pipelining");
  }

  /** "name[address]" as Postfix logs a client. */
  get namaddr(): string {
    const port = this.settings.clientPortLogging ? `:${this.client.port}` : "";
    return `${this.client.name}[${this.client.address}]${port}`;
  }

  announced(keyword: string): boolean {
    return !this.settings.discardEhloKeywords.has(keyword);
  }

  /** Sends a reply; 4xx/5xx replies wait smtpd_error_sleep_time once the soft error limit is reached. */
  async send(r: SmtpdReply): Promise<void> {
    this.#lastReplyCode = r.code;
    let out = r;
    if (!this.announced("enhancedstatuscodes") && r.dsn) out = { code: r.code, lines: r.lines };
    if (r.code >= 400) {
      if (this.settings.rejectFooter) out = { ...out, lines: [...out.lines, ...this.settings.rejectFooter.split(/\\n|\n/)] };
      if (this.errorCount >= this.settings.softErrorLimit && this.settings.errorSleepMs > 0) await Bun.sleep(this.settings.errorSleepMs);
    }
    this.transport.write(formatReply(out));
    // a client that does not read its replies must not make them pile up here: past a window, wait
    // until they leave, within smtpd_timeout (Postfix's smtpd blocks on the write, under the same limit)
    if ((this.transport.backlog?.() ?? 0) > OUTPUT_WINDOW) await withTimeout(this.transport.flushed(), this.settings.timeoutMs);
  }

  get lastReplyCode(): number {
    return this.#lastReplyCode;
  }

  /** "; from=<a> to=<b> proto=ESMTP helo=<h>" as Postfix's log_whatsup writes it. */
  whatsup(withRecipient: boolean): string {
    let s = "";
    if (this.tx) s += ` from=<${printable(this.tx.senderWritten)}>`;
    if (withRecipient && this.lastRecipient !== undefined) s += ` to=<${printable(this.lastRecipient)}>`;
    s += ` proto=${this.protocol}`;
    if (this.helo !== undefined) s += ` helo=<${this.helo}>`;
    return s;
  }

  /** Logs a refusal: "NOQUEUE: reject: RCPT from host[addr]: 554 5.7.1 ...; from=<> to=<> proto=ESMTP helo=<>". */
  logReject(stage: string, r: SmtpdReply, withRecipient = true, action = "reject"): void {
    this.services.log.info(`NOQUEUE: ${action}: ${stage} from ${this.namaddr}: ${replyLogText(r)};${this.whatsup(withRecipient)}`);
  }

  resetTransaction(): void {
    if (this.tx) this.services.milters?.abort();
    this.tx = undefined;
    this.lastRecipient = undefined;
  }

  /** After STARTTLS: forget everything the client said before (RFC 3207). */
  resetAfterTls(): void {
    this.helo = undefined;
    this.esmtp = false;
    this.sasl = undefined;
    this.resetTransaction();
  }

  /** Before message content (DATA, BDAT): with smtpd_per_request_deadline, a deadline that content arriving at smtpd_min_data_rate extends. */
  contentDeadline(): void {
    if (this.settings.requestDeadline) this.input.startDeadline(this.settings.timeoutMs, this.settings.minDataRate);
  }

  /** Runs STARTTLS on the transport with the input gated, so plaintext sent after the command is never read as a command. */
  async upgradeTls(): Promise<TlsSummary> {
    this.#tlsGate = true;
    this.input.discard();
    try {
      const start = this.transport.startTls!;
      this.input.timeoutMs = this.settings.starttlsTimeoutMs;
      const info = await withTimeout(start(), this.settings.starttlsTimeoutMs);
      this.tls = info;
      return info;
    } finally {
      this.input.discard();
      this.#tlsGate = false;
      this.input.timeoutMs = this.settings.timeoutMs;
    }
  }

  #count(stat: string, ok: boolean): void {
    const s = this.#stats.get(stat) ?? { ok: 0, total: 0 };
    s.total++;
    if (ok) s.ok++;
    this.#stats.set(stat, s);
  }

  #statistics(): string {
    let ok = 0;
    let total = 0;
    const parts: string[] = [];
    for (const name of STAT_ORDER) {
      const s = this.#stats.get(name);
      if (!s) continue;
      ok += s.ok;
      total += s.total;
      parts.push(s.ok === s.total ? `${name}=${s.ok}` : `${name}=${s.ok}/${s.total}`);
    }
    parts.push(ok === total ? `commands=${ok}` : `commands=${ok}/${total}`);
    return parts.join(" ");
  }

  /** Runs the session to its end; never throws. */
  async run(): Promise<void> {
    const log = this.services.log;
    log.info(`connect from ${this.namaddr}`);
    try {
      await this.#greet();
      await this.#loop();
    } catch (err) {
      if (err instanceof SessionClosed) {
        // the session ended itself
      } else if (err instanceof InputClosedError) {
        log.info(`lost connection after ${this.stage} from ${this.namaddr}`);
      } else if (err instanceof InputTimeoutError) {
        const bytes = this.stage === "DATA" || this.stage === "BDAT" ? ` (${this.input.received} bytes)` : "";
        log.info(`timeout after ${this.stage}${bytes} from ${this.namaddr}`);
        // a client that timed out by not reading is not waited for again
        if ((this.transport.backlog?.() ?? 0) > OUTPUT_WINDOW && this.transport.destroy) {
          this.transport.destroy();
        } else await this.send(reply(421, "4.4.2", `${this.settings.myhostname} Error: timeout exceeded`)).catch(() => {});
      } else {
        log.warn(`${this.namaddr}: ${(err as Error)?.stack ?? String(err)}`);
        await this.send(reply(421, "4.3.0", `${this.settings.myhostname} Error: internal error`)).catch(() => {});
      }
    }
    log.info(`disconnect from ${this.namaddr} ${this.#statistics()}`);
    // the last replies get smtpd_timeout to leave; a client that does not read them is dropped then
    await withTimeout(this.transport.end(), this.settings.timeoutMs).catch(() => this.transport.destroy?.());
  }

  async #greet(): Promise<void> {
    const result = await this.services.policy.connect(this);
    if (result.reject) {
      this.logReject("CONNECT", result.reject, false);
      await this.send(result.reject);
      if (result.reject.code === 421) throw new SessionClosed();
      this.accessDenied = result.reject;
      this.errorCount++;
    } else {
      const milter = (await this.services.milters?.connect(this))?.reject;
      if (milter) {
        this.logReject("CONNECT", milter, false, "milter-reject");
        await this.send(milter);
        if (milter.code === 421) throw new SessionClosed();
        this.errorCount++;
      } else {
        const lines = this.settings.banner.split(/\\n|\n/);
        await this.send({ code: 220, lines });
      }
    }
    await this.transport.flushed();
    if (this.input.pending() > 0 && this.settings.forbidUnauthPipelining) await this.#pipeliningViolation("CONNECT");
  }

  async #pipeliningViolation(after: string): Promise<never> {
    this.services.log.info(`improper command pipelining after ${after} from ${this.namaddr}: ${printable(this.input.peek(100).replace(/\r?\n[\s\S]*$/, ""))}`);
    await this.send(reply(554, "5.5.0", "Error: SMTP protocol synchronization"));
    throw new SessionClosed();
  }

  async #loop(): Promise<void> {
    for (;;) {
      // smtpd_per_request_deadline: smtpd_timeout is for the whole command, however the client doles it out
      if (this.settings.requestDeadline) this.input.startDeadline(this.settings.timeoutMs);
      else this.input.clearDeadline();
      const line = await this.input.readLine(this.settings.lineLengthLimit);
      this.pipelined = this.input.pending() > 0;
      const next = await this.#command(line);
      if (next === "close") throw new SessionClosed();
      if (this.errorCount >= this.settings.hardErrorLimit) {
        this.services.log.info(`too many errors after ${this.stage} from ${this.namaddr}`);
        await this.send(reply(421, "4.7.0", `${this.settings.myhostname} Error: too many errors`));
        throw new SessionClosed();
      }
    }
  }

  async #command(line: CommandLine): Promise<"continue" | "close"> {
    const text = line.text;
    const space = text.search(/[ \t]/);
    const verb = (space < 0 ? text : text.slice(0, space)).toUpperCase();
    const arg = space < 0 ? "" : text.slice(space + 1).replace(/^[ \t]+/, "").replace(/[ \t]+$/, "");

    if (line.bareLf && this.settings.bareNewline === "reject") {
      this.services.log.warn(`bare <LF> received from ${this.namaddr} in ${this.stage === "CONNECT" ? "command" : "command after " + this.stage}`);
      this.stage = verb && /^[A-Z]+$/.test(verb) ? verb : "UNKNOWN";
      this.errorCount++;
      await this.send(reply(this.settings.bareNewlineRejectCode, "5.5.2", "Error: bare <LF> received"));
      return "continue";
    }
    if (line.badUtf8) {
      // as Postfix protects its internal interfaces: text that is not UTF-8 goes no further
      this.stage = "UNKNOWN";
      this.#count("unknown", false);
      this.errorCount++;
      await this.send(reply(500, "5.5.2", "Error: bad UTF-8 syntax"));
      return "continue";
    }
    if (this.settings.forbiddenCommands.has(verb) || (text !== "" && !/^[A-Za-z]/.test(text))) {
      this.services.log.warn(`non-SMTP command from ${this.namaddr}: ${printable(text.slice(0, 100))}`);
      await this.send(reply(221, "2.7.0", "Error: I can break rules, too. Goodbye."));
      return "close";
    }
    const row: CommandRow | undefined = COMMANDS.find((c) => c.name === verb);
    if (!row || !this.#offered(row.name)) {
      this.stage = "UNKNOWN";
      this.#count("unknown", false);
      this.errorCount++;
      const milter = text === "" ? undefined : (await this.services.milters?.unknown(this, printable(text)))?.reject;
      if (milter) {
        await this.send(milter);
        return milter.code === 421 ? "close" : "continue";
      }
      await this.send(text === "" ? reply(500, "5.5.2", "Error: bad syntax") : reply(500, "5.5.2", "Error: command not recognized"));
      return "continue";
    }
    this.stage = row.name;
    if (this.pipelined && this.settings.forbidUnauthPipelining && (row.last || !this.pipeliningAllowed) && row.name !== "QUIT" && row.name !== "BDAT") {
      this.#count(row.stat, false);
      await this.#pipeliningViolation(row.name);
    }
    if (this.accessDenied && row.name !== "QUIT") {
      this.#count(row.stat, false);
      this.errorCount++;
      await this.send(reply(503, "5.7.0", `Error: access denied for ${this.namaddr}`));
      return "continue";
    }
    if (this.settings.tlsLevel === "encrypt" && !this.tls && !row.beforeTls) {
      this.#count(row.stat, false);
      this.errorCount++;
      await this.send(reply(530, "5.7.0", "Must issue a STARTTLS command first"));
      return "continue";
    }
    if (row.junk && this.junkCount++ >= this.settings.junkCommandLimit) this.errorCount++;

    let next: "continue" | "close" = "continue";
    const refused = row.check(this, arg);
    if (refused) {
      await this.send(refused);
      if (refused.code === 521) next = "close";
    } else {
      try {
        next = await row.proceed(this, arg, line);
      } catch (err) {
        this.#count(row.stat, false);
        throw err;
      }
    }
    const ok = this.#lastReplyCode < 400;
    this.#count(row.stat, ok);
    if (!ok) this.errorCount++;
    return next;
  }

  /** Commands that exist only when their feature is on. */
  #offered(name: CommandName): boolean {
    switch (name) {
      case "BDAT":
        return this.announced("chunking");
      case "ETRN":
        return this.announced("etrn");
      case "HELO":
      case "EHLO":
      case "STARTTLS":
      case "AUTH":
      case "MAIL":
      case "RCPT":
      case "DATA":
      case "RSET":
      case "NOOP":
      case "VRFY":
      case "HELP":
      case "QUIT":
        return true;
    }
  }

  /** A delivered message: the client's error counters start again (errors "without delivering mail"). */
  delivered(): void {
    this.errorCount = 0;
    this.junkCount = 0;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  if (ms <= 0) return p;
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new InputTimeoutError()), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
