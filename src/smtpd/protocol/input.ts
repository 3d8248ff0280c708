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
 * not end DATA is unstuffed to an empty line. Command lines are decoded as
 * UTF-8 (RFC 6531); one that is not valid UTF-8 is flagged, never passed on
 * as text.
 *
 * Everything here is untrusted client input; memory is bounded by the line
 * limit in command mode, the size limit in DATA/BDAT, and a cap on what a
 * client may send ahead (the caller pauses the socket past the high-water mark).
 * Time is bounded per read, or per request with a deadline (startDeadline).
 *
 * Garbage per message is kept low (issue 16: smtpd's peak memory is mostly
 * the garbage of the messages it accepted): the runtime's chunks are kept as
 * they arrive, not copied; DATA takes them one at a time instead of joining
 * them; and DATA content goes into one buffer per session, reused by the
 * next message unless it grew past REUSED_CONTENT.
 *
 * XXX: a message is kept whole in memory until the sink commits it (Postfix
 * streams it to the queue file): up to message_size_limit per session.
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
  /** The line without its ending, decoded as UTF-8 (as latin1, one char per byte, when badUtf8). */
  text: string;
  /** Ended by LF without CR. */
  bareLf: boolean;
  /** Longer than the limit: cut at the limit, the rest of the line was dropped. */
  truncated: boolean;
  /** The line is not valid UTF-8 (its text is then only fit for log lines, through printable()). */
  badUtf8: boolean;
}

const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A command line's text: UTF-8 when it is valid UTF-8 (ASCII is), else latin1 and a flag. */
export function decodeCommandText(bytes: Uint8Array): { text: string; utf8: boolean } {
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (ascii) return { text: buf.toString("latin1"), utf8: true };
  try {
    // the fatal decoder refuses overlong forms, surrogates and truncated sequences
    return { text: utf8Decoder.decode(bytes), utf8: true };
  } catch {
    return { text: buf.toString("latin1"), utf8: false };
  }
}

/** The first `limit` bytes of `bytes`, moved back so no UTF-8 character is cut in two. */
function cutAtCharacter(bytes: Buffer, limit: number): Buffer {
  let cut = Math.min(limit, bytes.length);
  // a continuation byte (10xxxxxx) at the cut: back off to the start of its character (at most 3 bytes)
  for (let back = 0; back < 3 && cut > 0 && cut < bytes.length && (bytes[cut]! & 0xc0) === 0x80; back++) cut--;
  return bytes.subarray(0, cut);
}

export interface DataContent {
  /** The message with LF line ends; absent when it exceeded the size limit. */
  content: Buffer | undefined;
  /** Content bytes received (after unstuffing, counting CRLF line ends as Postfix does). */
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
/** A session's DATA buffer is reused for its next message up to this size; a bigger one goes with its message. */
const REUSED_CONTENT = 64 * 1024;
const EMPTY = Buffer.alloc(0);

/** A chunk as a Buffer: the same bytes, no copy. */
function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

export interface InputOptions {
  /** Time limit of every read, in milliseconds (0: none). */
  timeoutMs: number;
  /** Called with true when too much input waits, false when it has been read (pause/resume the socket). */
  onPressure?: (paused: boolean) => void;
}

export class SmtpInput {
  #buf: Buffer = EMPTY;
  #pos = 0;
  #incoming: Buffer[] = [];
  #incomingLength = 0;
  #eof = false;
  #wake: (() => void) | undefined;
  #paused = false;
  #opts: InputOptions;
  /** The per-request deadline (performance.now() time), its length, and the data rate that extends it. */
  #deadline: { at: number; span: number; rate: number } | undefined;
  /** DATA content: one buffer per session, reused from message to message (see the header). */
  #content = new GrowingBuffer();
  /** Total bytes received, for "(N bytes)" in timeout messages. */
  received = 0;

  constructor(opts: InputOptions) {
    this.#opts = opts;
  }

  set timeoutMs(ms: number) {
    this.#opts.timeoutMs = ms;
  }

  /**
   * Postfix's per-request deadline (smtpd_per_request_deadline): from now
   * on, reads together may take at most `ms` (instead of `timeoutMs` for
   * each read), so a client cannot hold a session by sending one byte now
   * and then. With `minDataRate` > 0 (message content), every
   * `minDataRate` bytes that arrive add a second, but the time left never
   * exceeds `ms`. Replaces any deadline set before.
   */
  startDeadline(ms: number, minDataRate = 0): void {
    this.#deadline = ms > 0 ? { at: performance.now() + ms, span: ms, rate: minDataRate } : undefined;
  }

  /** Back to a time limit per read. */
  clearDeadline(): void {
    this.#deadline = undefined;
  }

  /**
   * Input as it arrives. The chunk is kept, not copied: the caller hands it
   * over and never writes to it again (the runtime's sockets and streams
   * give each read a buffer of its own).
   */
  push(chunk: Uint8Array): void {
    if (this.#eof || chunk.length === 0) return;
    this.received += chunk.length;
    const d = this.#deadline;
    if (d && d.rate > 0) d.at = Math.min(d.at + (chunk.length * 1000) / d.rate, performance.now() + d.span);
    // joined when read (#gather), so a client that sends many small pieces costs no repeated copying
    this.#incoming.push(asBuffer(chunk));
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
    // one piece and nothing left over (the common case) is taken as it is: no second copy
    this.#buf = rest.length === 0 && this.#incoming.length === 1 ? this.#incoming[0]! : Buffer.concat(rest.length ? [rest, ...this.#incoming] : this.#incoming);
    this.#pos = 0;
    this.#incoming = [];
    this.#incomingLength = 0;
  }

  /** The next piece that arrived becomes the read buffer, once the one before is read: no copy (DATA). */
  #takePiece(): void {
    if (this.#pos < this.#buf.length || this.#incoming.length === 0) return;
    const piece = this.#incoming.shift()!;
    this.#incomingLength -= piece.length;
    this.#buf = piece;
    this.#pos = 0;
  }

  /** Up to `n` bytes that wait, for logging what a client sent ahead. */
  peek(n: number): string {
    this.#gather();
    return this.#buf.toString("latin1", this.#pos, Math.min(this.#buf.length, this.#pos + n));
  }

  /** Drops everything received so far (plaintext pipelined after STARTTLS). */
  discard(): void {
    this.#buf = EMPTY;
    this.#pos = 0;
    this.#incoming = [];
    this.#incomingLength = 0;
    this.#relieve();
  }

  #consume(to: number): void {
    this.#pos = to;
    if (this.#pos === this.#buf.length) {
      this.#buf = EMPTY;
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
    // a per-request deadline bounds this wait by the time left; else each read gets timeoutMs
    const wait = this.#deadline ? Math.max(0, this.#deadline.at - performance.now()) : this.#opts.timeoutMs;
    if (this.#deadline && wait <= 0) return Promise.reject(new InputTimeoutError());
    return new Promise<void>((resolve, reject) => {
      const timer =
        wait > 0
          ? setTimeout(() => {
              this.#wake = undefined;
              reject(new InputTimeoutError());
            }, wait)
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
   * One command line. A line longer than `limit` bytes is cut there (at a
   * character boundary) and the rest of it skipped, as Postfix's smtp_get
   * does. The line is decoded as UTF-8; one that is not valid UTF-8 says so.
   */
  async readLine(limit: number): Promise<CommandLine> {
    let truncated: Buffer | undefined;
    // the last byte of the skipped rest of a too-long line: its CR may come in one read and its LF in the next
    let skippedCr = false;
    for (;;) {
      this.#gather();
      const nl = this.#buf.indexOf(LF, this.#pos);
      if (nl >= 0) {
        let end = nl;
        const bareLf = end > this.#pos ? this.#buf[end - 1] !== CR : !skippedCr;
        if (!bareLf) end--;
        let bytes: Buffer;
        if (truncated !== undefined) bytes = truncated;
        else if (end - this.#pos > limit) {
          bytes = cutAtCharacter(this.#buf.subarray(this.#pos, this.#pos + limit + 1), limit);
          truncated = bytes;
        } else bytes = this.#buf.subarray(this.#pos, end);
        const decoded = decodeCommandText(bytes);
        this.#consume(nl + 1);
        return { text: decoded.text, bareLf, truncated: truncated !== undefined, badUtf8: !decoded.utf8 };
      }
      if (truncated === undefined && this.pending() > limit) {
        truncated = Buffer.from(cutAtCharacter(this.#buf.subarray(this.#pos, this.#pos + limit + 1), limit));
      }
      if (truncated !== undefined) {
        if (this.#buf.length > this.#pos) skippedCr = this.#buf[this.#buf.length - 1] === CR;
        this.#consume(this.#buf.length);
      }
      await this.#more();
    }
  }

  /**
   * DATA content up to the end marker. `afterCrlf` says whether the DATA
   * command line itself ended in CRLF (a "." right after a bare-LF DATA line
   * does not end the message). Bytes beyond `sizeLimit` (0: none) are read
   * and dropped.
   *
   * The content is copied into one growing buffer, line by line as it
   * arrives; nothing is kept per line, so a million empty lines cost no more
   * than their bytes. The content returned is a view into the session's
   * DATA buffer: valid until the next readData, which reuses that buffer.
   */
  async readData(mode: BareNewlineMode, sizeLimit: number, afterCrlf: boolean): Promise<DataContent> {
    const out = this.#content;
    out.truncate(0);
    let size = 0;
    let bareLf = false;
    let tooBig = false;
    let prevCrlf = afterCrlf;
    // the line being read: where it starts in `out`, its length so far (all bytes, before unstuffing), first and last byte
    let lineStart = 0;
    let lineLength = 0;
    let first = -1;
    let last = -1;
    for (;;) {
      this.#takePiece();
      const nl = this.#buf.indexOf(LF, this.#pos);
      const end = nl < 0 ? this.#buf.length : nl;
      if (end > this.#pos) {
        let from = this.#pos;
        if (lineLength === 0) {
          first = this.#buf[from]!;
          // dot-unstuffing: a line's leading "." is never stored
          if (first === DOT) from++;
        }
        lineLength += end - this.#pos;
        last = this.#buf[end - 1]!;
        if (!tooBig) {
          const stored = out.length - lineStart + (end - from);
          if (sizeLimit > 0 && size + stored > sizeLimit + 2) {
            // over the limit inside one line: the rest is counted, never stored
            tooBig = true;
            out.clear();
          } else out.append(this.#buf, from, end);
        }
      }
      if (nl < 0) {
        this.#consume(this.#buf.length);
        // a line that goes on in the next piece: only when none waits, wait for the client
        if (this.#incoming.length === 0) await this.#more();
        continue;
      }
      this.#consume(nl + 1);
      const crlf = lineLength > 0 && last === CR;
      const textLength = lineLength - (crlf ? 1 : 0);
      if (textLength === 1 && first === DOT && (mode === "no" || (crlf && prevCrlf))) {
        if (tooBig) return { content: undefined, size, bareLf };
        out.truncate(lineStart);
        const content = out.bytes();
        // a big message's buffer is not kept for the session's next one
        if (out.capacity > REUSED_CONTENT) this.#content = new GrowingBuffer();
        return { content, size, bareLf };
      }
      if (!crlf) bareLf = true;
      prevCrlf = crlf;
      const unstuffed = textLength - (first === DOT && textLength > 0 ? 1 : 0);
      // counted with CRLF, as Postfix's smtpd counts against message_size_limit
      size += unstuffed + 2;
      if (sizeLimit > 0 && size > sizeLimit && !tooBig) {
        tooBig = true;
        out.clear();
      }
      if (!tooBig) {
        out.truncate(lineStart + unstuffed);
        out.appendByte(LF);
        lineStart = out.length;
      }
      lineLength = 0;
      first = -1;
      last = -1;
    }
  }

  /** Exactly `count` bytes (a BDAT chunk), handed to `sink` as they arrive (views into the read buffer: copy what you keep). */
  async readBytes(count: number, sink: (bytes: Buffer) => void): Promise<void> {
    let left = count;
    while (left > 0) {
      if (this.pending() === 0) await this.#more();
      this.#gather();
      const n = Math.min(left, this.pending());
      sink(this.#buf.subarray(this.#pos, this.#pos + n));
      this.#consume(this.#pos + n);
      left -= n;
    }
  }
}

/**
 * Bytes appended to one buffer that doubles when full: message content kept
 * without an object per line or per network read.
 */
export class GrowingBuffer {
  #buf: Buffer = Buffer.allocUnsafe(0);
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** Bytes allocated. */
  get capacity(): number {
    return this.#buf.length;
  }

  #reserve(more: number): void {
    const need = this.#length + more;
    if (need <= this.#buf.length) return;
    // the first piece gets room for a typical message (16 KiB): one allocation instead of 4, 8, 16 KiB in turn
    const next = Buffer.allocUnsafe(Math.max(need, this.#buf.length * 2, 16384));
    this.#buf.copy(next, 0, 0, this.#length);
    this.#buf = next;
  }

  append(from: Uint8Array, start = 0, end = from.length): void {
    if (end <= start) return;
    this.#reserve(end - start);
    // short pieces byte by byte: a view object per line would be garbage by the million
    if (end - start <= 32) for (let i = start; i < end; i++) this.#buf[this.#length++] = from[i]!;
    else {
      // Buffer's copy takes the range without a view object
      if (Buffer.isBuffer(from)) from.copy(this.#buf, this.#length, start, end);
      else this.#buf.set(from.subarray(start, end), this.#length);
      this.#length += end - start;
    }
  }

  appendByte(byte: number): void {
    this.#reserve(1);
    this.#buf[this.#length++] = byte;
  }

  /** Forgets everything after `length` bytes. */
  truncate(length: number): void {
    if (length < this.#length) this.#length = Math.max(0, length);
  }

  /** Forgets everything and gives the memory back. */
  clear(): void {
    this.#buf = Buffer.allocUnsafe(0);
    this.#length = 0;
  }

  /** The bytes so far (a view, not a copy). */
  bytes(): Buffer {
    return this.#buf.subarray(0, this.#length);
  }
}
