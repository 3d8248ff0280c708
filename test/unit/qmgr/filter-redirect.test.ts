/**
 * The queue manager's side of content_filter and REDIRECT, driven in the
 * test process with a fake smtp agent (no root, no network): a message with
 * the `filter` attribute goes, with its recipients unresolved, to the
 * filter's transport and next hop (or default_filter_nexthop, or the
 * recipient's domain); a filter that defers keeps the message queued; a
 * sendmail -bv probe is not filtered; a message with `redirect` goes to that
 * address once, its other recipients dropped, and a redirect wins over a
 * filter.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { QueueManager } from "../../../src/qmgr/queue-manager.ts";
import { answerAll, FakeAgents, FakeClock, idsIn, makePrivateQueue, type Policy } from "../../helpers/fake-agents.ts";
import { putMessage } from "../../helpers/queue-fixture.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";
import { waitFor } from "../../helpers/wait.ts";

const root = tempDir("postern-qmgr-filter-");
afterAll(() => removeDir(root));

const START = Date.UTC(2026, 0, 5, 12, 0, 0);
const running: Array<{ agents: FakeAgents; manager: QueueManager }> = [];
afterEach(async () => {
  for (const h of running.splice(0)) {
    h.agents.policy = (req) => answerAll(req, "deferred", "test over");
    h.agents.releaseAll();
    await h.manager.stop();
  }
});

/** A queue manager whose every transport (smtp, and "filter") is the fake agent; one message queued with `attributes`. */
function run(policy: Policy, recipients: string[], attributes: Record<string, string>, extraConfig = "") {
  const { queue, config } = makePrivateQueue(mkdtempSync(join(root, "q-")), `relayhost = "[relay.test.example]"\n${extraConfig}`);
  const clock = new FakeClock(START);
  const agents = new FakeAgents(policy);
  const manager = new QueueManager(config, { agents: { smtp: agents.agent, filter: agents.agent }, now: clock.now });
  running.push({ agents, manager });
  putMessage(queue, { queue: "incoming", id: "F00001", arrival: Math.floor(START / 1000) - 10, sender: "s@sender.example", recipients: recipients.map((address) => ({ address })), content: "Subject: t\n\nbody\n", attributes });
  manager.start();
  const gone = () => waitFor("F00001 finished", () => ["incoming", "active", "deferred"].every((q) => !idsIn(queue, q).includes("F00001")));
  return { agents, queue, gone };
}

const sent: Policy = (req) => answerAll(req, "sent", "250 ok");

test("filter: every recipient, unresolved, to the filter's transport and next hop in one request", async () => {
  const { agents, gone } = run(sent, ["a@one.example", "b@two.example"], { filter: "smtp:[127.0.0.1]:10025" });
  const [d] = await agents.waitFor("the filter delivery", (x) => x.request.queueId === "F00001");
  await gone();
  expect(d!.request.transport).toBe("smtp");
  expect(d!.request.nexthop).toBe("[127.0.0.1]:10025");
  expect(d!.request.recipients.map((r) => r.address)).toEqual(["a@one.example", "b@two.example"]);
  expect(agents.of("F00001")).toHaveLength(1);
});

test("filter without a next hop: default_filter_nexthop, else the recipient's domain", async () => {
  const a = run(sent, ["a@one.example"], { filter: "filter:" }, 'default_filter_nexthop = "scanner.test.example"\n');
  const [d1] = await a.agents.waitFor("the filter delivery", (x) => x.request.queueId === "F00001");
  expect([d1!.request.transport, d1!.request.nexthop]).toEqual(["filter", "scanner.test.example"]);
  const b = run(sent, ["a@one.example"], { filter: "filter:" });
  const [d2] = await b.agents.waitFor("the filter delivery", (x) => x.request.queueId === "F00001");
  expect([d2!.request.transport, d2!.request.nexthop]).toEqual(["filter", "one.example"]);
});

test("a filter that defers keeps the message queued, still for the filter", async () => {
  const { agents, queue } = run((req) => answerAll(req, "deferred", "connect to 127.0.0.1[127.0.0.1]:10025: Connection refused"), ["a@one.example"], { filter: "smtp:[127.0.0.1]:10025" });
  await agents.waitFor("the filter delivery", (x) => x.request.queueId === "F00001");
  await waitFor("F00001 deferred", () => idsIn(queue, "deferred").includes("F00001"));
  expect(agents.of("F00001").every((d) => d.request.nexthop === "[127.0.0.1]:10025")).toBe(true);
});

test("a sendmail -bv probe is not filtered", async () => {
  const { agents, gone } = run(sent, ["a@one.example"], { filter: "smtp:[127.0.0.1]:10025", verify: "yes" });
  const [d] = await agents.waitFor("the probe", (x) => x.request.queueId === "F00001");
  await gone();
  expect(d!.request.nexthop).toBe("[relay.test.example]");
});

test("redirect: one delivery to the redirect address, the other recipients dropped; it wins over a filter", async () => {
  const { agents, gone } = run(sent, ["a@one.example", "b@two.example", "c@three.example"], { redirect: "x@target.example", filter: "smtp:[127.0.0.1]:10025" });
  await gone();
  const deliveries = agents.of("F00001");
  expect(deliveries).toHaveLength(1);
  expect(deliveries[0]!.request.recipients.map((r) => [r.address, r.original])).toEqual([["x@target.example", "a@one.example"]]);
  expect(deliveries[0]!.request.nexthop).toBe("[relay.test.example]");
  expect(agents.notices()).toHaveLength(0);
});
