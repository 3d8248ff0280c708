/**
 * An after-queue content filter for the tests (FILTER_README's "advanced"
 * kind): an SMTP server on 127.0.0.1 that takes a message from postern's
 * queue manager, adds a header, and re-injects it over SMTP into postern's
 * re-injection listener with the same envelope, answering 250 only once the
 * re-injection was accepted (451 otherwise), as a content filter must.
 * Started and stopped by the test (a server in the test process).
 */
import { createServer, type Server, type Socket } from "node:net";
import { RawSmtp } from "./smtpd-system.ts";

export interface FilterProxy {
  port: number;
  /** Messages it took, with the envelope it was given. */
  received: Array<{ sender: string; recipients: string[] }>;
  stop(): Promise<void>;
}

/** Re-injects `data` (CRLF lines, dot-stuffed, without the final dot) to `port`; true on 250. */
async function reinject(port: number, sender: string, recipients: string[], data: string): Promise<boolean> {
  const c = await RawSmtp.connect(port);
  try {
    if (!(await c.reply()).startsWith("220")) return false;
    if (!(await c.cmd("EHLO filter.test")).startsWith("250")) return false;
    if (!(await c.cmd(`MAIL FROM:<${sender}>`)).startsWith("250")) return false;
    for (const r of recipients) if (!(await c.cmd(`RCPT TO:<${r}>`)).startsWith("250")) return false;
    if (!(await c.cmd("DATA")).startsWith("354")) return false;
    return (await c.cmd(`${data}\r\n.`)).startsWith("250");
  } finally {
    await c.quit();
  }
}

/** Starts the proxy on `port` (0: any free port); `header` goes on top of each message. */
export async function startFilterProxy(reinjectPort: number, header: string, port = 0): Promise<FilterProxy> {
  const received: FilterProxy["received"] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => {});
    let buf = "";
    let inData = false;
    let sender = "";
    let recipients: string[] = [];
    const say = (line: string) => sock.write(`${line}\r\n`);
    say("220 filter.test ESMTP test content filter");
    sock.on("data", async (d: Buffer) => {
      buf += d.toString("latin1");
      for (;;) {
        if (inData) {
          const end = buf.indexOf("\r\n.\r\n");
          if (end < 0) return;
          const data = buf.slice(0, end);
          buf = buf.slice(end + 5);
          inData = false;
          received.push({ sender, recipients });
          const ok = await reinject(reinjectPort, sender, recipients, `${header}\r\n${data}`).catch(() => false);
          say(ok ? "250 2.0.0 Ok: filtered and re-injected" : "451 4.3.0 Error: re-injection failed");
          continue;
        }
        const nl = buf.indexOf("\r\n");
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === "EHLO" || verb === "HELO") say("250 filter.test");
        else if (verb === "MAIL") {
          sender = /<([^>]*)>/.exec(line)?.[1] ?? "";
          recipients = [];
          say("250 2.1.0 Ok");
        } else if (verb === "RCPT") {
          recipients.push(/<([^>]*)>/.exec(line)?.[1] ?? "");
          say("250 2.1.5 Ok");
        } else if (verb === "DATA") {
          inData = true;
          say("354 End data with <CR><LF>.<CR><LF>");
        } else if (verb === "QUIT") {
          say("221 2.0.0 Bye");
          sock.end();
          return;
        } else say("250 2.0.0 Ok");
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  return {
    port: typeof addr === "object" && addr ? addr.port : port,
    received,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
