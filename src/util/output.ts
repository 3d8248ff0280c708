/**
 * Buffered writes to standard output for commands that print a lot (mailq,
 * postcat): synchronous, so output and exit status stay in order, and quiet
 * when the reader has gone away (`mailq | head`), as a Unix filter should be.
 */
import { writeSync } from "node:fs";

export class OutputWriter {
  #chunks: Buffer[] = [];
  #size = 0;
  #closed = false;
  readonly #fd: number;

  constructor(fd = 1) {
    this.#fd = fd;
  }

  /** False once the reader has gone away. */
  get open(): boolean {
    return !this.#closed;
  }

  write(data: string | Uint8Array): void {
    if (this.#closed) return;
    const chunk = typeof data === "string" ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    if (this.#size >= 65536) this.flush();
  }

  flush(): void {
    if (this.#closed || this.#size === 0) return;
    const all = Buffer.concat(this.#chunks, this.#size);
    this.#chunks = [];
    this.#size = 0;
    let off = 0;
    while (off < all.length) {
      try {
        off += writeSync(this.#fd, all, off, all.length - off);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EPIPE") {
          this.#closed = true;
          return;
        }
        // an inherited non-blocking pipe that is full: wait for the reader
        if (code === "EAGAIN") Bun.sleepSync(1);
        else throw err;
      }
    }
  }
}
