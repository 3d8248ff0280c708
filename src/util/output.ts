/**
 * Buffered writes to standard output for commands that print a lot (mailq,
 * postcat): synchronous, so output and exit status stay in order, and quiet
 * when the reader has gone away (`mailq | head`), as a Unix filter should be.
 */
import { writeSync } from "node:fs";
import { writeFully, type SyncWriter } from "./durable-file.ts";

/** One write(2); an inherited non-blocking pipe that is full waits for the reader. */
const writeWaitingForReader: SyncWriter = (fd, data, offset, length, position) => {
  for (;;) {
    try {
      return writeSync(fd, data, offset, length, position);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
      Bun.sleepSync(1);
    }
  }
};

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
    try {
      writeFully(this.#fd, all, null, writeWaitingForReader);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EPIPE") throw err;
      this.#closed = true;
    }
  }
}
