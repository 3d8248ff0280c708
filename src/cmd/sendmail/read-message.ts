/**
 * Reading the message from standard input as Postfix's sendmail does:
 *
 * - lines end in LF or CRLF; sendmail_fix_line_endings decides which
 *   trailing CRs go (`always`: from every line, `strict`: only when the first
 *   line ends in CR, `never`: none), and the queue keeps LF line ends;
 * - leading `From ` (and `>From `) lines, mbox separators, are dropped;
 * - without -i / -oi a line holding a single dot ends the message;
 * - a last line without its newline gets one;
 * - everything else is kept byte for byte (8-bit, NUL, long lines);
 * - reading stops with EX_DATAERR as soon as the message is larger than
 *   message_size_limit (0: no limit), so a runaway producer cannot fill the disk.
 *
 * Runs as the submitting user; the input is untrusted.
 */
import { readSync } from "node:fs";

export type FixLineEndings = "always" | "strict" | "never";

export interface ReadOptions {
  dotEnds: boolean;
  fixLineEndings: FixLineEndings;
  /** Lines longer than this are not taken for a `From ` line (Postfix reads in records of this size). */
  lineLengthLimit: number;
  /** Bytes; 0 means no limit. */
  sizeLimit: number;
}

export class MessageTooBigError extends Error {
  constructor() {
    super("message file too big");
  }
}

/** Turns input bytes into queue content, one line at a time. */
export class MessageReader {
  #opts: ReadOptions;
  #partial: Buffer[] = [];
  #partialLength = 0;
  #out: Buffer[] = [];
  #size = 0;
  #skipFrom = true;
  #stripCr: boolean | undefined;
  #done = false;

  constructor(opts: ReadOptions) {
    this.#opts = opts;
    if (opts.fixLineEndings === "always") this.#stripCr = true;
    else if (opts.fixLineEndings === "never") this.#stripCr = false;
  }

  /** True once a terminating dot line was seen: the rest of the input is not read. */
  get done(): boolean {
    return this.#done;
  }

  push(chunk: Buffer): void {
    let pos = 0;
    while (!this.#done && pos < chunk.length) {
      const nl = chunk.indexOf(10, pos);
      if (nl < 0) {
        this.#partial.push(chunk.subarray(pos));
        this.#partialLength += chunk.length - pos;
        // a line longer than the limit can still end the message only by size
        if (this.#opts.sizeLimit > 0 && this.#size + this.#partialLength > this.#opts.sizeLimit) throw new MessageTooBigError();
        return;
      }
      let line = chunk.subarray(pos, nl);
      if (this.#partial.length) {
        line = Buffer.concat([...this.#partial, line]);
        this.#partial = [];
        this.#partialLength = 0;
      }
      this.#line(line, true);
      pos = nl + 1;
    }
  }

  /** End of input: the last line without its newline, then the content. */
  end(): Buffer {
    if (!this.#done && this.#partial.length) {
      const line = Buffer.concat(this.#partial);
      this.#partial = [];
      this.#line(line, false);
    }
    return Buffer.concat(this.#out, this.#size);
  }

  #line(raw: Buffer, terminated: boolean): void {
    let line = raw;
    if (terminated) {
      if (this.#stripCr === undefined) this.#stripCr = line.length > 0 && line[line.length - 1] === 13;
      if (this.#stripCr) {
        let end = line.length;
        while (end > 0 && line[end - 1] === 13) end--;
        line = line.subarray(0, end);
      }
    }
    if (this.#skipFrom) {
      if (line.length <= this.#opts.lineLengthLimit && isFromLine(line)) return;
      this.#skipFrom = false;
    }
    if (this.#opts.dotEnds && line.length === 1 && line[0] === 46) {
      this.#done = true;
      return;
    }
    this.#size += line.length + 1;
    if (this.#opts.sizeLimit > 0 && this.#size > this.#opts.sizeLimit) throw new MessageTooBigError();
    this.#out.push(line, NEWLINE);
  }
}

const NEWLINE = Buffer.from("\n");

/** `From ` after any number of `>`. */
function isFromLine(line: Buffer): boolean {
  let i = 0;
  while (i < line.length && line[i] === 62) i++;
  return line.toString("latin1", i, i + 5) === "From ";
}

/** Reads standard input to its end (or the dot line) through a MessageReader. */
export function readStandardInput(opts: ReadOptions, fd = 0): Buffer {
  const reader = new MessageReader(opts);
  const buf = Buffer.allocUnsafe(65536);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") {
        Bun.sleepSync(1);
        continue;
      }
      // a closed standard input reads as an empty one, as Postfix opens /dev/null there
      if (code === "EOF" || code === "EBADF") break;
      throw err;
    }
    if (n === 0) break;
    reader.push(Buffer.from(buf.subarray(0, n)));
    if (reader.done) break;
  }
  return reader.end();
}
