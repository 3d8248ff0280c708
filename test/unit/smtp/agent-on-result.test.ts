/**
 * The agent reports each recipient's final result through the request's
 * onResult as soon as it has it (when the transaction that decided it ends:
 * the 250 to the end of data), once, before deliver() resolves: the queue manager records it right
 * then, so a crash after the next hop's 250 does not repeat the delivery.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { RecipientResult } from "../../../src/global/delivery/types.ts";
import { FakeSmtpServer } from "../../helpers/smtp-server.ts";
import { AgentBench } from "../../helpers/smtp-client-bench.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("onResult", () => {
  test("each final result once, before deliver() resolves, equal to the returned results", async () => {
    const s = FakeSmtpServer.start({ onRcpt: (a) => (a.startsWith("bad") ? "550 5.1.1 <bad@example.org>: User unknown" : undefined) });
    cleanups.push(() => s.stop());
    const b = new AgentBench();
    cleanups.push(() => b.close());
    const reported: RecipientResult[] = [];
    let resolved = false;
    const request = { ...b.request({ nexthop: `[127.0.0.1]:${s.port}`, recipients: ["good@example.org", "bad@example.org", "good2@example.org"] }), onResult: (r: RecipientResult) => void (!resolved && reported.push(r)) };
    const results = await b.agent.deliver(request);
    resolved = true;
    expect(results.map((r) => r.status)).toEqual(["sent", "bounced", "sent"]);
    expect([...reported].sort((x, y) => x.index - y.index)).toEqual(results);
  });

  test("a second delivery on the cached connection reports its own results only", async () => {
    const s = FakeSmtpServer.start();
    cleanups.push(() => s.stop());
    const b = new AgentBench({ smtp_connection_cache_time_limit: "10s" });
    cleanups.push(() => b.close());
    for (const n of [1, 2]) {
      const reported: RecipientResult[] = [];
      const results = await b.agent.deliver({ ...b.request({ nexthop: `[127.0.0.1]:${s.port}` }), onResult: (r) => void reported.push(r) });
      expect([n, reported]).toEqual([n, results]);
    }
    expect(s.connections).toBe(1);
  });
});
