/**
 * What a reload leaves open in the queue manager and in local: each reload names other hash:
 * tables for the resolver (relocated_maps) and the SMTP client (smtp_generic_maps), and a message
 * relayed to the Python sink after it is resolved and sent with them; or other alias_maps, and a
 * message to an alias is delivered with them. The tables of the replaced configurations must be
 * closed (their index files no longer open in the process, /proc/PID/fd), while the current
 * ones serve.
 *
 * Root only (the system drops to mail_owner, which reads the world-readable tables under etc/).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureMailOwner, HOST, isRoot, MailSystem, mboxMessages, message, TestUsers, waitFor } from "../../helpers/mail-system.ts";
import { run } from "../../helpers/run.ts";
import { relayToSink, type RelayToSink } from "../../helpers/relay-sink.ts";

let bench: RelayToSink;

async function hashTable(name: string, text: string): Promise<string> {
  const path = bench.sys.etcFile(name, text);
  const r = await bench.sys.postern(["postmap", `hash:${path}`]);
  if (r.code !== 0) throw new Error(`postmap: ${r.stderr}`);
  return `hash:${path}`;
}

/** Names generation `g`'s tables in the configuration, reloads, and waits until the queue manager has taken it. */
async function reloadWith(g: string): Promise<void> {
  const { sys } = bench;
  sys.writeConfig({
    relocated_maps: await hashTable(`reloc-${g}`, `gone@remote.example ${g}@elsewhere.example\n`),
    smtp_generic_maps: await hashTable(`generic-${g}`, `his@${HOST} ${g}@isp.example\n`),
  });
  await reload(sys, "qmgr");
}

/** The reloc-*, generic-* and aliases-* index files `role` has open now. */
function openTables(sys: MailSystem, role: string): string[] {
  const pid = sys.roles().get(role);
  if (pid === undefined) throw new Error(`no ${role} process`);
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /\/((?:reloc|generic|aliases)-\w+)\.sqlite$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.push(m[1]!);
    } catch {}
  }
  return out.sort();
}

/** Reloads `sys` and waits until `role` has re-read its configuration. */
async function reload(sys: MailSystem, role: string): Promise<void> {
  // the queue manager runs on demand: one that is down reads the new configuration when it starts
  if (role === "qmgr") await sys.wakeQueueManager();
  const re = new RegExp(`${role}\\[\\d+\\]: reload: configuration re-read`, "g");
  const count = () => sys.log().match(re)?.length ?? 0;
  const before = count();
  const r = await sys.postern(["reload"]);
  if (r.code !== 0) throw new Error(`postern reload: ${r.stderr}`);
  await waitFor(`${role} to re-read its configuration`, () => count() > before);
}

describe.skipIf(!isRoot)("the queue manager across reloads", () => {
  beforeAll(async () => {
    // every recipient is relayed to the sink: the host's own domain is not a local destination here
    bench = await relayToSink({ mynetworks: "127.0.0.0/8", mydestination: "" });
  }, 60_000);
  afterAll(() => bench?.stop(), 30_000);

  test("the resolver's and the SMTP client's tables of replaced configurations are closed", async () => {
    for (const g of ["g1", "g2", "g3", "g4"]) {
      await reloadWith(g);
      await bench.sys.send(["friend@remote.example"], message(`reload-${g}`), { sender: `his@${HOST}` });
      expect((await bench.atSink(`reload-${g}`)).mail_from).toBe(`${g}@isp.example`);
    }
    // the last delivery may still hold its configuration for a moment
    await waitFor("only the current tables open", () => openTables(bench.sys, "qmgr").join() === "generic-g4,reloc-g4", 10_000).catch(() => undefined);
    expect(openTables(bench.sys, "qmgr")).toEqual(["generic-g4", "reloc-g4"]);
  }, 90_000);
});

describe.skipIf(!isRoot)("local across reloads", () => {
  const users = new TestUsers("prl");
  let sys: MailSystem;
  let user: string;

  beforeAll(async () => {
    ensureMailOwner();
    sys = new MailSystem();
    user = users.add("a", join(sys.dir, "home")).name;
    await sys.start();
  }, 60_000);
  afterAll(async () => {
    await sys?.cleanup();
    users.removeAll();
  }, 30_000);

  test("the alias tables of replaced configurations are closed", async () => {
    const mbox = join(sys.spool, user);
    for (const g of ["l1", "l2", "l3"]) {
      const aliases = sys.etcFile(`aliases-${g}`, `team-${g}: ${user}\n`);
      const built = await run("postalias", ["-c", sys.etc, aliases]);
      if (built.code !== 0) throw new Error(`postalias: ${built.stderr}`);
      sys.writeConfig({ alias_maps: `hash:${aliases}` });
      // local runs on demand: the first message starts it, later ones find it running
      if (sys.roles().has("local")) await reload(sys, "local");
      else await sys.postern(["reload"]);
      await sys.send([`team-${g}@${HOST}`], message(`alias-${g}`));
      await waitFor(`alias-${g} in ${mbox}`, () => mboxMessages(mbox).some((m) => m.includes(`Subject: alias-${g}\n`)));
    }
    await waitFor("only the current aliases open", () => openTables(sys, "local").join() === "aliases-l3", 10_000).catch(() => undefined);
    expect(openTables(sys, "local")).toEqual(["aliases-l3"]);
  }, 90_000);

  test("a delivery in flight across a reload finishes with its aliases, which close after it", async () => {
    const shared = join(sys.dir, "shared");
    mkdirSync(shared, { recursive: true });
    chmodSync(shared, 0o1777);
    const started = join(shared, "started");
    const go = join(shared, "go");
    // the alias's command waits (bounded) for the test's word; the user after it is looked up in alias_maps again
    const script = sys.etcFile("wait.sh", `touch ${started}\ni=0\nwhile [ ! -e ${go} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\ncat > /dev/null\n`);
    const aliases = sys.etcFile("aliases-s1", `slow: "|/bin/sh ${script}", ${user}\n`);
    expect((await run("postalias", ["-c", sys.etc, aliases])).code).toBe(0);
    sys.writeConfig({ alias_maps: `hash:${aliases}` });
    await reload(sys, "local");
    await sys.send([`slow@${HOST}`], message("alias-in-flight"));
    await waitFor("the alias's command to start", () => existsSync(started));
    const next = sys.etcFile("aliases-s2", `other: ${user}\n`);
    expect((await run("postalias", ["-c", sys.etc, next])).code).toBe(0);
    sys.writeConfig({ alias_maps: `hash:${next}` });
    await reload(sys, "local");
    expect(openTables(sys, "local")).toContain("aliases-s1");
    writeFileSync(go, "");
    const mbox = join(sys.spool, user);
    await waitFor("alias-in-flight in the user's mailbox", () => mboxMessages(mbox).some((m) => m.includes("Subject: alias-in-flight\n")));
    await waitFor("the old aliases to close", () => !openTables(sys, "local").includes("aliases-s1"), 10_000).catch(() => undefined);
    expect(openTables(sys, "local")).not.toContain("aliases-s1");
    expect(sys.log()).not.toContain("alias database unavailable");
  }, 90_000);
});
