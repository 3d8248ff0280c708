import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connectTo, listenConnections, type Connection } from "../../../../src/util/net/connection.ts";

const FIX = join(import.meta.dir, "../../../fixtures/tls");
const key = readFileSync(join(FIX, "localhost.key"), "utf8");
const cert = readFileSync(join(FIX, "localhost.crt"), "utf8");

/** Collects a connection's input as text and lets a test wait for a pattern. */
function reader(conn: Connection) {
  let text = "";
  const waiters: Array<{ re: RegExp; resolve: (m: string) => void }> = [];
  conn.onData((chunk) => {
    text += Buffer.from(chunk).toString("latin1");
    for (const w of [...waiters]) {
      const m = w.re.exec(text);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m[0]);
      }
    }
  });
  return {
    get text() {
      return text;
    },
    waitFor(re: RegExp): Promise<string> {
      const m = re.exec(text);
      if (m) return Promise.resolve(m[0]);
      return new Promise((resolve, reject) => {
        waiters.push({ re, resolve });
        setTimeout(() => reject(new Error(`timed out waiting for ${re} in ${JSON.stringify(text.slice(-200))}`)), 10_000);
      });
    },
    reset() {
      text = "";
    },
  };
}

describe("Connection", () => {
  test("STARTTLS on both sides; plaintext sent after STARTTLS never reaches the server as data", async () => {
    const seen: string[] = [];
    const listener = listenConnections({ hostname: "127.0.0.1", port: 0 }, (conn) => {
      conn.write("220 ready\r\n");
      let buf = "";
      let upgraded = false;
      conn.onData(async (chunk) => {
        buf += Buffer.from(chunk).toString("latin1");
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl + 1);
          buf = buf.slice(nl + 1);
          seen.push(line.trim());
          if (line.startsWith("STARTTLS") && !upgraded) {
            upgraded = true;
            buf = ""; // what was pipelined after STARTTLS is discarded
            conn.write("220 go ahead\r\n");
            const info = await conn.startTls({ isServer: true, key, cert });
            expect(info.protocol).toMatch(/^TLSv1\.[23]$/);
            return;
          }
          if (line.startsWith("EHLO")) conn.write(`250 secure=${conn.secure}\r\n`);
        }
      });
    });
    const client = await connectTo({ hostname: "127.0.0.1", port: listener.port });
    const r = reader(client);
    await r.waitFor(/220 ready\r\n/);
    client.write("STARTTLS\r\nEHLO smuggled\r\n");
    await r.waitFor(/220 go ahead\r\n/);
    const info = await client.startTls({ isServer: false, rejectUnauthorized: false, serverName: "localhost" });
    expect(info.authorized).toBe(false); // self-signed, not in the trust store
    expect(info.authorizationError).toBeTruthy();
    r.reset();
    client.write("EHLO real\r\n");
    expect(await r.waitFor(/250 secure=\w+\r\n/)).toBe("250 secure=true\r\n");
    expect(seen).toEqual(["STARTTLS", "EHLO real"]);
    await client.end();
    listener.stop(true);
  });

  test("a large write is delivered whole through partial writes", async () => {
    const size = 8 * 1024 * 1024;
    const received = new Promise<number>((resolve) => {
      const listener = listenConnections({ hostname: "127.0.0.1", port: 0 }, (conn) => {
        let n = 0;
        conn.onData((chunk) => {
          n += chunk.length;
          if (n >= size) {
            resolve(n);
            listener.stop(true);
          }
        });
      });
      connectTo({ hostname: "127.0.0.1", port: listener.port }).then(async (c) => {
        c.write(new Uint8Array(size).fill(65));
        await c.flushed();
        await c.end();
      });
    });
    expect(await received).toBe(size);
  });

  test("implicit TLS: the server writes its greeting as soon as it gets the connection", async () => {
    const listener = listenConnections({ hostname: "127.0.0.1", port: 0, tls: { key, cert } }, (conn) => {
      expect(conn.secure).toBe(true);
      conn.write("220 tls greeting\r\n");
    });
    const client = await connectTo({ hostname: "127.0.0.1", port: listener.port, tls: { rejectUnauthorized: false, serverName: "localhost" } });
    expect(client.secure).toBe(true);
    const r = reader(client);
    expect(await r.waitFor(/220 tls greeting\r\n/)).toBe("220 tls greeting\r\n");
    client.destroy();
    listener.stop(true);
  });

  test("verification against a CA file succeeds for the right name", async () => {
    const listener = listenConnections({ hostname: "127.0.0.1", port: 0, tls: { key, cert } }, (conn) => conn.write("220 x\r\n"));
    const client = await connectTo({ hostname: "127.0.0.1", port: listener.port, tls: { ca: cert, serverName: "localhost", rejectUnauthorized: false } });
    expect(client.tls?.authorized).toBe(true);
    client.destroy();
    listener.stop(true);
  });

  test("connection refused is an error", async () => {
    const listener = listenConnections({ hostname: "127.0.0.1", port: 0 }, () => {});
    const port = listener.port;
    listener.stop(true);
    await expect(connectTo({ hostname: "127.0.0.1", port, timeoutMs: 5000 })).rejects.toThrow();
  });
});
