/**
 * One kept connection to a lookup server (socketmap:, tcp:): a request goes
 * out, one framed reply comes back, one exchange at a time (requests queue,
 * as Postfix's single-threaded clients have one in flight). The connection
 * is opened on first use, kept for the next lookup, closed after 10 seconds
 * idle, and opened afresh after any failure. When a kept connection turns
 * out to have been closed by the server before any reply byte arrived, the
 * request is sent once more on a new one (a restarted server is not an
 * error). No exchange, connecting included, lasts longer than the timeout.
 *
 * Runs inside whichever process looks the table up (smtpd, cleanup, qmgr,
 * local, commands), as that process's user. Distrusts the server: replies
 * are bounded by the caller's framing function and by `maxReplyBytes`.
 */
import { type Connection, connectTo } from "../../util/net/connection.ts";

export type Endpoint = { unix: string } | { hostname: string; port: number };

/** What a framing function says about the bytes received so far. */
export type Framed<T> = { reply: T; used: number } | undefined;

/** Thrown for anything that makes the lookup fail temporarily; the caller wraps it in a TableError. */
export class LookupConnectionError extends Error {}

const IDLE_CLOSE_MS = 10_000;

/**
 * Parses "inet:host:port", "host:port", "[v6]:port" or "unix:/path"
 * (Postfix's endpoint forms); undefined when it is none of them.
 */
export function parseEndpoint(text: string, allowUnix: boolean): Endpoint | undefined {
  if (allowUnix && text.startsWith("unix:")) {
    const path = text.slice("unix:".length);
    return path ? { unix: path } : undefined;
  }
  const rest = text.startsWith("inet:") ? text.slice("inet:".length) : text;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(rest);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { hostname: m[1] ?? m[2]!, port };
}

export function describeEndpoint(e: Endpoint): string {
  return "unix" in e ? e.unix : e.hostname.includes(":") ? `[${e.hostname}]:${e.port}` : `${e.hostname}:${e.port}`;
}

export class LookupConnection {
  #conn: Connection | undefined;
  #input: Buffer = Buffer.alloc(0);
  #onInput: (() => void) | undefined;
  #idle: ReturnType<typeof setTimeout> | undefined;
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(
    readonly endpoint: Endpoint,
    readonly timeoutMs: number,
    readonly maxReplyBytes: number,
  ) {}

  /** Sends `request` and resolves with the first reply `frame` recognises; exchanges run one after another. */
  exchange<T>(request: Uint8Array, frame: (input: Buffer) => Framed<T>): Promise<T> {
    const run = this.#tail.then(
      () => this.#exchange(request, frame),
      () => this.#exchange(request, frame),
    );
    this.#tail = run.catch(() => {});
    return run;
  }

  /** Drops the connection; the next exchange opens a new one. */
  reset(): void {
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = undefined;
    const conn = this.#conn;
    this.#conn = undefined;
    this.#input = Buffer.alloc(0);
    conn?.destroy();
  }

  close(): void {
    this.#closed = true;
    this.reset();
  }

  async #exchange<T>(request: Uint8Array, frame: (input: Buffer) => Framed<T>): Promise<T> {
    if (this.#closed) throw new LookupConnectionError("connection is closed");
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = undefined;
    const deadline = Date.now() + this.timeoutMs;
    try {
      for (let attempt = 0; ; attempt++) {
        const reused = this.#conn !== undefined && !this.#conn.closed;
        if (!reused) await this.#connect(deadline);
        const result = await this.#send(request, frame, deadline);
        if (result.kind === "reply") {
          this.#armIdle();
          return result.reply;
        }
        this.reset();
        if (!reused || attempt > 0) throw new LookupConnectionError("connection closed by the server");
      }
    } catch (err) {
      this.reset();
      throw err instanceof LookupConnectionError ? err : new LookupConnectionError((err as Error).message ?? String(err));
    }
  }

  async #connect(deadline: number): Promise<void> {
    this.reset();
    const timeoutMs = Math.max(1, deadline - Date.now());
    let conn: Connection;
    try {
      conn =
        "unix" in this.endpoint
          ? await connectTo({ hostname: "", port: 0, unix: this.endpoint.unix, timeoutMs })
          : await connectTo({ hostname: this.endpoint.hostname, port: this.endpoint.port, timeoutMs });
    } catch (err) {
      throw new LookupConnectionError(`connect to ${describeEndpoint(this.endpoint)}: ${(err as Error).message ?? err}`);
    }
    this.#conn = conn;
    conn.onData((chunk) => {
      if (this.#conn !== conn) return;
      this.#input = this.#input.length ? Buffer.concat([this.#input, chunk]) : Buffer.from(chunk);
      this.#onInput?.();
    });
    conn.onClose(() => {
      if (this.#conn === conn) this.#onInput?.();
    });
  }

  #send<T>(request: Uint8Array, frame: (input: Buffer) => Framed<T>, deadline: number): Promise<{ kind: "reply"; reply: T } | { kind: "closed" }> {
    const conn = this.#conn!;
    // bytes left over from an earlier exchange are not an answer to this one
    this.#input = Buffer.alloc(0);
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#onInput = undefined;
        f();
      };
      const timer = setTimeout(
        () => finish(() => reject(new LookupConnectionError(`timeout after ${this.timeoutMs / 1000}s talking to ${describeEndpoint(this.endpoint)}`))),
        Math.max(1, deadline - Date.now()),
      );
      this.#onInput = () => {
        try {
          const framed = frame(this.#input);
          if (framed) {
            this.#input = this.#input.subarray(framed.used);
            finish(() => resolve({ kind: "reply", reply: framed.reply }));
            return;
          }
          if (this.#input.length > this.maxReplyBytes) throw new LookupConnectionError(`reply longer than ${this.maxReplyBytes} bytes`);
          if (conn.closed) {
            if (this.#input.length === 0) finish(() => resolve({ kind: "closed" }));
            else throw new LookupConnectionError("connection closed in the middle of a reply");
          }
        } catch (err) {
          finish(() => reject(err));
        }
      };
      conn.write(request);
      if (conn.closed) this.#onInput();
    });
  }

  #armIdle(): void {
    this.#idle = setTimeout(() => this.reset(), IDLE_CLOSE_MS);
    this.#idle.unref?.();
  }
}
