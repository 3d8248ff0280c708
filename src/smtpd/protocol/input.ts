/**
 * The SMTP server's input: one byte stream read as command lines, DATA
 * content or BDAT chunks, whichever the session asks for next. Bytes the
 * client sent ahead (pipelining) wait here until the session reads them, so
 * "is there more input already?" is a question this module answers.
 *
 * DATA ends only at <CR><LF>.<CR><LF> (smtpd_forbid_bare_newline =
 * normalize or reject): a "." line that ends in a bare <LF>, or that follows a
 * line ending in a bare <LF>, is content. `\n.\n`, `\n.\r\n`, `\r\n.\n` and
 * `\r.\r\n` therefore never end a message early (SMTP smuggling,
 * CVE-2023-51764). Only "no" keeps the old rule that any "." line ends DATA.
 * A bare <CR> is an ordinary byte, as in Postfix.
 *
 * Content is stored with LF line ends and dot-unstuffed; a "." line that does
 * not end DATA is unstuffed to an empty line.
 *
 * Everything here is untrusted client input; memory is bounded by the line
 * limit in command mode, the size limit in DATA/BDAT, and a cap on what a
 * client may send ahead (the caller pauses the socket past the high-water mark).
 */

export type BareNewlineMode = "normalize" | "reject" | "no";

export class InputClosedError extends Error {
  constructor() {
    super("lost connection");
  }
}

export class InputTimeoutError extends Error {
  constructor() {
    super("timeout");
  }
}

export interface CommandLine {
  /** The line without its ending, latin1 (one char per byte). */
  text: string;
  /** Ended by LF without CR. */
  bareLf: boolean;
  /** Longer than the limit: cut at the limit, the rest of the line was dropped. */
  truncated: boolean;
}

export interface DataContent {
  /** The message with LF line ends; absent when it exceeded the size limit. */
  content: Buffer | undefined;
  /** Content bytes received (after unstuffing, counting LF line ends). */
  size: number;
  /** Some line ended in a bare LF. */
  bareLf: boolean;
}

const LF = 10;
const CR = 13;
const DOT = 46;
/** Input a client may send ahead of the session before the socket is paused. */
const HIGH_WATER = 256 * 1024;
const LOW_WATER = 64 * 1024;

export interface InputOptions {
  /** Time limit of every read, in milliseconds (0: none). */
  timeoutMs: number;
  /** Called with true when too much input waits, false when it has been read (pause/resume the socket). */
  onPressure?: (paused: boolean) => void;
}

export class SmtpInput {
  #buf: Buffer = Buffer.alloc(0);
  #pos = 0;
  #incoming: Buffer[] = [];
  #incomingLength = 0;
  #eof = false;
  #wake: (() => void) | undefined;
  #paused = false;
  #opts: InputOptions;
  /** Total bytes received, for "(N bytes)" in timeout messages. */
  received = 0;

  constructor(opts: InputOptions) {
    this.#opts = opts;
  }

  set timeoutMs(ms: number) {
    this.#opts.timeoutMs = ms;
  }

  push(chunk: Uint8Array): void {
    if (this.#eof || chunk.length === 0) return;
    this.received += chunk.length;
    // joined when read (#gather), so a client that sends many small pieces costs no repeated copying
    this.#incoming.push(Buffer.from(chunk));
    this.#incomingLength += chunk.length;
    if (!this.#paused && this.pending() > HIGH_WATER) {
      this.#paused = true;
      this.#opts.onPressure?.(true);
    }
    this.#wake?.();
  }

  end(): void {
    this.#eof = true;
    this.#wake?.();
  }

  get ended(): boolean {
    return this.#eof;
  }

  /** The reader has taken all it could and waits for the client to send more. */
  get waiting(): boolean {
    return this.#wake !== undefined;
  }

  /** Bytes received and not yet read. */
  pending(): number {
    return this.#buf.length - this.#pos + this.#incomingLength;
  }

  /** Moves what arrived into the read buffer. */
  #gather(): void {
    if (this.#incoming.length === 0) return;
    const rest = this.#buf.subarray(this.#pos);
    this.#buf = Buffer.concat(rest.length ? [rest, ...this.#incoming] : this.#incoming);
    this.#pos = 0;
    this.#incoming = [];
    this.#incomingLength = 0;
  }

  /** Up to `n` bytes that wait, for logging what a client sent ahead. */
  peek(n: number): string {
    this.#gather();
    return this.#buf.toString("latin1", this.#pos, Math.min(this.#buf.length, this.#pos + n));
  }

  /** Drops everything received so far (plaintext pipelined after STARTTLS). */
  discard(): void {
    this.#buf = Buffer.alloc(0);
    this.#pos = 0;
    this.#incoming = [];
    this.#incomingLength = 0;
    this.#relieve();
  }

  #consume(to: number): void {
    this.#pos = to;
    if (this.#pos === this.#buf.length) {
      this.#buf = Buffer.alloc(0);
      this.#pos = 0;
    }
    this.#relieve();
  }

  #relieve(): void {
    if (this.#paused && this.pending() < LOW_WATER) {
      this.#paused = false;
      this.#opts.onPressure?.(false);
    }
  }

  /** Waits for more input; rejects on end of input or timeout. */
  #more(): Promise<void> {
    if (this.#eof) return Promise.reject(new InputClosedError());
    // whatever waits is all there is: let the client send more
    if (this.#paused) {
      this.#paused = false;
      this.#opts.onPressure?.(false);
    }
    return new Promise<void>((resolve, reject) => {
      const timer =
        this.#opts.timeoutMs > 0
          ? setTimeout(() => {
              this.#wake = undefined;
              reject(new InputTimeoutError());
            }, this.#opts.timeoutMs)
          : undefined;
      this.#wake = () => {
        this.#wake = undefined;
        if (timer) clearTimeout(timer);
        if (this.#eof && this.pending() === 0) reject(new InputClosedError());
        else resolve();
      };
    });
  }

  /** Resolves once some input waits (or rejects on timeout/end); for the early-talker check. */
  async waitForInput(): Promise<void> {
    while (this.pending() === 0) await this.#more();
  }

  /**
   * One command line. A line longer than `limit` bytes is cut there and the
   * rest of it skipped, as Postfix's smtp_get does.
   */
  async readLine(limit: number): Promise<CommandLine> {
    let truncated: string | undefined;
    for (;;) {
      this.#gather();
      const nl = this.#buf.indexOf(LF, this.#pos);
      if (nl >= 0) {
        let end = nl;
        const bareLf = !(end > this.#pos && this.#buf[end - 1] === CR);
        if (!bareLf) end--;
        let text: string;
        if (truncated !== undefined) text = truncated;
        else if (end - this.#pos > limit) {
          text = this.#buf.toString("latin1", this.#pos, this.#pos + limit);
          truncated = text;
        } else text = this.#buf.toString("latin1", this.#pos, end);
        this.#consume(nl + 1);
        return { text, bareLf, truncated: truncated !== undefined };
      }
      if (truncated === undefined && this.pending() > limit) {
        truncated = this.#buf.toString("latin1", this.#pos, this.#pos + limit);
      }
      if (truncated !== undefined) this.#consume(this.#buf.length);
      await this.#more();
    }
  }

  /**
   * DATA content up to the end marker. `afterCrlf` says whether the DATA
   * command line itself ended in CRLF (a "." right after a bare-LF DATA line
   * does not end the message). Bytes beyond `sizeLimit` (0: none) are read
   * and dropped.
   */
  async readData(mode: BareNewlineMode, sizeLimit: number, afterCrlf: boolean): Promise<DataContent> {
    const parts: Buffer[] = [];
    let size = 0;
    let bareLf = false;
    let tooBig = false;
    let prevCrlf = afterCrlf;
    let partial: Buffer[] = [];
    let partialLength = 0;
    const newline = Buffer.from("\n");
    for (;;) {
      this.#gather();
      const nl = this.#buf.indexOf(LF, this.#pos);
      if (nl < 0) {
        if (this.pending() > 0) {
          partial.push(Buffer.from(this.#buf.subarray(this.#pos)));
          partialLength += this.pending();
          this.#consume(this.#buf.length);
          if (sizeLimit > 0 && size + partialLength > sizeLimit && partialLength > 2) {
            // over the limit inside one line: count it, keep only its first bytes (enough to tell "." and "..")
            tooBig = true;
            parts.length = 0;
            const head = Buffer.concat(partial).subarray(0, 2);
            size += partialLength - head.length;
            partial = [head];
            partialLength = head.length;
          }
        }
        await this.#more();
        continue;
      }
      const tail = this.#buf.subarray(this.#pos, nl);
      const line = partial.length ? Buffer.concat([...partial, tail]) : Buffer.from(tail);
      partial = [];
      partialLength = 0;
      this.#consume(nl + 1);
      const crlf = line.length > 0 && line[line.length - 1] === CR;
      let text = crlf ? line.subarray(0, line.length - 1) : line;
      if (text.length === 1 && text[0] === DOT && (mode === "no" || (crlf && prevCrlf))) {
        return { content: tooBig ? undefined : Buffer.concat(parts), size, bareLf };
      }
      if (!crlf) bareLf = true;
      prevCrlf = crlf;
      if (text.length > 0 && text[0] === DOT) text = text.subarray(1);
      size += text.length + 1;
      if (sizeLimit > 0 && size > sizeLimit) {
        tooBig = true;
        parts.length = 0;
      }
      if (!tooBig) parts.push(text, newline);
    }
  }

  /** Exactly `count` bytes (a BDAT chunk), handed to `sink` as they arrive. */
  async readBytes(count: number, sink: (bytes: Buffer) => void): Promise<void> {
    let left = count;
    while (left > 0) {
      if (this.pending() === 0) await this.#more();
      this.#gather();
      const n = Math.min(left, this.pending());
      sink(Buffer.from(this.#buf.subarray(this.#pos, this.#pos + n)));
      this.#consume(this.#pos + n);
      left -= n;
    }
  }
}
