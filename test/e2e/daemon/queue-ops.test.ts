/**
 * Changing the queue while the system runs: postsuper -h/-H/-d/-r on
 * deferred mail, `postern reload` picking up changed parameters, and a
 * restart with mail queued (deferred before the stop, submitted while the
 * system was down). Mail is held back by a transport_maps `retry:` entry
 * that the test switches with postmap and reload.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { run } from "../../helpers/run.ts";
import { ensureMailOwner, HOST, isRoot, MailSystem, maildirMessages, mboxMessages, message, TestUsers, waitFor, type Params } from "../../helpers/mail-system.ts";

const users = new TestUsers("pdq");
const systems: MailSystem[] = [];
afterAll(async () => {
  await Promise.all(systems.map((s) => s.cleanup()));
  users.removeAll();
});

/** A system whose transport_maps can switch users' mail off (retry:) and on again. */
class SwitchedSystem extends MailSystem {
  readonly transport: string;
  constructor(params: Params) {
    super(params);
    this.transport = join(this.etc, "transport");
    this.writeConfig({ transport_maps: `hash:${this.transport}` });
  }

  /** Rebuilds the map so that mail to `blocked` waits; with `reload`, the running system is told. */
  async block(blocked: PasswdEntry[], reload = true): Promise<void> {
    this.etcFile("transport", blocked.map((u) => `${u.name}@${HOST}\tretry:4.3.2 switched off by the test\n`).join("") || "# nothing\n");
    const built = await run("postmap", ["-c", this.etc, this.transport]);
    if (built.code !== 0) throw new Error(`postmap: ${built.stderr}`);
    if (reload) await this.reload();
  }

  /** postern reload, returning once the queue manager and (if it runs) the local service have re-read the configuration. */
  async reload(): Promise<void> {
    const from = this.log().length;
    // local runs on demand: one that is not running reads the configuration when it starts
    const localRuns = this.roles().has("local");
    const r = await this.postern(["reload"]);
    if (r.code !== 0) throw new Error(`postern reload: ${r.stderr}`);
    await this.waitForLog(/postfix\/qmgr\[\d+\]: reload: configuration re-read/, 30_000, from);
    if (localRuns) await this.waitForLog(/postfix\/local\[\d+\]: reload: configuration re-read/, 30_000, from);
  }

  /** Waits until the message is in deferred/ after a deferral by the test's retry: entry. */
  async deferredId(subject: string): Promise<string> {
    const id = await this.queueIdOf(subject);
    await this.waitForLog(new RegExp(`${id}: to=<[^>]+>, orig_to=<[^>]+>, relay=none, .*status=deferred \\(switched off by the test\\)`));
    await waitFor(`${id} in deferred/`, () => this.queueIds("deferred").includes(id));
    return id;
  }
}

function newSystem(params: Params = {}): SwitchedSystem {
  ensureMailOwner();
  const sys = new SwitchedSystem(params);
  systems.push(sys);
  return sys;
}

function inMbox(sys: MailSystem, user: PasswdEntry, subject: string): Promise<string> {
  const path = join(sys.spool, user.name);
  return waitFor(`"${subject}" in ${path}`, () => mboxMessages(path).find((m) => m.includes(`Subject: ${subject}\n`)));
}

function hasMail(sys: MailSystem, user: PasswdEntry, subject: string): boolean {
  return mboxMessages(join(sys.spool, user.name)).some((m) => m.includes(`Subject: ${subject}\n`));
}

/** Log lines of the queue manager about `id` after character `from`. */
function activations(sys: MailSystem, id: string, from = 0): number {
  return sys.log().slice(from).split("\n").filter((l) => l.includes(`${id}: from=<`) && l.includes("(queue active)")).length;
}

describe.skipIf(!isRoot)("postsuper while the system runs (retries only on request)", () => {
  let sys: SwitchedSystem;
  let hold: PasswdEntry, del: PasswdEntry, requeue: PasswdEntry, control: PasswdEntry;

  beforeAll(async () => {
    sys = newSystem({ minimal_backoff_time: "1h", maximal_backoff_time: "2h", queue_run_delay: "1h" });
    const homes = join(sys.dir, "home");
    hold = users.add("h", homes);
    del = users.add("d", homes);
    requeue = users.add("r", homes);
    control = users.add("c", homes);
    await sys.block([hold, del, requeue, control], false);
    await sys.start();
  });

  test("-h holds deferred mail: postqueue -f leaves it alone; -H releases it and postern flush delivers it", async () => {
    await sys.send([hold.name], message("held1"));
    await sys.send([control.name], message("control1"));
    const id = await sys.deferredId("held1");
    await sys.deferredId("control1");
    const r = await run("postsuper", ["-c", sys.etc, "-h", id]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`postsuper: ${id}: placed on hold`);
    expect(r.stderr).toContain("postsuper: Placed on hold: 1 message");
    expect(sys.queueIds("hold")).toContain(id);
    const q = await run("mailq", ["-C", sys.etc]);
    expect(q.stdout).toMatch(new RegExp(`^${id}!\\s`, "m"));

    await sys.block([del, requeue]);
    const from = sys.log().length;
    expect((await run("postqueue", ["-c", sys.etc, "-f"])).code).toBe(0);
    await inMbox(sys, control, "control1");
    // the flush ran (the control message came through) and did not touch the held one
    expect(sys.queueIds("hold")).toContain(id);
    expect(activations(sys, id, from)).toBe(0);
    expect(hasMail(sys, hold, "held1")).toBe(false);

    const released = await run("postsuper", ["-c", sys.etc, "-H", id]);
    expect(released.code).toBe(0);
    expect(released.stderr).toContain(`postsuper: ${id}: released from hold`);
    expect(sys.queueIds("deferred")).toContain(id);
    expect((await sys.postern(["flush"])).code).toBe(0);
    await inMbox(sys, hold, "held1");
    await sys.waitForLog(new RegExp(`${id}: removed`));
    expect(sys.queueIds("hold")).toEqual([]);
  });

  test("-d removes deferred mail and its logs: nothing is delivered or returned", async () => {
    await sys.block([del, requeue]);
    await sys.send([del.name], message("deleted1"));
    const id = await sys.deferredId("deleted1");
    expect(existsSync(join(sys.queue, "defer", id))).toBe(true);
    const r = await run("postsuper", ["-c", sys.etc, "-d", id]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`postsuper: ${id}: removed`);
    expect(r.stderr).toContain("postsuper: Deleted: 1 message");
    for (const q of ["incoming", "active", "deferred", "hold"]) expect(sys.queueIds(q)).not.toContain(id);
    expect(existsSync(join(sys.queue, "defer", id))).toBe(false);

    await sys.block([requeue]);
    await sys.send([control.name], message("control2"));
    await inMbox(sys, control, "control2");
    expect((await run("postqueue", ["-c", sys.etc, "-f"])).code).toBe(0);
    const from = sys.log().length;
    await sys.send([control.name], message("control3"));
    await inMbox(sys, control, "control3");
    expect(hasMail(sys, del, "deleted1")).toBe(false);
    expect(activations(sys, id, from)).toBe(0);
    // root, the sender, got no report about it
    expect(mboxMessages(join(sys.spool, "root")).some((m) => m.includes("deleted1"))).toBe(false);
  });

  test("-r requeues: pickup takes the message again (orig_id=) and delivers it without waiting for the retry time", async () => {
    await sys.block([requeue]);
    await sys.send([requeue.name], message("requeued1"));
    const id = await sys.deferredId("requeued1");
    await sys.block([]);
    const r = await run("postsuper", ["-c", sys.etc, "-r", id]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`postsuper: ${id}: requeued`);
    expect(r.stderr).toContain("postsuper: Requeued: 1 message");
    const picked = await sys.waitForLog(new RegExp(`postfix/pickup\\[\\d+\\]: ([0-9A-F]+): uid=\\d+ from=<root@mail\\.example\\.test> orig_id=${id}`));
    const m = await inMbox(sys, requeue, "requeued1");
    expect(m).toContain("Message-Id: <requeued1@test>\n");
    await sys.waitForLog(new RegExp(`${picked[1]}: removed`));
    expect(mboxMessages(join(sys.spool, requeue.name)).length).toBe(1);
    await sys.waitForEmptyQueue();
  });

  test("-h while the delivery runs: the finished recipient is recorded in the held file, release does not deliver it again", async () => {
    const slow = users.add("s", join(sys.dir, "home"));
    const out = join(slow.home, "slow.out");
    const forward = join(slow.home, ".forward");
    writeFileSync(forward, `"|sleep 1; cat >> ${out}"\n`);
    chownSync(forward, slow.uid, slow.gid);
    await sys.send([slow.name], message("inflight1"));
    const id = await sys.queueIdOf("inflight1");
    await sys.waitForLog(new RegExp(`${id}: from=<root@${HOST}>, size=\\d+, nrcpt=1 \\(queue active\\)`));
    const r = await run("postsuper", ["-c", sys.etc, "-h", id]);
    expect(r.stderr).toContain(`postsuper: ${id}: placed on hold`);
    await sys.waitForLog(new RegExp(`${id}: to=<${slow.name}@${HOST}>, .*status=sent \\(delivered to command: `));
    expect(sys.queueIds("hold")).toContain(id);
    expect((await run("postsuper", ["-c", sys.etc, "-H", id])).code).toBe(0);
    const from = sys.log().length;
    expect((await run("postqueue", ["-c", sys.etc, "-f"])).code).toBe(0);
    await sys.waitForLog(new RegExp(`${id}: removed`), 30_000, from);
    expect(sys.log().slice(from)).not.toContain(`${id}: to=<`);
    expect(readFileSync(out, "utf8").match(/Subject: inflight1/g)!.length).toBe(1);
  });
});

describe.skipIf(!isRoot)("reload", () => {
  test("changed parameters take effect: queue_run_delay in the queue manager, home_mailbox in local delivery", async () => {
    const sys = newSystem({ minimal_backoff_time: "1s", maximal_backoff_time: "1s", queue_run_delay: "1h" });
    const kim = users.add("k", join(sys.dir, "home"));
    await sys.block([kim], false);
    await sys.start();
    await sys.send([kim.name], message("reload1"));
    const id = await sys.deferredId("reload1");
    // open the destination and shorten the queue run: no flush, the queue manager's own run delivers
    sys.writeConfig({ queue_run_delay: "1s", home_mailbox: "Maildir/" });
    await sys.block([]);
    const box = join(kim.home, "Maildir");
    await waitFor("the deferred message in the Maildir", () => maildirMessages(box).find((m) => m.includes("Subject: reload1\n")));
    await sys.waitForLog(new RegExp(`${id}: to=<${kim.name}@${HOST}>, .*status=sent \\(delivered to maildir\\)`));
    await sys.send([kim.name], message("reload2"));
    await waitFor("the new message in the Maildir", () => maildirMessages(box).find((m) => m.includes("Subject: reload2\n")));
    expect(existsSync(join(sys.spool, kim.name))).toBe(false);
    await sys.waitForLog(/postfix\/master\[\d+\]: reload -- version/);
  });
});

describe.skipIf(!isRoot)("restart with mail queued", () => {
  test("deferred mail and mail submitted while the system was down are delivered after start", async () => {
    const sys = newSystem({ minimal_backoff_time: "1s", maximal_backoff_time: "1s" });
    const lee = users.add("l", join(sys.dir, "home"));
    await sys.block([lee], false);
    await sys.start();
    await sys.send([lee.name], message("before1"));
    await sys.deferredId("before1");
    expect((await sys.stop()).code).toBe(0);
    expect((await sys.postern(["status"])).code).toBe(1);

    // down: sendmail still accepts, the file waits in maildrop/
    await sys.send([lee.name], message("during1"));
    await sys.send([lee.name], message("during2"));
    expect(readdirSync(join(sys.queue, "maildrop")).filter((n) => /^[0-9A-F]+$/.test(n)).length).toBe(2);
    await sys.block([], false);

    await sys.start();
    for (const s of ["before1", "during1", "during2"]) await inMbox(sys, lee, s);
    await sys.waitForEmptyQueue();
    expect(mboxMessages(join(sys.spool, lee.name)).length).toBe(3);
  }, 30_000);
});
