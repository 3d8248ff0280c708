/**
 * Lookup servers for tests of the socketmap: and tcp: tables: a Sendmail
 * socketmap server (netstrings) and a Postfix tcp_table server (`get KEY`
 * lines), on 127.0.0.1 or a unix socket, answering through a handler the
 * test supplies and counting connections and requests. Run inside the test
 * process as whoever runs the tests; stopped with stop().
 */
import type { Socket, TCPSocketListener, UnixSocketListener } from "bun";

export interface LookupServer {
  /** "127.0.0.1:PORT" or the socket path. */
  readonly address: string;
  readonly port: number;
  /** Connections accepted so far. */
  connections: number;
  /** Client connections open now. */
  readonly open: number;
  /** Requests received so far, decoded. */
  requests: string[];
  /** Closes every client connection (a server restart, as the client sees it). */
  dropClients(): void;
  stop(): void;
}

/** What a handler answers: a reply text, or "silent" to never answer, or "close" to hang up. */
export type Answer = string | "silent" | "close";

interface Conn {
  input: Buffer;
}

function serve(
  where: { unix: string } | { port?: number },
  onBuffer: (s: Socket<Conn>, server: LookupServer) => void,
): LookupServer {
  const sockets = new Set<Socket<Conn>>();
  const server: LookupServer = {
    address: "",
    port: 0,
    connections: 0,
    get open() {
      return sockets.size;
    },
    requests: [],
    dropClients() {
      for (const s of sockets) s.terminate();
      sockets.clear();
    },
    stop() {
      this.dropClients();
      listener.stop(true);
    },
  };
  const socket = {
    open(s: Socket<Conn>) {
      s.data = { input: Buffer.alloc(0) };
      sockets.add(s);
      server.connections++;
    },
    data(s: Socket<Conn>, chunk: Buffer) {
      s.data.input = Buffer.concat([s.data.input, chunk]);
      onBuffer(s, server);
    },
    close(s: Socket<Conn>) {
      sockets.delete(s);
    },
  };
  const listener: TCPSocketListener<Conn> | UnixSocketListener<Conn> =
    "unix" in where ? Bun.listen<Conn>({ unix: where.unix, socket }) : Bun.listen<Conn>({ hostname: "127.0.0.1", port: where.port ?? 0, socket });
  const port = "unix" in where ? 0 : (listener as TCPSocketListener<Conn>).port;
  Object.assign(server, { address: "unix" in where ? where.unix : `127.0.0.1:${port}`, port });
  return server;
}

/** A socketmap server: `answer(mapName, key)` gives the reply netstring's content ("OK value", "NOTFOUND ", ...). */
export function startSocketmapServer(where: { unix: string } | { port?: number }, answer: (mapName: string, key: string) => Answer): LookupServer {
  return serve(where, (s, server) => {
    for (;;) {
      const m = /^(\d+):/.exec(s.data.input.toString("latin1", 0, 12));
      if (!m) return;
      const len = Number(m[1]);
      const start = m[0].length;
      if (s.data.input.length < start + len + 1) return;
      const request = s.data.input.subarray(start, start + len).toString("utf8");
      s.data.input = s.data.input.subarray(start + len + 1);
      server.requests.push(request);
      const space = request.indexOf(" ");
      const reply = answer(request.slice(0, space), request.slice(space + 1));
      if (reply === "close") return void s.terminate();
      if (reply === "silent") continue;
      const body = Buffer.from(reply, "utf8");
      s.write(Buffer.concat([Buffer.from(`${body.length}:`), body, Buffer.from(",")]));
    }
  });
}

/** A tcp_table server: `answer(key)` gives the whole reply line without its newline ("200 value%20x", "500 no", ...). */
export function startTcpTableServer(where: { port?: number }, answer: (key: string) => Answer): LookupServer {
  return serve(where, (s, server) => {
    for (;;) {
      const nl = s.data.input.indexOf(0x0a);
      if (nl < 0) return;
      const line = s.data.input.subarray(0, nl).toString("latin1");
      s.data.input = s.data.input.subarray(nl + 1);
      const key = Buffer.from(
        line.replace(/^get /, "").replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
        "latin1",
      ).toString("utf8");
      server.requests.push(key);
      const reply = answer(key);
      if (reply === "close") return void s.terminate();
      if (reply === "silent") continue;
      s.write(`${reply}\n`);
    }
  });
}
