/**
 * One SMTP or LMTP client connection at the line level: commands go out,
 * replies come back in order and settle a queue of pending expectations
 * (so pipelined commands just register theirs and are awaited later), each
 * expectation with its own time limit that starts when it reaches the head
 * of the queue. STARTTLS and implicit TLS go through the shared connection
 * module (src/util/net/connection.ts).
 *
 * Runs in the queue manager's process as mail_owner. Distrusts the server:
 * a reply line longer than MAX_LINE, a malformed reply, or a flood of
 * replies nobody asked for ends the session with a SessionError, as do
 * timeouts and a closed connection; plaintext that arrived before STARTTLS completes is
 * discarded (CVE-2011-0411).
 */
import type { TLSOptions } from "bun";
import type { Connection, TlsInfo } from "../util/net/connection.ts";
import { ReplyAssembler, type ReplySyntaxError, type RemoteReply } from "../global/smtp-reply/reply.ts";

/** Longest reply line accepted (RFC 5321 4.5.3.1.5 says 512; servers exceed it). */
export const MAX_LINE = 8192;

/** Replies held for commands not yet registered; more means the server talks on its own. */
const MAX_EARLY_REPLIES = 1000;

export type SessionErrorKind = "lost" | "timeout" | "protocol";

export class SessionError extends Error {
  constructor(
    readonly kind: SessionErrorKind,
    message: string,
  ) {
    super(message);
    this.name = "SessionError";
  }
}

interface Expectation {
  resolve: (r: RemoteReply) => void;
  reject: (e: SessionError) => void;
  timeoutMs: number;
}

export class SmtpClientSession {
  readonly conn: Connection;
  #pending: Expectation[] = [];
  #early: RemoteReply[] = [];
  #assembler = new ReplyAssembler();
  #partial: Buffer | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #failure: SessionError | undefined;
  #upgrading = false;
  #xferTimedOut = false;

  constructor(conn: Connection) {
    this.conn = conn;
    conn.onData((chunk) => this.#onData(chunk));
    conn.onClose(() => this.#fail(new SessionError("lost", "connection closed")));
  }

  /** The first failure that ended the session, if any. */
  get failure(): SessionError | undefined {
    return this.#failure;
  }

  get usable(): boolean {
    return !this.#failure && !this.conn.closed;
  }

  get tls(): TlsInfo | undefined {
    return this.conn.tls;
  }

  /** Registers the next reply to wait for; `timeoutMs` 0 waits forever. */
  expect(timeoutMs: number): Promise<RemoteReply> {
    const p = new Promise<RemoteReply>((resolve, reject) => {
      if (this.#failure) {
        reject(this.#failure);
        return;
      }
      const early = this.#early.shift();
      if (early) {
        resolve(early);
        return;
      }
      this.#pending.push({ resolve, reject, timeoutMs });
      if (this.#pending.length === 1) this.#armTimer();
    });
    // a pipelined expectation may fail before anyone awaits it
    p.catch(() => {});
    return p;
  }

  /** Writes one command line and registers its reply. */
  command(line: string, timeoutMs: number): Promise<RemoteReply> {
    this.writeLine(line);
    return this.expect(timeoutMs);
  }

  writeLine(line: string): void {
    if (!this.#failure) this.conn.write(`${line}\r\n`);
  }

  /**
   * Writes message content; fails with a timeout when no byte could be
   * handed to the kernel for `idleTimeoutMs` (Postfix's data_xfer_timeout).
   */
  async writeData(data: Uint8Array, idleTimeoutMs: number): Promise<void> {
    if (this.#failure) throw this.#failure;
    this.#xferTimedOut = false;
    if (idleTimeoutMs > 0) {
      this.conn.setIdleTimeout(idleTimeoutMs / 1000, () => {
        this.#xferTimedOut = true;
        this.#fail(new SessionError("timeout", "timeout"));
        this.conn.destroy();
      });
    }
    this.conn.write(data);
    await this.conn.flushed();
    if (idleTimeoutMs > 0 && !this.conn.closed) this.conn.setIdleTimeout(0, () => {});
    if (this.#xferTimedOut) throw new SessionError("timeout", "timeout");
    if (this.#failure) throw this.#failure;
  }

  /** STARTTLS after the server's 220, or nothing when TLS is already on. */
  async startTls(options: TLSOptions, timeoutMs: number): Promise<TlsInfo> {
    if (this.#failure) throw this.#failure;
    // whatever plaintext the server sent after its 220 must not be read as a reply under TLS
    this.#partial = undefined;
    this.#assembler = new ReplyAssembler();
    this.#early = [];
    this.#upgrading = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const handshake = this.conn.startTls({ ...options, isServer: false });
      const timeout = new Promise<never>((_, reject) => {
        if (timeoutMs > 0) timer = setTimeout(() => reject(new SessionError("timeout", "timeout")), timeoutMs);
      });
      return await Promise.race([handshake, timeout]);
    } catch (err) {
      if (err instanceof SessionError) {
        this.#fail(err);
        this.conn.destroy();
        throw err;
      }
      const e = new SessionError("protocol", (err as Error).message || "TLS handshake failed");
      this.#fail(e);
      this.conn.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
      this.#upgrading = false;
    }
  }

  /** Sends QUIT (optionally waiting for its reply), then closes. Never throws. */
  async quit(waitMs: number, waitForReply: boolean): Promise<void> {
    if (this.usable) {
      const reply = this.command("QUIT", waitMs);
      if (waitForReply) await reply.catch(() => undefined);
    }
    this.close();
  }

  /** Closes at once. */
  close(): void {
    this.#fail(new SessionError("lost", "connection closed"));
    if (!this.conn.closed) void this.conn.end().catch(() => {});
  }

  #armTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const head = this.#pending[0];
    if (!head || head.timeoutMs <= 0) return;
    this.#timer = setTimeout(() => {
      this.#fail(new SessionError("timeout", "timeout"));
      this.conn.destroy();
    }, head.timeoutMs);
  }

  #fail(err: SessionError): void {
    if (!this.#failure) this.#failure = err;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const e of this.#pending.splice(0)) e.reject(this.#failure);
  }

  #onData(chunk: Uint8Array): void {
    if (this.#failure || this.#upgrading) return;
    let buf = this.#partial ? Buffer.concat([this.#partial, chunk]) : Buffer.from(chunk);
    this.#partial = undefined;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl < 0) break;
      let end = nl;
      if (end > start && buf[end - 1] === 13) end--;
      const line = buf.toString("utf8", start, end);
      start = nl + 1;
      if (!this.#onLine(line)) return;
    }
    if (start < buf.length) {
      buf = buf.subarray(start);
      if (buf.length > MAX_LINE) {
        this.#fail(new SessionError("protocol", `reply line longer than ${MAX_LINE} bytes`));
        this.conn.destroy();
        return;
      }
      this.#partial = Buffer.from(buf);
    }
  }

  /** False when the session ended. */
  #onLine(line: string): boolean {
    if (line.length > MAX_LINE) {
      this.#fail(new SessionError("protocol", `reply line longer than ${MAX_LINE} bytes`));
      this.conn.destroy();
      return false;
    }
    let reply: RemoteReply | undefined;
    try {
      reply = this.#assembler.push(line);
    } catch (err) {
      this.#fail(new SessionError("protocol", (err as ReplySyntaxError).message));
      this.conn.destroy();
      return false;
    }
    if (!reply) return true;
    const head = this.#pending.shift();
    if (!head) {
      // a reply before its command was registered (pipelining, a fast LMTP server): kept in order, as a stream reader would
      if (this.#early.length >= MAX_EARLY_REPLIES) {
        this.#fail(new SessionError("protocol", `unexpected reply "${reply.lines[0]}"`));
        this.conn.destroy();
        return false;
      }
      this.#early.push(reply);
      return true;
    }
    this.#armTimer();
    head.resolve(reply);
    return true;
  }
}
