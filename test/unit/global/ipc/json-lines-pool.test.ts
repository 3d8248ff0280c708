import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { JsonLinePool } from "../../../../src/global/ipc/json-lines-pool.ts";
import { serveJsonLines } from "../../../../src/global/ipc/json-lines.ts";
import { tempDir } from "../../../helpers/run.ts";

const dir = tempDir("postern-ipc-pool-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A server that counts the connections it accepted. */
async function countingServer(path: string, handler: (req: Record<string, unknown>) => Promise<Record<string, unknown>>): Promise<{ server: Server; accepted: () => number }> {
  const server = await serveJsonLines(path, 0o600, handler);
  let accepted = 0;
  server.on("connection", () => accepted++);
  return { server, accepted: () => accepted };
}

describe("JsonLinePool", () => {
  // issue 16: the queue manager opened a socket to the local service for every delivery
  test("sequential requests share one connection", async () => {
    const path = join(dir, "seq");
    const { server, accepted } = await countingServer(path, async (req) => ({ echo: req.n }));
    const pool = new JsonLinePool();
    try {
      for (let n = 0; n < 20; n++) expect(await pool.request(path, { n })).toEqual({ echo: n });
      expect(pool.opened).toBe(1);
      expect(accepted()).toBe(1);
    } finally {
      pool.close();
      server.close();
    }
  });

  test("concurrent requests each get their own answer, on as many connections as are in flight", async () => {
    const path = join(dir, "concurrent");
    const { server } = await countingServer(path, async (req) => {
      await Bun.sleep(Number(req.delay));
      return { echo: req.n };
    });
    const pool = new JsonLinePool();
    try {
      const answers = await Promise.all([0, 1, 2, 3, 4].map((n) => pool.request(path, { n, delay: (5 - n) * 10 })));
      expect(answers).toEqual([0, 1, 2, 3, 4].map((n) => ({ echo: n })));
      expect(pool.opened).toBe(5);
      // all five are kept: the next five need no new connection
      await Promise.all([0, 1, 2, 3, 4].map((n) => pool.request(path, { n, delay: 1 })));
      expect(pool.opened).toBe(5);
    } finally {
      pool.close();
      server.close();
    }
  });

  test("an error answer is an IpcError and leaves the connection usable", async () => {
    const path = join(dir, "error");
    const { server } = await countingServer(path, async (req) => {
      if (req.fail) throw new Error("refused");
      return { ok: true };
    });
    const pool = new JsonLinePool();
    try {
      await expect(pool.request(path, { fail: true })).rejects.toThrow("refused");
      expect(await pool.request(path, {})).toEqual({ ok: true });
      expect(pool.opened).toBe(1);
    } finally {
      pool.close();
      server.close();
    }
  });

  test("a kept connection the server drops is replaced, and the request answered on a new one", async () => {
    const path = join(dir, "drop");
    // a service that goes away: each connection answers its first request and is dropped at its second
    const server = createServer((socket) => {
      let requests = 0;
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => {
        for (const _line of chunk.split("\n").slice(0, -1)) {
          if (++requests === 1) socket.write(`${JSON.stringify({ answered: true })}\n`);
          else socket.destroy();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const pool = new JsonLinePool();
    try {
      expect(await pool.request(path, {})).toEqual({ answered: true });
      expect(await pool.request(path, {})).toEqual({ answered: true });
      expect(pool.opened).toBe(2);
    } finally {
      pool.close();
      server.close();
    }
  });

  test("no answer within the time limit is an error, and the connection is not reused", async () => {
    const path = join(dir, "slow");
    const { server } = await countingServer(path, async () => {
      await Bun.sleep(500);
      return { late: true };
    });
    const pool = new JsonLinePool();
    try {
      await expect(pool.request(path, {}, 50)).rejects.toThrow("no response within 50 ms");
      expect(await pool.request(path, {}, 2000)).toEqual({ late: true });
      expect(pool.opened).toBe(2);
    } finally {
      pool.close();
      server.close();
    }
  });
});
