/**
 * local(8)'s hand-over to another transport (mailbox_transport,
 * fallback_transport and their _maps; Postfix's deliver_pass): which
 * recipients are passed, to what, and in which order of precedence. The
 * agent runs unprivileged, as the user running the tests, with a passwd
 * file of the test's own; the queue manager's half is
 * test/unit/qmgr/pass-on.test.ts.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { createLocalAgent, type LocalAgent } from "../../../src/local/agent.ts";
import { memoryTable, passwdFile, queueMessage, testSite, type TestSite } from "../../helpers/local-delivery.ts";
import { removeDir } from "../../helpers/run.ts";

const uid = process.getuid!();
const gid = process.getgid!();
const sites: TestSite[] = [];
const agents: LocalAgent[] = [];

afterAll(async () => {
  for (const a of agents) await a.close();
  for (const s of sites) removeDir(s.dir);
});

function setup(settings: Record<string, string>, tables: Record<string, Record<string, string>> = {}) {
  const base = testSite();
  sites.push(base);
  const spool = join(base.dir, "spool");
  mkdirSync(spool);
  const site = testSite({ mail_spool_directory: spool, alias_maps: "memory:aliases", local_recipient_maps: "memory:aliases", recipient_delimiter: "+", ...settings }, base.dir);
  const home = join(base.dir, "home", "alice");
  mkdirSync(home, { recursive: true });
  const pw = passwdFile(base.dir, [`alice:x:${uid}:${gid}:Alice:${home}:/bin/sh`, `bob:x:${uid}:${gid}:Bob:${home}:/bin/sh`]);
  const agent = createLocalAgent(site.config, {
    privileged: false,
    passwdFile: pw,
    openTable: (spec) => {
      if (spec === "memory:broken") throw new Error("memory:broken: table lookup failed");
      return memoryTable(spec, tables[spec] ?? {});
    },
  });
  agents.push(agent);
  return { site, agent, spool, home };
}

const pending = (transport: string) => ({ status: "deferred", dsn: "4.3.0", reason: `not yet passed to transport ${transport}` });

describe("mailbox_transport", () => {
  test("takes precedence over mailbox_command and home_mailbox: the recipient is passed, nothing is written", async () => {
    const { site, agent, spool, home } = setup({ mailbox_transport: "lmtp:inet:127.0.0.1:24", mailbox_command: "/bin/false", home_mailbox: "Maildir/" });
    const req = await queueMessage(site, { recipients: ["alice+x@mail.example.test"], content: "Subject: s\n\nb\n" });
    const [r] = await agent.deliver(req);
    expect(r).toMatchObject({ index: 0, ...pending("lmtp"), expanded: [], passOn: [{ address: "alice+x@mail.example.test", transport: "lmtp", nexthop: "inet:127.0.0.1:24" }] });
    expect(existsSync(join(home, "Maildir"))).toBe(false);
    expect(existsSync(join(spool, "alice"))).toBe(false);
  });

  test("applies after alias expansion, to each local address, and to a user without a passwd entry; a bare transport keeps the request's next hop", async () => {
    const { site, agent } = setup({ mailbox_transport: "lmtp", fallback_transport: "smtp:[fallback.example]" }, { "memory:aliases": { team: "alice, carol", carol: "carol" } });
    const req = await queueMessage(site, { recipients: ["team@mail.example.test"], content: "S: s\n\nb\n" });
    const [r] = await agent.deliver(req);
    expect(r!.passOn).toEqual([
      { address: "alice@mail.example.test", transport: "lmtp", nexthop: "mail.example.test" },
      { address: "carol@mail.example.test", transport: "lmtp", nexthop: "mail.example.test" },
    ]);
    expect(r!.status).toBe("deferred");
  });

  test("mailbox_transport_maps per user first, mailbox_transport for the others; a failed lookup defers 4.3.0", async () => {
    const { site, agent, spool } = setup({ mailbox_transport_maps: "memory:mt", mailbox_transport: "" }, { "memory:mt": { alice: "lmtp:unix:private/dovecot-lmtp" } });
    const [a, b] = await agent.deliver(await queueMessage(site, { recipients: ["alice@mail.example.test", "bob@mail.example.test"], content: "S: s\n\nb\n" }));
    expect(a!.passOn).toEqual([{ address: "alice@mail.example.test", transport: "lmtp", nexthop: "unix:private/dovecot-lmtp" }]);
    expect(b).toMatchObject({ status: "sent", reason: "delivered to mailbox" });
    expect(b!.passOn).toBeUndefined();
    expect(existsSync(join(spool, "bob"))).toBe(true);
    expect(existsSync(join(spool, "alice"))).toBe(false);

    const both = setup({ mailbox_transport_maps: "memory:mt", mailbox_transport: "smtp:[other.example]" }, { "memory:mt": { alice: "lmtp:inet:127.0.0.1:24" } });
    const rs = await both.agent.deliver(await queueMessage(both.site, { recipients: ["alice@mail.example.test", "bob@mail.example.test"], content: "S: s\n\nb\n" }));
    expect(rs.map((r) => r.passOn?.[0])).toEqual([
      { address: "alice@mail.example.test", transport: "lmtp", nexthop: "inet:127.0.0.1:24" },
      { address: "bob@mail.example.test", transport: "smtp", nexthop: "[other.example]" },
    ]);

    const broken = setup({ mailbox_transport_maps: "memory:broken", mailbox_transport: "lmtp" });
    const [c] = await broken.agent.deliver(await queueMessage(broken.site, { recipients: ["alice@mail.example.test"], content: "S: s\n\nb\n" }));
    expect(c).toMatchObject({ status: "deferred", dsn: "4.3.0", reason: "table lookup failure" });
    expect(c!.passOn).toBeUndefined();
  });
});

describe("fallback_transport", () => {
  test("only for users not in the passwd file, before luser_relay; known users get their mailbox", async () => {
    const { site, agent, spool } = setup({ fallback_transport: "lmtp:inet:127.0.0.1:24", luser_relay: "postmaster" });
    const [known, unknown] = await agent.deliver(await queueMessage(site, { recipients: ["alice@mail.example.test", "nobody-here@mail.example.test"], content: "S: s\n\nb\n" }));
    expect(known).toMatchObject({ status: "sent", reason: "delivered to mailbox" });
    expect(known!.passOn).toBeUndefined();
    expect(existsSync(join(spool, "alice"))).toBe(true);
    expect(unknown).toMatchObject({ ...pending("lmtp"), passOn: [{ address: "nobody-here@mail.example.test", transport: "lmtp", nexthop: "inet:127.0.0.1:24" }] });
  });

  test("fallback_transport_maps per user first, then fallback_transport; without either, 5.1.1", async () => {
    const { site, agent } = setup({ fallback_transport_maps: "memory:ft", fallback_transport: "discard:gone" }, { "memory:ft": { carol: "lmtp:inet:127.0.0.1:24" } });
    const rs = await agent.deliver(await queueMessage(site, { recipients: ["carol@mail.example.test", "dave@mail.example.test"], content: "S: s\n\nb\n" }));
    expect(rs.map((r) => r.passOn)).toEqual([
      [{ address: "carol@mail.example.test", transport: "lmtp", nexthop: "inet:127.0.0.1:24" }],
      [{ address: "dave@mail.example.test", transport: "discard", nexthop: "gone" }],
    ]);
    const plain = setup({});
    const [r] = await plain.agent.deliver(await queueMessage(plain.site, { recipients: ["dave@mail.example.test"], content: "S: s\n\nb\n" }));
    expect(r).toMatchObject({ status: "bounced", dsn: "5.1.1" });
  });

  test("mailbox_transport takes precedence: an unknown user goes there, not to fallback_transport", async () => {
    const { site, agent } = setup({ mailbox_transport: "lmtp:inet:127.0.0.1:24", fallback_transport: "smtp:[fallback.example]" });
    const [r] = await agent.deliver(await queueMessage(site, { recipients: ["dave@mail.example.test"], content: "S: s\n\nb\n" }));
    expect(r!.passOn).toEqual([{ address: "dave@mail.example.test", transport: "lmtp", nexthop: "inet:127.0.0.1:24" }]);
  });
});
