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

/**
 * Splits a byte stream into frames. Chunks are kept as they come and joined
 * once the frame they hold is complete, so a message that arrives in many
 * chunks is copied once, not once per chunk.
 */
export class FrameReader {
  /**
   * @param maxPayload the largest payload a frame may announce: the parent reads replies, which carry
   *   none, with 0, so a worker (the recipient's account) cannot make root's local service buffer an
   *   unbounded payload; a larger announcement is a protocol error before any of it is kept.
   */
  constructor(private readonly maxPayload = Number.MAX_SAFE_INTEGER) {}

  #chunks: Uint8Array[] = [];
  #length = 0;
  /** Bytes needed before another frame can be complete. */
  #need = 1;

  /** Adds bytes and returns every frame now complete. Throws on a malformed stream. */
  push(chunk: Uint8Array): Frame[] {
    if (chunk.length === 0) return [];
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    if (this.#length < this.#need) return [];
    const buf = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#length);
    const frames: Frame[] = [];
    let at = 0;
    for (;;) {
      const nl = buf.indexOf(10, at);
      if (nl < 0) {
        if (buf.length - at > MAX_HEADER) throw new Error("worker protocol: header line too long");
        this.#need = buf.length - at + 1;
        break;
      }
      const header = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + at, nl - at).toString("utf8")) as Record<string, unknown>;
      const bytes = Number(header.bytes ?? 0);
      if (!Number.isSafeInteger(bytes) || bytes < 0) throw new Error("worker protocol: bad payload length");
      if (bytes > this.maxPayload) throw new Error(`worker protocol: a payload of ${bytes} bytes where at most ${this.maxPayload} may come`);
      if (buf.length < nl + 1 + bytes) {
        this.#need = nl + 1 + bytes - at;
        break;
      }
      frames.push({ header, payload: buf.slice(nl + 1, nl + 1 + bytes) });
      at = nl + 1 + bytes;
      this.#need = 1;
    }
    const rest = buf.subarray(at);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#length = rest.length;
    return frames;
  }
}
