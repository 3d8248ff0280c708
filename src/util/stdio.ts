/**
 * Synchronous writes to standard output and error for short-lived commands.
 * In a compiled Bun executable the first process.stdout.write() costs about
 * 7 ms of start-up and exit time; writeSync() on the descriptor costs
 * nothing. A reader that went away (EPIPE) ends the output quietly; a
 * non-blocking descriptor that is full (EAGAIN) is retried.
 */
import { writeSync } from "node:fs";
import { writeFully, type SyncWriter } from "./durable-file.ts";

/** One write(2), retried while a non-blocking descriptor is full. */
const writeRetryingAgain: SyncWriter = (fd, data, offset, length, position) => {
  for (let spins = 0; ; spins++) {
    try {
      return writeSync(fd, data, offset, length, position);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN" || spins >= 100_000) throw err;
    }
  }
};

function writeAll(fd: number, text: string | Uint8Array): boolean {
  try {
    writeFully(fd, text, null, writeRetryingAgain);
    return true;
  } catch {
    return false;
  }
}

export function writeStdout(text: string | Uint8Array): boolean {
  return writeAll(1, text);
}

export function writeStderr(text: string | Uint8Array): boolean {
  return writeAll(2, text);
}
