/**
 * The queue manager's half of local(8)'s hand-over (qmgr/pass-on.ts): each
 * passed-on address goes to its transport's agent as a one-recipient
 * request, and the answers join the recipient's other final deliveries; a
 * pass to local itself or to a transport postern lacks defers 4.3.5, and a
 * malformed answer defers. The agents are fakes that record their requests.
 */
import { describe, expect, test } from "bun:test";
import type { DeliveryAgent, DeliveryRequest, RecipientResult } from "../../../src/global/delivery/types.ts";
import { completePasses } from "../../../src/qmgr/pass-on.ts";

const request: DeliveryRequest = {
  queueId: "4ABC",
  queueFile: "/q/active/4ABC",
  sender: "s@example.org",
  arrivalTime: 0,
  transport: "local",
  nexthop: "mail.example.test",
  recipients: [{ index: 3, address: "team@mail.example.test", original: "team@mail.example.test", notify: ["FAILURE"] }],
  attributes: {},
  onResult: () => {},
};

function fakeAgents(answer: (req: DeliveryRequest) => Partial<RecipientResult>) {
  const seen: DeliveryRequest[] = [];
  const agentFor = (transport: string): DeliveryAgent => ({
    async deliver(req) {
      seen.push({ ...req, transport: `${transport}|${req.transport}` });
      return req.recipients.map((r) => ({ index: r.index, status: "sent", dsn: "2.0.0", reason: "ok", relay: "x", ...answer(req) }) as RecipientResult);
    },
  });
  return { seen, agentFor };
}

const localAnswer = (passOn: unknown, expanded: RecipientResult["expanded"] = []): RecipientResult =>
  ({ index: 3, status: "deferred", dsn: "4.3.0", reason: "not yet passed to transport lmtp", relay: "local", expanded, passOn }) as RecipientResult;

describe("completePasses", () => {
  test("a result without passOn is left as it is, and no agent is asked", async () => {
    const { seen, agentFor } = fakeAgents(() => ({}));
    const r: RecipientResult = { index: 3, status: "sent", dsn: "2.0.0", reason: "delivered to mailbox", relay: "local" };
    expect(await completePasses(agentFor, request, r)).toBe(r);
    expect(seen).toEqual([]);
  });

  test("each passed address goes to its transport with its next hop, one recipient per request; the answer is the recipient's result", async () => {
    const { seen, agentFor } = fakeAgents((req) => ({ reason: `250 2.1.5 ${req.recipients[0]!.address} Ok`, relay: "127.0.0.1[127.0.0.1]:2424" }));
    const r = await completePasses(agentFor, request, localAnswer([{ address: "alice@mail.example.test", transport: "lmtp", nexthop: "inet:127.0.0.1:2424" }]));
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ transport: "lmtp|lmtp", nexthop: "inet:127.0.0.1:2424", queueFile: "/q/active/4ABC", sender: "s@example.org" });
    expect(seen[0]!.recipients).toEqual([{ index: 3, address: "alice@mail.example.test", original: "team@mail.example.test", notify: ["FAILURE"] }]);
    expect(seen[0]!.onResult).toBeUndefined();
    expect(r).toMatchObject({ index: 3, status: "sent", dsn: "2.0.0", reason: "250 2.1.5 alice@mail.example.test Ok", relay: "127.0.0.1[127.0.0.1]:2424" });
    expect(r.passOn).toBeUndefined();
    expect(r.expanded).toEqual([{ address: "alice@mail.example.test", status: "sent", dsn: "2.0.0", reason: "250 2.1.5 alice@mail.example.test Ok", action: undefined, relay: "127.0.0.1[127.0.0.1]:2424", transport: "lmtp" }]);
  });

  test("joined with local deliveries: deferred if any is, bounced only if every one is", async () => {
    const mbox = { address: "bob@mail.example.test", status: "sent" as const, dsn: "2.0.0", reason: "delivered to mailbox", action: "delivered" };
    const bounced = fakeAgents(() => ({ status: "bounced", dsn: "5.1.1", reason: "550 5.1.1 no such user" }));
    const r = await completePasses(bounced.agentFor, request, localAnswer([{ address: "alice@mail.example.test", transport: "lmtp", nexthop: "h" }], [mbox]));
    expect(r.status).toBe("sent");
    expect(r.expanded!.map((f) => [f.address, f.status, f.relay ?? "local"])).toEqual([
      ["bob@mail.example.test", "sent", "local"],
      ["alice@mail.example.test", "bounced", "x"],
    ]);
    const deferred = fakeAgents(() => ({ status: "deferred", dsn: "4.4.1", reason: "connect refused" }));
    expect(await completePasses(deferred.agentFor, request, localAnswer([{ address: "alice@mail.example.test", transport: "lmtp", nexthop: "h" }], [mbox]))).toMatchObject({ status: "deferred", dsn: "4.4.1", reason: "connect refused" });
  });

  test("a pass to local itself, or to a transport postern does not have, defers 4.3.5 and asks no agent", async () => {
    for (const transport of ["local", "pipe", "cyrus"]) {
      const { seen, agentFor } = fakeAgents(() => ({}));
      const r = await completePasses(agentFor, request, localAnswer([{ address: "alice@mail.example.test", transport, nexthop: "h" }]));
      expect(r).toMatchObject({ status: "deferred", dsn: "4.3.5", reason: "mail system configuration error" });
      expect(seen).toEqual([]);
    }
  });

  test("a malformed passOn defers the recipient and asks no agent", async () => {
    for (const bad of [[], "lmtp", [{ address: 1, transport: "lmtp", nexthop: "h" }], [{ address: "a@b", transport: "lmtp" }], Array.from({ length: 1001 }, () => ({ address: "a@b", transport: "lmtp", nexthop: "h" }))]) {
      const { seen, agentFor } = fakeAgents(() => ({}));
      const r = await completePasses(agentFor, request, localAnswer(bad));
      expect(r).toMatchObject({ status: "deferred", dsn: "4.3.0" });
      expect(r.passOn).toBeUndefined();
      expect(seen).toEqual([]);
    }
  });
});
