/**
 * The queue manager's SMTP agent across a reload (src/qmgr/agents.ts): a delivery that started
 * before the reload retired its configuration completes with that configuration's tables
 * (smtp_generic_maps here); once it has ended, the tables are closed and the agent's cached
 * session is ended with QUIT. Runs the agent in the test process against a fake SMTP server on
 * 127.0.0.1, with a private configuration directory.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../../src/global/config/config.ts";
import { retireConfig } from "../../../src/global/config/generation.ts";
import { openTable } from "../../../src/global/tables/open-table.ts";
import { agentFor } from "../../../src/qmgr/agents.ts";
import { AgentBench } from "../../helpers/smtp-client-bench.ts";
import { FakeSmtpServer } from "../../helpers/smtp-server.ts";
import { waitFor } from "../../helpers/wait.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("the SMTP agent of a replaced configuration", () => {
  test("finishes a delivery in flight with its tables, then closes them and its cached session", async () => {
    const s = FakeSmtpServer.start();
    cleanups.push(() => s.stop());
    const b = new AgentBench();
    cleanups.push(() => b.close());
    const generic = join(b.dir, "generic");
    writeFileSync(generic, "his@example.test mapped@isp.example\n");
    const params: Record<string, string> = {
      queue_directory: b.dir,
      myhostname: "client.example.test",
      mydomain: "example.test",
      inet_protocols: "ipv4",
      inet_interfaces: "127.0.0.1",
      dns_servers: "127.0.0.1:9",
      smtp_generic_maps: `texthash:${generic}`,
      smtp_connection_cache_time_limit: "60s",
    };
    writeFileSync(join(b.dir, "postern.toml"), Object.entries(params).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join("\n"));
    const config = loadConfig(b.dir);
    const agent = agentFor(config, "smtp");
    const nexthop = `[127.0.0.1]:${s.port}`;

    expect((await agent.deliver(b.request({ nexthop, sender: "his@example.test" })))[0]!.status).toBe("sent");
    const table = openTable(`texthash:${generic}`, config);

    // a reload while the second delivery runs
    const second = agent.deliver(b.request({ nexthop, sender: "his@example.test" }));
    retireConfig(config);
    const [result] = await second;
    expect(result!.status).toBe("sent");
    expect(s.messages.map((m) => m.sender)).toEqual(["mapped@isp.example", "mapped@isp.example"]);
    // one connection for both: the cached session served the second delivery, and is QUIT now
    expect(s.connections).toBe(1);
    await waitFor("the cached session to be ended", () => s.commands.some((c) => c.toUpperCase() === "QUIT"), 10_000);
    await expect(table.lookup("his@example.test")).rejects.toThrow("table is closed");
  });
});
