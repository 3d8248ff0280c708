/**
 * The local delivery agent in verify mode (sendmail -bv), unprivileged:
 * the same lookups and expansions as a delivery (aliases, .forward,
 * :include:, the mailbox), each leaf answered in Postfix's words ("delivers
 * to mailbox", "delivers to maildir", "delivers to file: PATH", "delivers to
 * command: CMD", "forwards to ADDRESS", unknown user), and nothing written,
 * run or forwarded: the test tree is compared before and after.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLocalAgent, type LocalAgent } from "../../../src/local/agent.ts";
import type { DeliveryRequest } from "../../../src/global/delivery/types.ts";
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

function setup(settings: Record<string, string | number | boolean> = {}, aliases: Record<string, string> = {}) {
  const base = testSite();
  sites.push(base);
  const dir = base.dir;
  const spool = join(dir, "spool");
  mkdirSync(spool);
  const site = testSite({ mail_spool_directory: spool, alias_maps: "memory:aliases", recipient_delimiter: "+", ...settings }, dir);
  const home = (user: string) => join(dir, "home", user);
  for (const u of ["alice", "bob"]) mkdirSync(home(u), { recursive: true });
  const pw = passwdFile(dir, [`alice:x:${uid}:${gid}:Alice:${home("alice")}:/bin/sh`, `bob:x:${uid}:${gid}:Bob:${home("bob")}:/bin/bash`]);
  const agent = createLocalAgent(site.config, { privileged: false, passwdFile: pw, openTable: (spec) => memoryTable(spec, aliases) });
  agents.push(agent);
  return { site, agent, dir, spool, home };
}

/** Every path under `dir` with its size and mtime: what a delivery would change. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = statSync(p);
      out.push(`${p} ${e.isDirectory() ? "dir" : st.size} ${st.mtimeMs}`);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

async function verify(agent: LocalAgent, req: DeliveryRequest) {
  return agent.deliver({ ...req, verify: true });
}

const answers = (r: Awaited<ReturnType<typeof verify>>[number]) => (r.expanded ?? []).map((e) => `${e.address} ${e.status} ${e.dsn} ${e.reason}`);

describe("verify mode says what a delivery would do, and does nothing", () => {
  test("a user's mailbox: 'delivers to mailbox', and no mailbox is made", async () => {
    const { site, agent, dir } = setup();
    const req = await queueMessage(site, { recipients: [{ address: "alice@mail.example.test", original: "alice" }], content: "Subject: probe\n" });
    const before = snapshot(dir);
    const [r] = await verify(agent, req);
    expect(r).toMatchObject({ index: 0, status: "sent", dsn: "2.0.0", reason: "delivers to mailbox", relay: "local" });
    expect(snapshot(dir)).toEqual(before);
    // the same request delivered for real writes the mailbox: the snapshot above can see it
    await agent.deliver(req);
    expect(snapshot(dir)).not.toEqual(before);
  });

  test("home_mailbox Maildir/: 'delivers to maildir', no Maildir made", async () => {
    const { site, agent, dir } = setup({ home_mailbox: "Maildir/" });
    const req = await queueMessage(site, { recipients: ["bob+lists@mail.example.test"], content: "Subject: probe\n" });
    const before = snapshot(dir);
    expect(await verify(agent, req)).toMatchObject([{ status: "sent", reason: "delivers to maildir" }]);
    expect(snapshot(dir)).toEqual(before);
  });

  test("mailbox_command: 'delivers to command: CMD', not run", async () => {
    const dir = setup().dir;
    const { site, agent } = setup({ mailbox_command: `touch ${dir}/ran-$USER` });
    const req = await queueMessage(site, { recipients: ["alice@mail.example.test"], content: "Subject: probe\n" });
    const before = snapshot(dir);
    expect(await verify(agent, req)).toMatchObject([{ status: "sent", reason: `delivers to command: touch ${dir}/ran-$USER` }]);
    expect(snapshot(dir)).toEqual(before);
  });

  test("an unknown user is undeliverable with Postfix's 5.1.1", async () => {
    const { site, agent } = setup();
    const [r] = await verify(agent, await queueMessage(site, { recipients: ["nosuch@mail.example.test"], content: "Subject: probe\n" }));
    expect(r).toMatchObject({ status: "bounced", dsn: "5.1.1", reason: 'unknown user: "nosuch"' });
  });

  test("an alias: each address of its expansion, files, commands, :include: and other domains, nothing written or queued", async () => {
    const base = setup();
    const dir = base.dir;
    writeFileSync(join(dir, "members"), `bob\n${dir}/inc.mbox\n`);
    const { site, agent } = setup({ allow_mail_to_files: "alias, forward, include" }, {
      staff: "alice, bob, nosuch",
      big: `alice, ${dir}/list.mbox, ${dir}/md/, "|cat > ${dir}/cmd.out", far@remote.example, far@remote.example, :include:${dir}/members`,
    });
    const req = await queueMessage(site, {
      recipients: [
        { address: "staff@mail.example.test", original: "staff" },
        { address: "big@mail.example.test", original: "big" },
      ],
      content: "Subject: probe\n",
    });
    const before = snapshot(dir);
    const [staff, big] = await verify(agent, req);
    expect(answers(staff!)).toEqual([
      "alice@mail.example.test sent 2.0.0 delivers to mailbox",
      "bob@mail.example.test sent 2.0.0 delivers to mailbox",
      'nosuch@mail.example.test bounced 5.1.1 unknown user: "nosuch"',
    ]);
    expect(answers(big!)).toEqual([
      "alice@mail.example.test sent 2.0.0 delivers to mailbox",
      `big@mail.example.test sent 2.0.0 delivers to file: ${dir}/list.mbox`,
      `big@mail.example.test sent 2.0.0 delivers to file: ${dir}/md/`,
      `big@mail.example.test sent 2.0.0 delivers to command: cat > ${dir}/cmd.out`,
      // the same address twice is one answer, as Postfix's duplicate filter makes it
      "far@remote.example sent 2.0.0 forwards to far@remote.example",
      // :include: members that are local users go out as a new message: "forwards to"
      "bob@mail.example.test sent 2.0.0 forwards to bob@mail.example.test",
      `big@mail.example.test sent 2.0.0 delivers to file: ${dir}/inc.mbox`,
    ]);
    expect(snapshot(dir)).toEqual(before);
    expect(readdirSync(join(site.queueDirectory, "incoming"))).toEqual([]);
  });

  test("policy still applies: a .forward file under allow_mail_to_files = alias is restricted", async () => {
    const { site, agent, dir, home } = setup({ allow_mail_to_files: "alias" });
    writeFileSync(join(home("alice"), ".forward"), `${dir}/fwd.mbox, "|cat > ${dir}/fwd.out", \\alice\n`);
    const req = await queueMessage(site, { recipients: ["alice@mail.example.test"], content: "Subject: probe\n" });
    const before = snapshot(dir);
    const [r] = await verify(agent, req);
    expect(answers(r!)).toEqual([
      "alice@mail.example.test bounced 5.7.1 mail to file is restricted",
      `alice@mail.example.test sent 2.0.0 delivers to command: cat > ${dir}/fwd.out`,
      "alice@mail.example.test sent 2.0.0 delivers to mailbox",
    ]);
    expect(snapshot(dir)).toEqual(before);
  });
});
