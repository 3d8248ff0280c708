/**
 * The queue manager's decisions, driven in the test process with fake
 * agents and a fake clock (no root, no network, no daemon): deferral and the
 * backoff written as the file's mtime, expiry and the bounce, the delay
 * notice, sendmail -bv/-v reports, recipients finished before a crash not
 * delivered again, and postsuper's hold/requeue while a delivery runs. The
 * notices are checked by decoding the queue files the queue manager commits.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DeliveryAgent } from "../../../src/global/delivery/types.ts";
import type { Config } from "../../../src/global/config/config.ts";
import { readDeliveryLog } from "../../../src/global/queue/delivery-log.ts";
import { QueueManager } from "../../../src/qmgr/queue-manager.ts";
import { answerAll, contentOf, FakeAgents, FakeClock, idsIn, makePrivateQueue, mtimeOf, type Policy, readQueued, resultFor } from "../../helpers/fake-agents.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";
import { putMessage, type TestQueue } from "../../helpers/queue-fixture.ts";
import { waitFor } from "../../helpers/wait.ts";

const root = tempDir("postern-qmgr-unit-");
afterAll(() => removeDir(root));

/** A Monday at noon UTC; nothing depends on the real date. */
const START = Date.UTC(2026, 0, 5, 12, 0, 0);
const SENDER = "sender@sender.example";

interface Harness {
  queue: TestQueue;
  config: Config;
  clock: FakeClock;
  agents: FakeAgents;
  manager: QueueManager;
}

const running: Harness[] = [];
afterEach(async () => {
  for (const h of running.splice(0)) {
    // deliveries still held, and those waiting for a slot, end deferred
    h.agents.policy = (req) => answerAll(req, "deferred", "test over");
    h.agents.releaseAll();
    await h.manager.stop();
  }
});

/** A private queue, and a queue manager on it whose smtp agent is `policy`; not started. */
function harness(policy: Policy, extraConfig = "", options: { heldContentBudget?: number; local?: boolean } = {}): Harness {
  const { queue, config } = makePrivateQueue(mkdtempSync(join(root, "q-")), extraConfig);
  const clock = new FakeClock(START);
  const agents = new FakeAgents(policy);
  const { local, ...rest } = options;
  // local: the same fake answers for the local transport, as an agent that does not send the content (the local service reads the file)
  const map: Record<string, DeliveryAgent> = local ? { smtp: agents.agent, local: { deliver: agents.agent.deliver } } : { smtp: agents.agent };
  const manager = new QueueManager(config, { agents: map, now: clock.now, ...rest });
  const h = { queue, config, clock, agents, manager };
  running.push(h);
  return h;
}

/** Puts a message into incoming/ as cleanup would leave it; `ago` seconds old by the fake clock. */
function queueMessage(h: Harness, id: string, recipients: string[], ago = 60, attributes: Record<string, string> = {}): void {
  putMessage(h.queue, { queue: "incoming", id, arrival: h.clock.secondsAgo(ago), sender: SENDER, recipients: recipients.map((address) => ({ address })), content: `Subject: test ${id}\n\nbody\n`, attributes });
}

/** Notices are not the subject of the message tests: the sender's MTA takes them. */
const noticesSent = (p: Policy): Policy => (req) => (req.sender === "" ? answerAll(req, "sent", "250 ok") : p(req));

const inQueue = (h: Harness, queue: string, id: string) => idsIn(h.queue, queue).includes(id);

test("a deferral: the reason in defer/, the message in deferred/ with its next retry time (the backoff) as mtime, retried only when that time has come", async () => {
  const h = harness(noticesSent((req) => answerAll(req, "deferred", "connect to mx.remote.example[192.0.2.1]:25: Connection refused")), 'minimal_backoff_time = "300s"\nmaximal_backoff_time = "4000s"');
  queueMessage(h, "A00001", ["a@remote.example"], 100); // younger than the minimal backoff
  queueMessage(h, "A00002", ["b@remote.example"], 1000); // between the two: its age
  queueMessage(h, "A00003", ["c@remote.example"], 10_000); // older than the maximal backoff
  h.manager.start();
  for (const id of ["A00001", "A00002", "A00003"]) await waitFor(`${id} in deferred/`, () => inQueue(h, "deferred", id));
  expect(mtimeOf(h.queue, "deferred", "A00001")).toBe(START + 300_000);
  expect(mtimeOf(h.queue, "deferred", "A00002")).toBe(START + 1_000_000);
  expect(mtimeOf(h.queue, "deferred", "A00003")).toBe(START + 4_000_000);
  expect(readQueued(h.queue, "deferred", "A00001").recipients[0]!.done).toBeFalsy();
  expect(readDeliveryLog(h.queue.queueDirectory, "defer", "A00001")).toMatchObject([{ recipient: "a@remote.example", status: "4.4.1", reason: "connect to mx.remote.example[192.0.2.1]:25: Connection refused" }]);
  expect(h.agents.notices()).toHaveLength(0);

  // one second before A00001's retry time nothing is due; at it, A00001 and only it
  h.clock.advance(299);
  expect(h.manager.scanDeferred(false)).toBe(0);
  h.clock.advance(1);
  h.agents.policy = noticesSent((req) => answerAll(req, "sent", "250 2.0.0 queued"));
  expect(h.manager.scanDeferred(false)).toBe(1);
  await waitFor("A00001 removed", () => !inQueue(h, "active", "A00001") && !inQueue(h, "deferred", "A00001"));
  expect(h.agents.of("A00001")).toHaveLength(2);
  expect(h.agents.of("A00002")).toHaveLength(1);
});

test("expiry: past maximal_queue_lifetime a recipient deferred again bounces with its latest reason; the failure notice goes to the sender and the message is removed", async () => {
  const h = harness(noticesSent((req) => answerAll(req, "deferred", "host mx.remote.example[192.0.2.1] said: 451 4.3.0 try again later", "4.3.0")), 'maximal_queue_lifetime = "5d"');
  queueMessage(h, "B00001", ["late@remote.example"], 5 * 86400 + 1);
  queueMessage(h, "B00002", ["young@remote.example"], 5 * 86400 - 3600);
  h.manager.start();
  const [notice] = await h.agents.waitFor("the failure notice", (d) => d.request.sender === "");
  await waitFor("B00001 gone and B00002 deferred", () => !inQueue(h, "active", "B00001") && !inQueue(h, "deferred", "B00001") && inQueue(h, "deferred", "B00002"));
  expect(notice!.request.recipients.map((r) => r.address)).toEqual([SENDER]);
  expect(notice!.file.sender).toBe("");
  const text = contentOf(notice!);
  expect(text).toContain("Subject: Undelivered Mail Returned to Sender");
  expect(text).toContain("<late@remote.example>: host mx.remote.example[192.0.2.1] said: 451 4.3.0 try\n    again later");
  expect(text).toMatch(/Final-Recipient: rfc822; late@remote\.example\nOriginal-Recipient: [^\n]*\nAction: failed\nStatus: 4\.3\.0\n/);
  expect(text).toContain("Diagnostic-Code: smtp; 451 4.3.0 try again later");
  expect(text).toContain("Subject: test B00001");
  expect(text).not.toContain("young@remote.example");
  expect(h.agents.notices()).toHaveLength(1);
});

test("the delay notice: once, after delay_warning_time, with the current defer reason; not for younger mail, not again on the next attempt", async () => {
  const h = harness(noticesSent((req) => answerAll(req, "deferred", "connect to mx.remote.example[192.0.2.1]:25: Connection timed out")), 'delay_warning_time = "4h"');
  queueMessage(h, "C00001", ["slow@remote.example"], 5 * 3600);
  queueMessage(h, "C00002", ["fresh@remote.example"], 3 * 3600);
  h.manager.start();
  await waitFor("both deferred", () => inQueue(h, "deferred", "C00001") && inQueue(h, "deferred", "C00002"));
  // a notice is committed before its message is deferred: once incoming/ and active/ are empty it was delivered
  await waitFor("the notices delivered", () => idsIn(h.queue, "incoming").length === 0 && idsIn(h.queue, "active").length === 0 && h.agents.notices().length > 0);
  const notices = h.agents.notices();
  expect(notices).toHaveLength(1);
  const text = contentOf(notices[0]!);
  expect(notices[0]!.request.recipients.map((r) => r.address)).toEqual([SENDER]);
  expect(text).toContain("Subject: Delayed Mail (still being retried)");
  expect(text).toContain("<slow@remote.example>: connect to mx.remote.example[192.0.2.1]:25: Connection\n    timed out");
  expect(text).toMatch(/Final-Recipient: rfc822; slow@remote\.example\nOriginal-Recipient: [^\n]*\nAction: delayed\nStatus: 4\.4\.1\n/);
  expect(text).not.toContain("fresh@remote.example");
  expect(readQueued(h.queue, "deferred", "C00001").attributes.delay_warned).toBe("yes");
  expect(readQueued(h.queue, "deferred", "C00002").attributes.delay_warned).toBeUndefined();

  // the next attempt of C00001 defers again: no second notice
  h.clock.advance(4000);
  expect(h.manager.flush({ kind: "id", id: "C00001" })).toBe(1);
  await h.agents.waitFor("the second attempt", (d) => d.request.queueId === "C00001", 2);
  await waitFor("C00001 deferred again", () => inQueue(h, "deferred", "C00001") && idsIn(h.queue, "incoming").length === 0 && idsIn(h.queue, "active").length === 0);
  expect(h.agents.notices()).toHaveLength(1);
});

test("sendmail -bv: the agent is asked with verify set, every answer is final, one report goes to the sender, nothing bounces and the message is removed", async () => {
  const outcome: Record<string, ["sent" | "bounced" | "deferred", string]> = {
    "ok@good.example": ["sent", "250 2.1.5 ok"],
    "no@bad.example": ["bounced", "host mx.bad.example said: 550 5.1.1 no such user"],
    "later@slow.example": ["deferred", "host mx.slow.example said: 450 4.2.0 greylisted"],
  };
  const h = harness(noticesSent((req) => req.recipients.map((r) => resultFor(req, r.address, ...outcome[r.address]!))));
  queueMessage(h, "D00001", Object.keys(outcome), 60, { verify: "yes" });
  h.manager.start();
  const [report] = await h.agents.waitFor("the report", (d) => d.request.sender === "");
  await waitFor("D00001 removed", () => !["incoming", "active", "deferred"].some((q) => inQueue(h, q, "D00001")));
  expect(h.agents.of("D00001").every((d) => d.request.verify === true)).toBe(true);
  expect(h.agents.of("D00001").flatMap((d) => d.request.recipients.map((r) => r.address)).sort()).toEqual(Object.keys(outcome).sort());
  const text = contentOf(report!);
  expect(text).toContain("Subject: Mail Delivery Status Report");
  expect(text).toMatch(/Final-Recipient: rfc822; ok@good\.example\nOriginal-Recipient: [^\n]*\nAction: deliverable/);
  expect(text).toMatch(/Final-Recipient: rfc822; no@bad\.example\nOriginal-Recipient: [^\n]*\nAction: undeliverable/);
  expect(text).toMatch(/Final-Recipient: rfc822; later@slow\.example\nOriginal-Recipient: [^\n]*\nAction: undeliverable/);
  expect(h.agents.notices()).toHaveLength(1);
});

test("sendmail -v: the outcomes of the first attempt become one report (deferred as delayed), a V record is kept, the next attempt sends none", async () => {
  const h = harness(noticesSent((req) => req.recipients.map((r) => resultFor(req, r.address, r.address.startsWith("ok") ? "sent" : "deferred", r.address.startsWith("ok") ? "250 2.0.0 queued as X" : "450 4.2.0 greylisted"))));
  queueMessage(h, "E00001", ["ok@good.example", "later@slow.example"], 60, { record: "yes" });
  h.manager.start();
  const [report] = await h.agents.waitFor("the report", (d) => d.request.sender === "");
  await waitFor("E00001 deferred", () => inQueue(h, "deferred", "E00001"));
  const text = contentOf(report!);
  expect(text).toContain("Subject: Mail Delivery Status Report");
  expect(text).toMatch(/Final-Recipient: rfc822; ok@good\.example\nOriginal-Recipient: [^\n]*\nAction: delivered/);
  expect(text).toMatch(/Final-Recipient: rfc822; later@slow\.example\nOriginal-Recipient: [^\n]*\nAction: delayed/);
  const deferred = readQueued(h.queue, "deferred", "E00001");
  expect(deferred.attributes.record_sent).toBe("yes");
  expect(deferred.recipients.map((r) => !!r.done)).toEqual([true, false]);

  h.clock.advance(4000);
  h.manager.flush({ kind: "id", id: "E00001" });
  const [, second] = await h.agents.waitFor("the second attempt", (d) => d.request.queueId === "E00001" && d.request.recipients.some((r) => r.address.startsWith("later")), 2);
  expect(second!.request.recipients.map((r) => r.address)).toEqual(["later@slow.example"]);
  await waitFor("E00001 deferred again", () => inQueue(h, "deferred", "E00001") && idsIn(h.queue, "incoming").length === 0 && idsIn(h.queue, "active").length === 0);
  expect(h.agents.notices()).toHaveLength(1);
});

test("a recipient whose result was reported before a crash is not delivered again by the next queue manager", async () => {
  // the first queue manager: the agent reports the first recipient's 250, then hangs (the process dies there)
  const h1 = harness(noticesSent(() => "hold"));
  queueMessage(h1, "F00001", ["one@remote.example", "two@remote.example"]);
  h1.manager.start();
  const [held] = await h1.agents.waitFor("the delivery", (d) => d.request.queueId === "F00001");
  held!.report(resultFor(held!.request, "one@remote.example", "sent", "250 2.0.0 queued as X"));
  // the "crash": the first manager takes no more work; its delivery never ends while the second runs
  const stopped1 = h1.manager.stop();
  running.splice(running.indexOf(h1), 1);

  const agents2 = new FakeAgents(noticesSent((req) => answerAll(req, "sent", "250 2.0.0 queued as Y")));
  const manager2 = new QueueManager(h1.config, { agents: { smtp: agents2.agent }, now: h1.clock.now });
  running.push({ ...h1, agents: agents2, manager: manager2 });
  manager2.start(); // takes over active/, as after a restart
  await waitFor("F00001 removed", () => !inQueue(h1, "active", "F00001") && !inQueue(h1, "deferred", "F00001"));
  expect(agents2.of("F00001").flatMap((d) => d.request.recipients.map((r) => r.address))).toEqual(["two@remote.example"]);

  held!.answer(answerAll(held!.request, "deferred", "killed"));
  await stopped1;
});

for (const [action, to] of [
  ["hold", "hold"],
  ["requeue", "maildrop"],
] as const) {
  test(`postsuper ${action} while a delivery runs: the outcomes reach the moved file, the queue manager leaves it there, and a delivered recipient is not delivered again`, async () => {
    const h = harness(noticesSent(() => "hold"));
    queueMessage(h, "900001", ["one@remote.example", "two@remote.example"]);
    h.manager.start();
    const [held] = await h.agents.waitFor("the delivery", (d) => d.request.queueId === "900001");
    // postsuper's move is one rename; the agent's queue file descriptor stays open
    renameSync(join(h.queue.queueDirectory, "active", "900001"), join(h.queue.queueDirectory, to, "900001"));
    held!.answer([resultFor(held!.request, "one@remote.example", "sent", "250 2.0.0 queued as X"), resultFor(held!.request, "two@remote.example", "deferred", "451 4.3.0 later")]);
    await waitFor("the delivery recorded", () => readQueued(h.queue, to, "900001").recipients[0]!.done === true);
    // the round is over: nothing left in active/ or deferred/, the file stays where postsuper put it
    await waitFor("the round finished", () => idsIn(h.queue, "active").length === 0);
    expect(inQueue(h, "deferred", "900001")).toBe(false);
    expect(readQueued(h.queue, to, "900001").recipients.map((r) => !!r.done)).toEqual([true, false]);

    // released (hold) or picked up again (requeue): only the second recipient is delivered
    h.agents.policy = noticesSent((req) => answerAll(req, "sent", "250 2.0.0 queued as Y"));
    renameSync(join(h.queue.queueDirectory, to, "900001"), join(h.queue.queueDirectory, "incoming", "900001"));
    h.manager.scanIncoming();
    await waitFor("900001 removed", () => !["incoming", "active", "deferred"].some((q) => inQueue(h, q, "900001")));
    expect(h.agents.of("900001").map((d) => d.request.recipients.map((r) => r.address))).toEqual([["one@remote.example", "two@remote.example"], ["two@remote.example"]]);
  });
}

test("postsuper hold while a recipient bounces: the failure notice still returns the message, read from hold/ (the queue manager keeps only envelopes)", async () => {
  const h = harness(noticesSent(() => "hold"));
  queueMessage(h, "900003", ["gone@remote.example"]);
  h.manager.start();
  const [held] = await h.agents.waitFor("the delivery", (d) => d.request.queueId === "900003");
  renameSync(join(h.queue.queueDirectory, "active", "900003"), join(h.queue.queueDirectory, "hold", "900003"));
  held!.answer([resultFor(held!.request, "gone@remote.example", "bounced", "550 5.1.1 no such user")]);
  const [notice] = await h.agents.waitFor("the failure notice", (d) => d.request.sender === "");
  const text = contentOf(notice!);
  expect(text).toContain("Subject: Undelivered Mail Returned to Sender");
  expect(text).toContain("Subject: test 900003");
  expect(text).toContain("\nbody\n");
  expect(inQueue(h, "hold", "900003")).toBe(true);
});

test("a message removed while a recipient bounces: the failure notice still goes out, with Postfix's place holder for the message", async () => {
  const h = harness(noticesSent(() => "hold"));
  queueMessage(h, "900004", ["gone@remote.example"]);
  h.manager.start();
  const [held] = await h.agents.waitFor("the delivery", (d) => d.request.queueId === "900004");
  unlinkSync(join(h.queue.queueDirectory, "active", "900004"));
  held!.answer([resultFor(held!.request, "gone@remote.example", "bounced", "550 5.1.1 no such user")]);
  const [notice] = await h.agents.waitFor("the failure notice", (d) => d.request.sender === "");
  const text = contentOf(notice!);
  expect(text).toContain("Subject: Undelivered Mail Returned to Sender");
  expect(text).toContain("<gone@remote.example>: 550 5.1.1 no such user");
  expect(text).toContain("\t--- Undelivered message unavailable ---");
  expect(text).not.toContain("Subject: test 900004");
});

test("a backlog in incoming/ is activated at most ten messages per turn of the event loop, so replies of deliveries in flight are read meanwhile", async () => {
  const h = harness(noticesSent(() => "hold"));
  const ids = Array.from({ length: 25 }, (_, i) => `7${String(i).padStart(5, "0")}`);
  for (const id of ids) queueMessage(h, id, [`r${id}@remote.example`]);
  h.manager.start();
  // one observation per turn: each setImmediate of this test runs in a turn of its own
  const seen: number[] = [];
  for (let turn = 0; turn < 200 && seen.at(-1) !== ids.length; turn++) {
    await new Promise((r) => setImmediate(r));
    seen.push(idsIn(h.queue, "active").length);
  }
  expect(seen.at(-1)).toBe(ids.length);
  const steps = seen.map((n, i) => n - (seen[i - 1] ?? 0));
  expect(Math.max(...steps)).toBeLessThanOrEqual(10);
  expect(steps.filter((s) => s > 0).length).toBeGreaterThanOrEqual(3);
});

test("removing a delivered message: only the logs written for it are unlinked (new mail has none to look for); mail from deferred/ has every log tried", async () => {
  const h = harness(noticesSent((req) => (req.recipients[0]!.address.startsWith("bounce") ? answerAll(req, "bounced", "550 no such user", "5.1.1") : answerAll(req, "sent", "250 ok"))));
  const dir = h.queue.queueDirectory;
  const decoy = (queue: string, id: string) => writeFileSync(join(dir, queue, id), "");
  // files the queue manager never wrote for these new messages: removal does not look for them (no unlink of a
  // missing log per message), so they stay
  queueMessage(h, "D00001", ["a@remote.example"]);
  for (const q of ["defer", "bounce", "trace"]) decoy(q, "D00001");
  // a bounced recipient: its bounce/ log is written, turned into the notice, and removed with the message
  queueMessage(h, "D00002", ["bounce@remote.example"]);
  decoy("trace", "D00002");
  h.manager.start();
  await waitFor("D00001 and D00002 removed", () => !["incoming", "active"].some((q) => inQueue(h, q, "D00001") || inQueue(h, q, "D00002")));
  await waitFor("the failure notice delivered", () => idsIn(h.queue, "incoming").length === 0 && idsIn(h.queue, "active").length === 0);
  expect(h.agents.notices()).toHaveLength(1);
  expect(["defer", "bounce", "trace"].filter((q) => existsSync(join(dir, q, "D00001")))).toEqual(["defer", "bounce", "trace"]);
  expect(existsSync(join(dir, "bounce", "D00002"))).toBe(false);
  expect(existsSync(join(dir, "trace", "D00002"))).toBe(true);

  // from deferred/ (an earlier round, or a restart): which logs exist is not known, and every one is removed
  putMessage(h.queue, { queue: "deferred", id: "D00003", arrival: h.clock.secondsAgo(600), sender: SENDER, recipients: [{ address: "c@remote.example" }], content: "Subject: c\n\nbody\n", defer: [{ recipient: "c@remote.example", reason: "earlier" }] });
  decoy("trace", "D00003");
  h.manager.scanDeferred(true);
  await waitFor("D00003 removed", () => !inQueue(h, "active", "D00003") && !inQueue(h, "deferred", "D00003"));
  expect(["defer", "bounce", "trace"].filter((q) => existsSync(join(dir, q, "D00003")))).toEqual([]);
});

test("a destination's next delivery starts without waiting for the previous one's D-record fsync; that message is finished after it, and stop() waits for it", async () => {
  // what active/ holds at the moment each delivery reaches the agent
  const activeAt = new Map<string, string[]>();
  const h = harness(
    noticesSent((req) => {
      activeAt.set(req.queueId, idsIn(h.queue, "active"));
      return "hold";
    }),
    "smtp_destination_concurrency_limit = 1",
  );
  queueMessage(h, "B00001", ["a@one.example"]);
  queueMessage(h, "B00002", ["b@one.example"]);
  h.manager.start();
  const [first] = await h.agents.waitFor("the first delivery", () => true);
  const firstId = first!.request.queueId;
  const secondId = firstId === "B00001" ? "B00002" : "B00001";
  // both messages are active and the second waits for the destination's one slot
  await waitFor("both messages active", () => idsIn(h.queue, "active").length === 2);
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  expect(h.agents.of(secondId)).toHaveLength(0);
  first!.answer(answerAll(first!.request, "sent", "250 2.0.0 ok"));
  const [second] = await h.agents.waitFor("the second delivery", (d) => d.request.queueId === secondId);
  // the slot was handed on as soon as the outcome was recorded, before the fsync let the first message finish
  expect(activeAt.get(secondId)).toContain(firstId);
  second!.answer(answerAll(second!.request, "sent", "250 2.0.0 ok"));
  await h.manager.stop();
  running.splice(running.indexOf(h), 1);
  expect(idsIn(h.queue, "active")).toEqual([]);
});

test("a small message's content comes with its delivery request, as activation read it; a large one's agent reads the file; neither is held after the round", async () => {
  const h = harness(noticesSent(() => "hold"));
  queueMessage(h, "C00001", ["a@one.example"]);
  const big = `Subject: big\n\n${"x".repeat(99)}\n`.repeat(200); // 20 KB: more than the one read of a small file
  putMessage(h.queue, { queue: "incoming", id: "C00002", arrival: h.clock.secondsAgo(60), sender: SENDER, recipients: [{ address: "b@two.example" }], content: big });
  h.manager.start();
  const ds = await h.agents.waitFor("both deliveries", () => true, 2);
  const small = ds.find((d) => d.request.queueId === "C00001")!;
  const large = ds.find((d) => d.request.queueId === "C00002")!;
  expect(Buffer.from(small.request.content!()!).toString()).toBe("Subject: test C00001\n\nbody\n");
  expect(Buffer.from(small.request.content!()!).toString()).toBe(contentOf(small));
  expect(large.request.content?.()).toBeUndefined();
  for (const d of [small, large]) d.answer(answerAll(d.request, "sent", "250 2.0.0 ok"));
  await waitFor("both removed", () => idsIn(h.queue, "active").length === 0);
  // released when the round finished
  expect(small.request.content!()).toBeUndefined();
});

test("a round of deliveries that do not send the content (local) gives its share of the budget back at once", async () => {
  // each content is 27 bytes: one fits in 30
  const h = harness(noticesSent(() => "hold"), "", { heldContentBudget: 30, local: true });
  queueMessage(h, "E00001", ["someone@localhost"]);
  h.manager.start();
  const [first] = await h.agents.waitFor("the local delivery", (d) => d.request.queueId === "E00001");
  expect(first!.request.transport).toBe("local");
  expect(first!.request.content).toBeUndefined();
  // E00001's round is still in progress; its content went back, so the next small message gets some
  queueMessage(h, "E00002", ["e2@remote.example"]);
  h.manager.scanIncoming();
  const [second] = await h.agents.waitFor("the smtp delivery", (d) => d.request.queueId === "E00002");
  expect(Buffer.from(second!.request.content!()!).toString()).toBe("Subject: test E00002\n\nbody\n");
  for (const d of [first!, second!]) d.answer(answerAll(d.request, "sent", "250 2.0.0 ok"));
  await waitFor("both removed", () => idsIn(h.queue, "active").length === 0);
});

test("the content held for deliveries stays within its budget: past it a message's agent reads the file; a finished round gives its share back", async () => {
  // each content is 27 bytes ("Subject: test D0000N\n\nbody\n"): two fit in 60, a third does not
  const h = harness(noticesSent(() => "hold"), "", { heldContentBudget: 60 });
  for (const id of ["D00001", "D00002", "D00003"]) queueMessage(h, id, [`${id.toLowerCase()}@${id.toLowerCase()}.example`]);
  h.manager.start();
  const ds = await h.agents.waitFor("three deliveries", () => true, 3);
  expect(ds.map((d) => d.request.content?.() !== undefined).sort()).toEqual([false, true, true]);
  for (const d of ds) expect(Buffer.from(d.request.content?.() ?? d.file.content).toString()).toBe(contentOf(d));
  for (const d of ds) d.answer(answerAll(d.request, "sent", "250 2.0.0 ok"));
  await waitFor("all removed", () => idsIn(h.queue, "active").length === 0);
  queueMessage(h, "D00004", ["d4@d4.example"]);
  h.manager.scanIncoming();
  const [fourth] = await h.agents.waitFor("the fourth delivery", (d) => d.request.queueId === "D00004");
  expect(Buffer.from(fourth!.request.content!()!).toString()).toBe("Subject: test D00004\n\nbody\n");
  fourth!.answer(answerAll(fourth!.request, "sent", "250 2.0.0 ok"));
});
