/**
 * Synchronous writes to standard output and error for short-lived commands.
 * In a compiled Bun executable the first process.stdout.write() costs about
 * 7 ms of start-up and exit time; writeSync() on the descriptor costs
 * nothing. A reader that went away (EPIPE) ends the output quietly; a
 * non-blocking descriptor that is full (EAGAIN) is retried.
 */
import { writeSync } from "node:fs";

function writeAll(fd: number, text: string | Uint8Array): boolean {
  const bytes = typeof text === "string" ? Buffer.from(text) : text;
  let off = 0;
  let spins = 0;
  while (off < bytes.length) {
    try {
      off += writeSync(fd, bytes, off, bytes.length - off);
      spins = 0;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EAGAIN" && spins++ < 100_000) continue;
      return false;
    }
  }
  return true;
}

export function writeStdout(text: string | Uint8Array): boolean {
  return writeAll(1, text);
}

export function writeStderr(text: string | Uint8Array): boolean {
  return writeAll(2, text);
}
