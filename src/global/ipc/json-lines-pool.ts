/**
 * Requests over kept connections: the queue manager's client of the local
 * service (private/local). A delivery used to open a unix socket, send one
 * JSON line, read one and close; the connect, accept and teardown on both
 * sides were an eighth of the local service's work and a tenth of the
 * queue manager's (issue 16). Here a connection that answered goes back to
 * an idle list and carries the next request; each connection has at most
 * one request outstanding, so concurrent deliveries use as many connections
 * as are in flight (the server answers a connection's requests in order).
 *
 * Runs in the queue manager (mail_owner). It distrusts the answers as
 * requestJsonLine does: bounded in size, one JSON object a line, a line
 * nobody asked for closes the connection. An idle connection is closed
 * after IDLE_MS, and at most MAX_IDLE are kept per path. A kept connection
 * that the server closed meanwhile (the service restarted) fails its next
 * request before any answer: that request is sent once more on a new
 * connection. The server may have acted on it before it went away, which
 * the same failure without the retry (a deferral, retried later) would
 * repeat too: delivery stays at least once, as with Postfix.
 */
import { createConnection, type Socket } from "node:net";
import { IpcError, MAX_REQUEST_BYTES, type JsonObject } from "./json-lines.ts";

/** How long an idle connection is kept. */
export const IDLE_MS = 10_000;
/** Idle connections kept per socket path. */
export const MAX_IDLE = 32;

type Waiter = (err: Error | undefined, value?: JsonObject) => void;

class KeptConnection {
  readonly socket: Socket;
  #buffered = "";
  #waiter: Waiter | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** Whether any byte came back for the request outstanding. */
  answered = false;
  closed = false;

  constructor(
    readonly path: string,
    private readonly maxResponseBytes: number,
    private readonly onClosed: (c: KeptConnection) => void,
  ) {
    this.socket = createConnection(path);
    this.socket.setEncoding("utf8");
    this.socket.on("data", (chunk: string) => this.#data(chunk));
    this.socket.on("error", (err) => this.#fail(new IpcError(`${path}: ${err.message}`)));
    this.socket.on("close", () => this.#fail(new IpcError(`${path}: connection closed before a response`)));
  }

  #data(chunk: string): void {
    this.answered = true;
    this.#buffered += chunk;
    let nl: number;
    while ((nl = this.#buffered.indexOf("\n")) >= 0) {
      const line = this.#buffered.slice(0, nl);
      this.#buffered = this.#buffered.slice(nl + 1);
      const waiter = this.#waiter;
      this.#waiter = undefined;
      if (!waiter) {
        // an answer nobody asked for: the connection is out of step
        this.destroy();
        return;
      }
      try {
        const v = JSON.parse(line);
        if (v && typeof v === "object" && typeof v.error === "string") waiter(new IpcError(v.error));
        else if (v && typeof v === "object" && !Array.isArray(v)) waiter(undefined, v as JsonObject);
        else throw new Error("not an object");
      } catch (err) {
        this.destroy();
        waiter(new IpcError(`${this.path}: bad response: ${(err as Error).message}`));
        return;
      }
    }
    if (this.#buffered.length > this.maxResponseBytes) {
      this.#fail(new IpcError(`${this.path}: response too long`));
    }
  }

  #fail(err: Error): void {
    this.destroy();
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(err);
  }

  destroy(): void {
    clearTimeout(this.#idleTimer);
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.onClosed(this);
  }

  /** Sends one request; `done` gets its answer or the failure, once. */
  send(request: JsonObject, done: Waiter): void {
    clearTimeout(this.#idleTimer);
    this.answered = false;
    this.#waiter = done;
    this.socket.write(JSON.stringify(request) + "\n");
  }

  /** Back on the idle list: closed when nobody needs it for IDLE_MS. */
  park(): void {
    this.#idleTimer = setTimeout(() => this.destroy(), IDLE_MS);
    this.#idleTimer.unref?.();
  }
}

/** Connections kept for reuse, per socket path. */
export class JsonLinePool {
  readonly #idle = new Map<string, KeptConnection[]>();
  /** Connections opened so far (tests: how many a series of requests needed). */
  opened = 0;

  #take(path: string): KeptConnection | undefined {
    const list = this.#idle.get(path);
    while (list?.length) {
      const c = list.pop()!;
      if (!c.closed) return c;
    }
    return undefined;
  }

  #open(path: string, maxResponseBytes: number): KeptConnection {
    this.opened++;
    return new KeptConnection(path, maxResponseBytes, (gone) => {
      const list = this.#idle.get(gone.path);
      const at = list?.indexOf(gone) ?? -1;
      if (at >= 0) list!.splice(at, 1);
    });
  }

  #park(c: KeptConnection): void {
    let list = this.#idle.get(c.path);
    if (!list) this.#idle.set(c.path, (list = []));
    if (list.length >= MAX_IDLE) {
      c.destroy();
      return;
    }
    list.push(c);
    c.park();
  }

  /** Sends one request and waits for its response (or an IpcError after `timeoutMs`). */
  async request(path: string, request: JsonObject, timeoutMs = 30_000, maxResponseBytes = MAX_REQUEST_BYTES): Promise<JsonObject> {
    const kept = this.#take(path);
    if (kept) {
      try {
        return await this.#exchange(kept, request, timeoutMs);
      } catch (err) {
        // a kept connection the server had closed: once more on a new one (see the header)
        if (kept.answered || !(err instanceof IpcError) || (err as Error & { timedOut?: boolean }).timedOut) throw err;
      }
    }
    return this.#exchange(this.#open(path, maxResponseBytes), request, timeoutMs);
  }

  #exchange(c: KeptConnection, request: JsonObject, timeoutMs: number): Promise<JsonObject> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        c.destroy();
        reject(Object.assign(new IpcError(`${c.path}: no response within ${timeoutMs} ms`), { timedOut: true }));
      }, timeoutMs);
      c.send(request, (err, value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          // an error answer leaves the connection in step; a failure of the connection has closed it
          if (!c.closed) this.#park(c);
          reject(err);
        } else {
          this.#park(c);
          resolve(value!);
        }
      });
    });
  }

  /** Closes every idle connection. */
  close(): void {
    for (const list of this.#idle.values()) for (const c of [...list]) c.destroy();
    this.#idle.clear();
  }
}
