/**
 * Internal requests between postern processes: one JSON object a line over
 * a unix stream socket, one response per request, in order. Used by the
 * queue manager to reach the local delivery service and by postqueue to
 * reach the queue manager.
 *
 * The socket is the master's (created before any process starts and passed
 * on as descriptor 3, so requests wait in its backlog while a service
 * restarts) or, for a daemon started by hand, made here; either way its
 * mode comes from the umask at bind time (src/util/unix-socket.ts), never
 * from a chmod of the path. private/ is mail_owner-only, public/ is for
 * everyone: a public service decides who may do what from the peer's
 * kernel credentials (SO_PEERCRED), passed to the handler. Every request is
 * bounded in size and must be a JSON object, and a handler validates its
 * fields.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { listenUnixSocket, peerCredentials, type PeerCredentials } from "../../util/unix-socket.ts";

export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/** Requests one connection may have waiting for their answers; a client that sends more is cut off. */
export const MAX_PIPELINED_REQUESTS = 16;

export type JsonObject = Record<string, unknown>;

/** Told when a connection opens and closes and when a request's handling starts and ends (src/daemon/idle-exit.ts). */
export interface Activity {
  begin(): void;
  end(): void;
}
/** `peer` is undefined when the kernel could not tell who connected; a handler that checks must refuse then. */
export type Handler = (request: JsonObject, peer: PeerCredentials | undefined) => Promise<JsonObject>;

/** The kernel's credentials of a node:net socket's peer (Bun keeps the descriptor on the internal handle). */
function peerOf(socket: Socket): PeerCredentials | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== "number" || fd < 0) return undefined;
  try {
    return peerCredentials(fd);
  } catch {
    return undefined;
  }
}

function lineReader(socket: Socket, onLine: (line: string) => void, onTooLong: () => void, maxBytes = MAX_REQUEST_BYTES): void {
  let buffered = "";
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      onLine(line);
    }
    if (buffered.length > maxBytes) onTooLong();
  });
}

/**
 * Serves requests on `listenFd`, a listening socket passed on by the master;
 * without one, creates the socket at `path` with `mode` (replacing a stale one).
 * `activity` is told of each connection (open to close) and each request
 * (handler called to handler done, even after its connection closed).
 */
export async function serveJsonLines(path: string, mode: number, handler: Handler, listenFd?: number, activity?: Activity): Promise<Server> {
  const fd = listenFd ?? listenUnixSocket(path, mode);
  const server = createServer((socket) => {
    if (activity) {
      activity.begin();
      socket.once("close", () => activity.end());
    }
    // asked once, at accept: the credentials belong to the connection, not to a request
    const peer = peerOf(socket);
    const pending: string[] = [];
    let serving = false;
    const serve = async () => {
      serving = true;
      while (pending.length && !socket.destroyed) {
        const line = pending.shift()!;
        let response: JsonObject;
        try {
          const request = JSON.parse(line);
          if (!request || typeof request !== "object" || Array.isArray(request)) throw new Error("request is not an object");
          activity?.begin();
          try {
            response = await handler(request as JsonObject, peer);
          } finally {
            activity?.end();
          }
        } catch (err) {
          response = { error: (err as Error).message };
        }
        if (!socket.destroyed) socket.write(JSON.stringify(response) + "\n");
        // one request a turn of the event loop: a client that pipelines requests (or several
        // clients) must not keep the process from its other work, and a closed connection stops here
        await new Promise((r) => setImmediate(r));
      }
      serving = false;
    };
    lineReader(
      socket,
      (line) => {
        if (pending.length >= MAX_PIPELINED_REQUESTS) {
          socket.destroy();
          return;
        }
        pending.push(line);
        if (!serving) void serve();
      },
      () => socket.destroy(),
    );
    socket.on("error", () => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ fd }, () => resolve());
  });
  return server;
}

/**
 * Stops accepting on `server` and resolves once every connection it accepted
 * has closed (a service that idles out must not drop one accepted at the
 * last moment); the listening socket itself stays the master's.
 */
export function stopServing(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export class IpcError extends Error {}

/** Sends one request and waits for its response (or an IpcError after `timeoutMs`). */
export function requestJsonLine(path: string, request: JsonObject, timeoutMs = 30_000, maxResponseBytes = MAX_REQUEST_BYTES): Promise<JsonObject> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let settled = false;
    const finish = (err: Error | undefined, value?: JsonObject) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => finish(new IpcError(`${path}: no response within ${timeoutMs} ms`)), timeoutMs);
    socket.on("error", (err) => finish(new IpcError(`${path}: ${err.message}`)));
    socket.on("close", () => finish(new IpcError(`${path}: connection closed before a response`)));
    socket.on("connect", () => socket.write(JSON.stringify(request) + "\n"));
    lineReader(
      socket,
      (line) => {
        try {
          const v = JSON.parse(line);
          if (v && typeof v === "object" && typeof v.error === "string") finish(new IpcError(v.error));
          else finish(undefined, v as JsonObject);
        } catch (err) {
          finish(new IpcError(`${path}: bad response: ${(err as Error).message}`));
        }
      },
      () => finish(new IpcError(`${path}: response too long`)),
      maxResponseBytes,
    );
  });
}
