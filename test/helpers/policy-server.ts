/**
 * A policy server for the tests (SMTPD_POLICY_README's protocol): reads
 * `name=value` requests ended by an empty line and answers each with the
 * text `answer` gives (undefined: no answer at all, for timeouts). Listens
 * on 127.0.0.1 or a unix socket; counts connections; stopped by the test.
 */
import { createServer, type Server, type Socket } from "node:net";

export interface PolicyServer {
  /** inet:127.0.0.1:PORT or unix:PATH, as check_policy_service takes it. */
  address: string;
  requests: Array<Map<string, string>>;
  connections: number;
  closed: number;
  stop(): Promise<void>;
}

/** `answer` gives the reply text for each request (undefined: never answer). */
export async function startPolicyServer(answer: (req: Map<string, string>) => string | undefined, unixPath?: string): Promise<PolicyServer> {
  const requests: Array<Map<string, string>> = [];
  const sockets = new Set<Socket>();
  const state = { connections: 0, closed: 0 };
  const server: Server = createServer((sock) => {
    state.connections++;
    sockets.add(sock);
    sock.on("close", () => {
      state.closed++;
      sockets.delete(sock);
    });
    sock.on("error", () => {});
    let buf = "";
    sock.on("data", (d) => {
      buf += d.toString("utf8");
      for (let end = buf.indexOf("\n\n"); end >= 0; end = buf.indexOf("\n\n")) {
        const req = new Map(buf.slice(0, end).split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as [string, string]));
        buf = buf.slice(end + 2);
        requests.push(req);
        const reply = answer(req);
        if (reply !== undefined) sock.write(reply);
      }
    });
  });
  await new Promise<void>((resolve) => (unixPath ? server.listen(unixPath, resolve) : server.listen(0, "127.0.0.1", resolve)));
  const addr = server.address();
  return {
    address: unixPath ? `unix:${unixPath}` : `inet:127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`,
    requests,
    get connections() {
      return state.connections;
    },
    get closed() {
      return state.closed;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
