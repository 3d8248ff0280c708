/**
 * serveJsonLines (src/global/ipc/json-lines.ts): a handler learns who is
 * asking from the kernel, pipelined requests are answered in order one per
 * turn of the event loop, and a client with more than
 * MAX_PIPELINED_REQUESTS waiting is cut off.
 */
import { afterAll, expect, test } from "bun:test";
import { lstatSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { MAX_PIPELINED_REQUESTS, requestJsonLine, serveJsonLines } from "../../../../src/global/ipc/json-lines.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";

const dir = tempDir("postern-json-lines-");
afterAll(() => removeDir(dir));

/** Writes `text` on a new connection and collects what comes back until the server closes it. */
function exchange(path: string, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    let got = "";
    s.setEncoding("utf8");
    s.on("connect", () => s.write(text));
    s.on("data", (d: string) => {
      got += d;
      if (got.split("\n").length > 3) s.end();
    });
    s.on("error", () => {});
    s.on("close", () => resolve(got));
  });
}

test("the handler gets the peer's credentials; the socket has its mode", async () => {
  const path = join(dir, "peer");
  const server = await serveJsonLines(path, 0o660, async (req, peer) => ({ echo: req.n as number, uid: peer?.uid ?? -1, pid: peer?.pid ?? -1 }));
  try {
    expect(lstatSync(path).mode & 0o777).toBe(0o660);
    expect(await requestJsonLine(path, { n: 7 })).toEqual({ echo: 7, uid: process.getuid!(), pid: process.pid });
  } finally {
    server.close();
  }
});

test("pipelined requests are answered in order; more than the limit closes the connection", async () => {
  const path = join(dir, "pipe");
  let served = 0;
  const server = await serveJsonLines(path, 0o600, async (req) => {
    served++;
    return { n: req.n as number };
  });
  try {
    const three = [1, 2, 3].map((n) => JSON.stringify({ n })).join("\n") + "\n";
    expect(await exchange(path, three)).toBe('{"n":1}\n{"n":2}\n{"n":3}\n');
    served = 0;
    const flood = Array.from({ length: 10 * MAX_PIPELINED_REQUESTS }, (_, n) => JSON.stringify({ n })).join("\n") + "\n";
    await exchange(path, flood);
    expect(served).toBeLessThanOrEqual(MAX_PIPELINED_REQUESTS);
  } finally {
    server.close();
  }
});
