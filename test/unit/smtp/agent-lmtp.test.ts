/**
 * The LMTP client: unix-domain and TCP destinations, LHLO, and one reply
 * per recipient after the end of data.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { useAgentTests } from "../../helpers/smtp-client-bench.ts";

const { server, bench, scratch } = useAgentTests({ lmtp: true });
const socketPath = () => join(scratch("postern-lmtp-"), "lmtp");

describe("LMTP", () => {
  test("over a unix socket: LHLO, and a result per recipient after DATA", async () => {
    const path = socketPath();
    const s = server({
      unix: path,
      onData: (m) => m.recipients.map((r) => (r.startsWith("full") ? `552 5.2.2 <${r}> Mailbox is full` : r.startsWith("busy") ? `451 4.2.0 <${r}> Mailbox locked` : `250 2.0.0 <${r}> Saved`)),
    });
    const b = bench();
    const results = await b.deliver({ nexthop: `unix:${path}`, recipients: ["ok@example.test", "full@example.test", "busy@example.test", "gone@example.test"], transport: "lmtp" });
    s.stop();
    const relay = `client.example.test[${path}]`;
    expect(s.commands[0]).toBe("LHLO client.example.test");
    expect(results).toEqual([
      { index: 0, status: "sent", dsn: "2.0.0", reason: "250 2.0.0 <ok@example.test> Saved", relay, action: "relayed" },
      { index: 1, status: "bounced", dsn: "5.2.2", reason: `host ${relay} said: 552 5.2.2 <full@example.test> Mailbox is full (in reply to end of DATA command)`, relay },
      { index: 2, status: "deferred", dsn: "4.2.0", reason: `host ${relay} said: 451 4.2.0 <busy@example.test> Mailbox locked (in reply to end of DATA command)`, relay },
      { index: 3, status: "sent", dsn: "2.0.0", reason: "250 2.0.0 <gone@example.test> Saved", relay, action: "relayed" },
    ]);
  });

  test("a relative unix: path is under the queue directory", async () => {
    const b = bench();
    const path = join(b.dir, "private", "dovecot-lmtp");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(join(b.dir, "private"));
    const s = server({ unix: path });
    const [r] = await b.deliver({ nexthop: "unix:private/dovecot-lmtp", transport: "lmtp" });
    expect(r).toMatchObject({ status: "sent", relay: "client.example.test[private/dovecot-lmtp]" });
    expect(s.messages).toHaveLength(1);
  });

  test("a missing socket defers", async () => {
    const b = bench();
    const path = join(b.dir, "nothing-here");
    const [r] = await b.deliver({ nexthop: `unix:${path}`, transport: "lmtp" });
    expect(r!.status).toBe("deferred");
    expect(r!.reason).toStartWith(`connect to client.example.test[${path}]: `);
  });

  test("over TCP (inet:host:port)", async () => {
    const s = server();
    const b = bench();
    const [r] = await b.deliver({ nexthop: `inet:127.0.0.1:${s.port}`, transport: "lmtp" });
    expect(r).toMatchObject({ status: "sent", relay: `127.0.0.1[127.0.0.1]:${s.port}` });
    expect(s.commands[0]).toBe("LHLO client.example.test");
  });

  test("LHLO refused", async () => {
    const s = server({ onCommand: (verb) => (verb === "LHLO" ? "500 5.5.1 Command unrecognized" : undefined) });
    const b = bench();
    const [r] = await b.deliver({ nexthop: `inet:127.0.0.1:${s.port}`, transport: "lmtp" });
    expect(r).toMatchObject({ status: "bounced", dsn: "5.5.1", reason: "host 127.0.0.1[127.0.0.1] refused to talk to me: 500 5.5.1 Command unrecognized" });
  });

  test("several deliveries reuse the connection", async () => {
    const path = socketPath();
    const s = server({ unix: path });
    const b = bench();
    for (let i = 0; i < 3; i++) expect((await b.deliver({ nexthop: `unix:${path}`, transport: "lmtp" }))[0]!.status).toBe("sent");
    expect(s.connections).toBe(1);
  });
});
