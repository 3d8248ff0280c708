/**
 * Connections to a lookup server (socketmap:, tcp:), pooled per table: a
 * request goes out on a connection of its own, one framed reply comes back.
 * Up to 4 connections are opened on demand, each kept for the next lookup,
 * closed after 10 seconds idle, and opened afresh after any failure; more
 * lookups at once wait for a free connection. When a kept connection turns
 * out to have been closed by the server before any reply byte arrived, the
 * request is sent once more on a new one (a restarted server is not an
 * error). No lookup, waiting for a connection and connecting included,
 * lasts longer than the timeout.
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
const POOL_SIZE = 4;

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

export class LookupPool {
  #idle: KeptConnection[] = [];
  #opened = 0;
  #waiters: Array<{ resolve(c: KeptConnection): void; reject(err: Error): void }> = [];
  #closed = false;

  constructor(
    readonly endpoint: Endpoint,
    readonly timeoutMs: number,
    readonly maxReplyBytes: number,
  ) {}

  /**
   * Sends `request` and resolves with the first reply `frame` recognises.
   * `keep` false for a reply means the connection is closed after it (tcp:'s
   * 400 and malformed replies).
   */
  async exchange<T>(request: Uint8Array, frame: (input: Buffer) => Framed<T>, keep?: (reply: T) => boolean): Promise<T> {
    if (this.#closed) throw new LookupConnectionError("connection is closed");
    const deadline = Date.now() + this.timeoutMs;
    const conn = await this.#acquire(deadline);
    try {
      if (Date.now() >= deadline) throw new LookupConnectionError(`timeout after ${this.timeoutMs / 1000}s waiting for a connection to ${describeEndpoint(this.endpoint)}`);
      const reply = await conn.exchange(request, frame, deadline);
      if (keep && !keep(reply)) conn.reset();
      return reply;
    } finally {
      this.#release(conn);
    }
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#idle.splice(0)) c.reset();
    for (const w of this.#waiters.splice(0)) w.reject(new LookupConnectionError("connection is closed"));
  }

  #acquire(deadline: number): Promise<KeptConnection> {
    // the most recently used first: the others go idle and close
    const idle = this.#idle.pop();
    if (idle) return Promise.resolve(idle);
    if (this.#opened < POOL_SIZE) {
      this.#opened++;
      return Promise.resolve(new KeptConnection(this.endpoint, this.maxReplyBytes));
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (c: KeptConnection) => {
          clearTimeout(timer);
          resolve(c);
        },
        reject: (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new LookupConnectionError(`timeout after ${this.timeoutMs / 1000}s waiting for a connection to ${describeEndpoint(this.endpoint)}`));
      }, Math.max(1, deadline - Date.now()));
      this.#waiters.push(waiter);
    });
  }

  #release(conn: KeptConnection): void {
    if (this.#closed) {
      conn.reset();
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(conn);
    else this.#idle.push(conn);
  }
}

/** One connection of the pool: one exchange at a time (the pool sees to that). */
class KeptConnection {
  #conn: Connection | undefined;
  #input: Buffer = Buffer.alloc(0);
  #onInput: (() => void) | undefined;
  #idle: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly endpoint: Endpoint,
    readonly maxReplyBytes: number,
  ) {}

  /** Drops the socket; the next exchange opens a new one. */
  reset(): void {
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = undefined;
    const conn = this.#conn;
    this.#conn = undefined;
    this.#input = Buffer.alloc(0);
    conn?.destroy();
  }

  async exchange<T>(request: Uint8Array, frame: (input: Buffer) => Framed<T>, deadline: number): Promise<T> {
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = undefined;
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
        () => finish(() => reject(new LookupConnectionError(`timeout talking to ${describeEndpoint(this.endpoint)}`))),
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
