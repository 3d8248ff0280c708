/**
 * The virtual agent's decisions, with a host that records writes instead of
 * making them: which recipients bounce (unknown user, loop), which defer
 * (uid below virtual_minimum_uid or 0, no base, bad path, a failing table),
 * and what a write is asked to do (path, uid, gid, header values). Runs as
 * any user; the queue file is a real one in a temporary queue.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { commitQueueFileSync } from "../../../src/global/queue/commit.ts";
import { encodeQueueFile } from "../../../src/global/queue/format.ts";
import type { DeliveryRequest } from "../../../src/global/delivery/types.ts";
import { createVirtualAgent, type VirtualWrite, type WriteResult } from "../../../src/virtual/agent.ts";
import { configIn } from "../../helpers/config.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const root = tempDir("postern-virtual-agent-");
afterAll(() => removeDir(root));
const queueDirectory = join(root, "queue");
mkdirSync(join(queueDirectory, "active"), { recursive: true });

function queued(content: string): { id: string; file: string } {
  const bytes = encodeQueueFile({ arrivalTime: 0, sender: "sender@example.org", recipients: [{ address: "alice@example.net" }], attributes: {}, content: Buffer.from(content) });
  const id = commitQueueFileSync(join(queueDirectory, "active"), () => bytes);
  return { id, file: join(queueDirectory, "active", id) };
}

const TABLES = `
virtual_mailbox_base = "/srv/vmail"
virtual_mailbox_maps = "inline:{alice@example.net=example.net/alice/, bob@example.net=example.net/bob, evil@example.net=example.net/../../etc/x}"
virtual_uid_maps = "inline:{alice@example.net=5000, bob@example.net=5001, evil@example.net=5000}"
virtual_gid_maps = "static:6000"
`;

async function deliver(extra: string, recipients: string[], content = "Subject: hi\n\nbody\n", opts: { fail?: WriteResult; verify?: boolean } = {}) {
  const config = configIn(root, `queue_directory = "${queueDirectory}"\n${extra}`);
  const writes: VirtualWrite[] = [];
  const agent = createVirtualAgent(config, {
    queueDirectory,
    host: {
      async write(w) {
        writes.push(w);
        return opts.fail ?? { ok: true };
      },
      deliveredTo: (c) => new Set([...Buffer.from(c).toString("latin1").matchAll(/^Delivered-To: *(.*)$/gim)].map((m) => m[1]!.toLowerCase())),
      async close() {},
    },
  });
  const { id, file } = queued(content);
  const request: DeliveryRequest = {
    queueId: id,
    queueFile: file,
    sender: "sender@example.org",
    arrivalTime: 0,
    transport: "virtual",
    nexthop: "example.net",
    recipients: recipients.map((address, index) => ({ index, address })),
    attributes: {},
    ...(opts.verify ? { verify: true } : {}),
  };
  const results = await agent.deliver(request);
  await agent.close();
  return { results, writes };
}

describe("virtual agent decisions", () => {
  test("a Maildir and an mbox user are written with the mapped uid and gid, below the base", async () => {
    const { results, writes } = await deliver(TABLES, ["Alice@Example.NET", "bob@example.net"]);
    expect(results.map((r) => [r.status, r.dsn, r.reason, r.relay])).toEqual([
      ["sent", "2.0.0", "delivered to maildir", "virtual"],
      ["sent", "2.0.0", "delivered to mailbox", "virtual"],
    ]);
    expect(writes.map((w) => [w.kind, w.path, w.uid, w.gid, w.within, w.deliveredTo])).toEqual([
      ["maildir", "/srv/vmail/example.net/alice/", 5000, 6000, "/srv/vmail", "Alice@Example.NET"],
      ["mbox", "/srv/vmail/example.net/bob", 5001, 6000, "/srv/vmail", "bob@example.net"],
    ]);
  });

  test("a recipient without a virtual_mailbox_maps entry bounces as Postfix's virtual(8) does", async () => {
    const { results, writes } = await deliver(TABLES, ["carol@example.net"]);
    expect(results[0]).toMatchObject({ status: "bounced", dsn: "5.1.1", reason: 'unknown user: "carol@example.net"', relay: "virtual" });
    expect(writes).toEqual([]);
  });

  test("a Delivered-To: header naming the recipient is a mail loop: bounce 5.4.6", async () => {
    const { results, writes } = await deliver(TABLES, ["alice@example.net"], "Delivered-To: ALICE@example.net\nSubject: hi\n\nbody\n");
    expect(results[0]).toMatchObject({ status: "bounced", dsn: "5.4.6", reason: "mail forwarding loop for alice@example.net" });
    expect(writes).toEqual([]);
  });

  test("a uid below virtual_minimum_uid defers with Postfix's words, and nothing is written", async () => {
    const { results, writes } = await deliver(`${TABLES}virtual_minimum_uid = 5001\n`, ["alice@example.net", "bob@example.net"]);
    expect(results[0]).toMatchObject({ status: "deferred", dsn: "4.3.5", reason: "mail system configuration error" });
    expect(results[1]).toMatchObject({ status: "sent" });
    expect(writes.map((w) => w.uid)).toEqual([5001]);
  });

  test("uid 0 is refused even with virtual_minimum_uid = 0", async () => {
    const { results, writes } = await deliver(`${TABLES.replace("alice@example.net=5000", "alice@example.net=0")}virtual_minimum_uid = 0\n`, ["alice@example.net"]);
    expect(results[0]).toMatchObject({ status: "deferred", dsn: "4.3.5" });
    expect(writes).toEqual([]);
  });

  test("a path that leaves the base, a missing uid or gid entry, and no base defer", async () => {
    expect((await deliver(TABLES, ["evil@example.net"])).results[0]).toMatchObject({ status: "deferred", dsn: "4.3.5" });
    const noGid = TABLES.replace('virtual_gid_maps = "static:6000"', 'virtual_gid_maps = "inline:{bob@example.net=6000}"');
    expect((await deliver(noGid, ["alice@example.net"])).results[0]).toMatchObject({ status: "deferred", dsn: "4.3.5" });
    const noBase = TABLES.replace('virtual_mailbox_base = "/srv/vmail"', "");
    const r = await deliver(noBase, ["alice@example.net"]);
    expect(r.results[0]).toMatchObject({ status: "deferred", dsn: "4.3.5" });
    expect(r.writes).toEqual([]);
  });

  test("a table that cannot be read defers; it never bounces", async () => {
    const broken = TABLES.replace(/virtual_mailbox_maps = .*/, `virtual_mailbox_maps = "texthash:${join(root, "missing")}"`);
    const { results, writes } = await deliver(broken, ["alice@example.net"]);
    expect(results[0]).toMatchObject({ status: "deferred", dsn: "4.3.5" });
    expect(writes).toEqual([]);
  });

  test("a failed write: a 4.x.x status defers, a 5.x.x bounces, with Postfix's prefixes", async () => {
    const soft = await deliver(TABLES, ["alice@example.net", "bob@example.net"], undefined, { fail: { ok: false, dsn: "4.2.0", text: "file is a symbolic link" } });
    expect(soft.results.map((r) => [r.status, r.reason])).toEqual([
      ["deferred", "maildir delivery failed: file is a symbolic link"],
      ["deferred", "delivery failed to mailbox /srv/vmail/example.net/bob: file is a symbolic link"],
    ]);
    const hard = await deliver(TABLES, ["bob@example.net"], undefined, { fail: { ok: false, dsn: "5.2.2", text: "File too large" } });
    expect(hard.results[0]).toMatchObject({ status: "bounced", dsn: "5.2.2" });
  });

  test("sendmail -bv: the lookups run, nothing is written", async () => {
    const { results, writes } = await deliver(TABLES, ["alice@example.net", "bob@example.net", "carol@example.net"], undefined, { verify: true });
    expect(results.map((r) => [r.status, r.reason])).toEqual([
      ["sent", "delivers to maildir"],
      ["sent", "delivers to mailbox"],
      ["bounced", 'unknown user: "carol@example.net"'],
    ]);
    expect(writes).toEqual([]);
  });

  test("a relative virtual_mailbox_base or no lock at all is a configuration error", () => {
    const make = (extra: string) => () => createVirtualAgent(configIn(root, `queue_directory = "${queueDirectory}"\n${extra}`), { queueDirectory, host: { write: async () => ({ ok: true }), deliveredTo: () => new Set(), close: async () => {} } });
    expect(make('virtual_mailbox_base = "vmail"')).toThrow("do not specify relative pathname");
    expect(make('virtual_mailbox_lock = ""')).toThrow("no applicable mailbox locking method");
    expect(make('virtual_mailbox_lock = "fcntl, bogus"')).toThrow('unknown value "bogus"');
  });
});
