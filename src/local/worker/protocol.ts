/**
 * The frames between the local delivery agent and its workers: a JSON line
 * followed by `bytes` raw bytes (the message for a job; nothing for a
 * result). Requests are `{id, job, bytes}`, replies `{id, result}`; ids
 * pair them, so a worker can run several jobs at once.
 *
 * A worker trusts its parent (root, which started it); the parent treats a
 * worker's replies as coming from the recipient's account: it only reads
 * results from them, never code or paths to act on with its own rights.
 */

export interface Frame {
  header: Record<string, unknown>;
  payload: Uint8Array;
}

/** Largest JSON line accepted; a longer one is a protocol error. */
const MAX_HEADER = 1 << 20;

export function encodeFrame(header: Record<string, unknown>, payload?: Uint8Array): Uint8Array {
  const head = Buffer.from(JSON.stringify({ ...header, bytes: payload?.length ?? 0 }) + "\n", "utf8");
  if (!payload || payload.length === 0) return head;
  const out = new Uint8Array(head.length + payload.length);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

export class FrameReader {
  #buf: Uint8Array = new Uint8Array(0);

  /** Adds bytes and returns every frame now complete. Throws on a malformed stream. */
  push(chunk: Uint8Array): Frame[] {
    const joined = new Uint8Array(this.#buf.length + chunk.length);
    joined.set(this.#buf, 0);
    joined.set(chunk, this.#buf.length);
    this.#buf = joined;
    const frames: Frame[] = [];
    for (;;) {
      const nl = this.#buf.indexOf(10);
      if (nl < 0) {
        if (this.#buf.length > MAX_HEADER) throw new Error("worker protocol: header line too long");
        break;
      }
      const header = JSON.parse(Buffer.from(this.#buf.subarray(0, nl)).toString("utf8")) as Record<string, unknown>;
      const bytes = Number(header.bytes ?? 0);
      if (!Number.isSafeInteger(bytes) || bytes < 0) throw new Error("worker protocol: bad payload length");
      if (this.#buf.length < nl + 1 + bytes) break;
      frames.push({ header, payload: this.#buf.slice(nl + 1, nl + 1 + bytes) });
      this.#buf = this.#buf.slice(nl + 1 + bytes);
    }
    return frames;
  }
}
