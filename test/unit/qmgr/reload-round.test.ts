/**
 * A reload in the middle of the queue manager's scheduling round: the round resolves every
 * recipient with the configuration it started with, whose tables (relocated_maps here, a socketmap
 * server in the test process) stay open until the round ends, and close after it. The "reload" is
 * the retirement of that configuration, done by the socketmap server while it answers the first
 * recipient's lookup. The server counts the table's connections. Fake agents, a private queue, no
 * daemon.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { retireConfig } from "../../../src/global/config/generation.ts";
import { openTable } from "../../../src/global/tables/open-table.ts";
import { QueueManager } from "../../../src/qmgr/queue-manager.ts";
import { answerAll, FakeAgents, FakeClock, idsIn, makePrivateQueue } from "../../helpers/fake-agents.ts";
import { startSocketmapServer } from "../../helpers/lookup-servers.ts";
import { putMessage } from "../../helpers/queue-fixture.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";
import { waitFor } from "../../helpers/wait.ts";

const root = tempDir("postern-qmgr-reload-");
let retire = () => {};
const server = startSocketmapServer({}, () => {
  retire();
  return "NOTFOUND ";
});
afterAll(() => {
  server.stop();
  removeDir(root);
});

test("a round keeps its configuration's tables through a reload, and they close when it ends", async () => {
  const spec = `socketmap:inet:${server.address}:relocated`;
  const { queue, config } = makePrivateQueue(mkdtempSync(join(root, "q-")), `relocated_maps = "${spec}"`);
  retire = () => {
    retire = () => {};
    retireConfig(config);
  };
  const clock = new FakeClock(Date.UTC(2026, 0, 5, 12, 0, 0));
  const agents = new FakeAgents((req) => answerAll(req, "sent", "250 ok"));
  const manager = new QueueManager(config, { agents: { smtp: agents.agent }, now: clock.now });
  const table = openTable(spec, config);
  putMessage(queue, { queue: "incoming", id: "B00001", arrival: clock.secondsAgo(10), sender: "s@sender.example", recipients: [{ address: "a@remote.example" }, { address: "b@remote.example" }], content: "Subject: r\n\nbody\n", attributes: {} });
  manager.start();
  try {
    await waitFor("the message to be delivered", () => !idsIn(queue, "active").includes("B00001") && !idsIn(queue, "incoming").includes("B00001"));
    // both recipients were looked up (the second after the reload) and delivered
    expect(server.requests).toEqual(["relocated a@remote.example", "relocated b@remote.example"]);
    expect(agents.deliveries.flatMap((d) => d.request.recipients.map((r) => r.address)).sort()).toEqual(["a@remote.example", "b@remote.example"]);
    expect(idsIn(queue, "deferred")).toEqual([]);
    // one table, one connection, closed with the round (a table closed under the round and opened
    // again for the second recipient would leave a second connection open)
    await expect(table.lookup("c@remote.example")).rejects.toThrow("table is closed");
    expect(server.connections).toBe(1);
    await waitFor("the table's connection to close", () => server.open === 0, 5000).catch(() => undefined);
    expect(server.open).toBe(0);
  } finally {
    await manager.stop();
  }
});
