/**
 * Deferred mail through the running system: delay then success when the
 * destination recovers (a mailbox locked by a mail reader, a transport_maps
 * retry: entry switched off with postmap and reload), postqueue -f/-i and
 * sendmail -q, the expiry bounce after maximal_queue_lifetime and the
 * delay_warning_time notice. Retry times are seconds, not minutes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { header, parseMime } from "../../unit/bounce/mime-parse.ts";
import { run } from "../../helpers/run.ts";
import { ensureMailOwner, HOST, isRoot, MailSystem, mboxMessages, message, TestUsers, waitFor } from "../../helpers/mail-system.ts";
import { RFC5322_DATE } from "../../helpers/dates.ts";

const users = new TestUsers("pdr");
const REMOTE_DEFER = "4.4.1 remote delivery is switched off by the test";
const systems: MailSystem[] = [];
afterAll(async () => {
  await Promise.all(systems.map((s) => s.cleanup()));
  users.removeAll();
});

function newSystem(params: ConstructorParameters<typeof MailSystem>[0] = {}): MailSystem {
  ensureMailOwner();
  const sys = new MailSystem(params);
  systems.push(sys);
  return sys;
}

function inMbox(path: string, match: (m: string) => boolean, what: string): Promise<string> {
  return waitFor(`${what} in ${path}`, () => mboxMessages(path).find(match));
}

function withoutFromLine(m: string): Uint8Array {
  return Buffer.from(m.slice(m.indexOf("\n") + 1), "latin1");
}

describe.skipIf(!isRoot)("a mailbox locked by another program: deferred, then delivered by the next retry", () => {
  let sys: MailSystem;
  let henry: PasswdEntry;

  beforeAll(async () => {
    sys = newSystem({ deliver_lock_attempts: 2, deliver_lock_delay: "1s" });
    henry = users.add("h", join(sys.dir, "home"));
    await sys.start();
  });

  test("a fresh dotlock: status=deferred with the reason, shown by mailq; the lock gone: delivered once", async () => {
    // a mail reader holds henry's mailbox (USER.lock, as mutt or procmail make it)
    const lock = join(sys.spool, `${henry.name}.lock`);
    writeFileSync(lock, "");
    await sys.send([henry.name], message("recover1"));
    const id = await sys.queueIdOf("recover1");
    const deferred = await sys.waitForLog(new RegExp(`${id}: to=<${henry.name}@${HOST}>, orig_to=<${henry.name}>, relay=local, .*dsn=(4\\.\\d\\.\\d), status=deferred \\((.*)\\)`));
    expect(deferred[2]).toContain(`${henry.name}.lock`);
    // mailq shows the message with the reason while it waits
    const mailq = await waitFor("the message in mailq", async () => {
      const r = await run("mailq", ["-C", sys.etc]);
      return r.stdout.includes(id) && r.stdout.includes("(") ? r : undefined;
    });
    expect(mailq.stdout).toContain(`${henry.name}@${HOST}`);
    expect(mailq.stdout).toContain(`(${deferred[2]!.slice(0, 30)}`);
    const box = join(sys.spool, henry.name);
    expect(mboxMessages(box)).toEqual([]);
    unlinkSync(lock);
    const m = await inMbox(box, (x) => x.includes("Subject: recover1\n"), "recover1");
    expect(m).toContain(`Delivered-To: ${henry.name}@${HOST}\n`);
    await sys.waitForLog(new RegExp(`${id}: to=<${henry.name}@${HOST}>, orig_to=<${henry.name}>, relay=local, .*dsn=2\\.0\\.0, status=sent \\(delivered to mailbox\\)`));
    await sys.waitForLog(new RegExp(`${id}: removed`));
    expect(mboxMessages(box).length).toBe(1);
    expect(existsSync(join(sys.queue, "defer", id))).toBe(false);
  }, 30_000);
});

describe.skipIf(!isRoot)("transport_maps retry: switched off with postmap and reload; postqueue -i, sendmail -q", () => {
  let sys: MailSystem;
  let jack: PasswdEntry;
  let transport: string;

  beforeAll(async () => {
    // no retry on its own within the test: only flush requests deliver deferred mail
    sys = newSystem({ minimal_backoff_time: "1h", maximal_backoff_time: "2h", queue_run_delay: "1h" });
    jack = users.add("j", join(sys.dir, "home"));
    transport = sys.etcFile("transport", `${jack.name}@${HOST}\tretry:4.3.2 the mailbox of ${jack.name} is switched off\n`);
    expect((await run("postmap", ["-c", sys.etc, transport])).code).toBe(0);
    sys.writeConfig({ transport_maps: `hash:${transport}` });
    await sys.start();
  });

  test("deferred with the map's status and text; after the switch, postqueue -i delivers one message, sendmail -q the rest", async () => {
    const subjects = ["switch1", "switch2", "switch3"];
    for (const s of subjects) await sys.send([jack.name], message(s));
    const ids: string[] = [];
    for (const s of subjects) {
      const id = await sys.queueIdOf(s);
      ids.push(id);
      await sys.waitForLog(new RegExp(`${id}: to=<${jack.name}@${HOST}>, orig_to=<${jack.name}>, relay=none, .*dsn=4\\.3\\.2, status=deferred \\(the mailbox of ${jack.name} is switched off\\)`));
    }
    await waitFor("three deferred messages", () => ids.every((id) => sys.queueIds("deferred").includes(id)));
    // the destination recovers: the map no longer has the entry, and the system reloads
    sys.etcFile("transport", "# empty\n");
    expect((await run("postmap", ["-c", sys.etc, transport])).code).toBe(0);
    expect((await sys.postern(["reload"])).code).toBe(0);
    await sys.waitForLog(/postfix\/qmgr\[\d+\]: reload: configuration re-read/);
    const box = join(sys.spool, jack.name);
    expect(mboxMessages(box)).toEqual([]);

    const one = await run("postqueue", ["-c", sys.etc, "-i", ids[0]!]);
    expect(one.code).toBe(0);
    await inMbox(box, (m) => m.includes("Subject: switch1\n"), "switch1");
    await sys.waitForLog(new RegExp(`${ids[0]}: removed`));
    expect(sys.queueIds("deferred")).toEqual(expect.arrayContaining([ids[1]!, ids[2]!]));

    const q = await run("sendmail", ["-C", sys.etc, "-q"]);
    expect(q.code).toBe(0);
    for (const s of subjects.slice(1)) await inMbox(box, (m) => m.includes(`Subject: ${s}\n`), s);
    await sys.waitForEmptyQueue();
    expect(mboxMessages(box).length).toBe(3);
  });
});

describe.skipIf(!isRoot)("delay notice and expiry bounce", () => {
  let sys: MailSystem;
  let ivy: PasswdEntry;

  beforeAll(async () => {
    // mail for other domains waits (default_transport retry:, so nothing leaves the machine);
    // it warns after 1 s and expires after 3 s
    sys = newSystem({ delay_warning_time: "1s", maximal_queue_lifetime: "3s", default_transport: `retry:${REMOTE_DEFER}` });
    ivy = users.add("i", join(sys.dir, "home"));
    await sys.start();
  });

  test("deferred remote mail: the sender gets one delay notice, then the expiry bounce with the last reason", async () => {
    await sys.send(["someone@remote.example"], message("expire1", "Waiting.\n"), { sender: `${ivy.name}@${HOST}` });
    const id = await sys.queueIdOf("expire1");
    await sys.waitForLog(new RegExp(`${id}: to=<someone@remote\\.example>, relay=none, .*dsn=4\\.4\\.1, status=deferred \\(remote delivery is switched off by the test\\)`));
    const box = join(sys.spool, ivy.name);

    const delay = await inMbox(box, (m) => m.includes("Subject: Delayed Mail (still being retried)\n"), "the delay notice");
    const d = parseMime(withoutFromLine(delay));
    expect(d.type).toBe("multipart/report");
    expect(header(d, "From")).toBe(`Mail Delivery System <MAILER-DAEMON@${HOST}>`);
    expect(header(d, "To")).toBe(`${ivy.name}@${HOST}`);
    expect(d.parts!.map((p) => p.type)).toEqual(["text/plain", "message/delivery-status", "text/rfc822-headers"]);
    expect(d.parts![0]!.body).toContain("THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE.");
    const [dm, dr] = d.parts![1]!.groups!;
    expect(header(dm!, "X-Postern-Queue-ID")).toBe(id);
    expect(header(dr!, "Final-Recipient")).toBe("rfc822; someone@remote.example");
    expect(header(dr!, "Action")).toBe("delayed");
    expect(header(dr!, "Status")).toBe("4.4.1");
    expect(header(dr!, "Will-Retry-Until")).toMatch(new RegExp(`^${RFC5322_DATE}`));
    await sys.waitForLog(new RegExp(`postfix/bounce\\[\\d+\\]: ${id}: sender delay notification: [0-9A-F]+`));

    const bounce = await inMbox(box, (m) => m.includes("Subject: Undelivered Mail Returned to Sender\n"), "the expiry bounce");
    const b = parseMime(withoutFromLine(bounce));
    expect(b.parts!.map((p) => p.type)).toEqual(["text/plain", "message/delivery-status", "message/rfc822"]);
    const [bm, br] = b.parts![1]!.groups!;
    expect(header(bm!, "X-Postern-Queue-ID")).toBe(id);
    expect(header(br!, "Final-Recipient")).toBe("rfc822; someone@remote.example");
    expect(header(br!, "Action")).toBe("failed");
    expect(header(br!, "Status")).toBe("4.4.1");
    expect(header(br!, "Diagnostic-Code")).toBe("X-Postern; remote delivery is switched off by the test");
    expect(b.parts![2]!.parts![0]!.body).toBe("Waiting.\n");
    await sys.waitForLog(new RegExp(`${id}: from=<${ivy.name}@${HOST}>, status=expired, returned to sender`));
    await sys.waitForLog(new RegExp(`${id}: removed`));
    await sys.waitForEmptyQueue();
    // one notice and one bounce, however many retries there were
    const reports = mboxMessages(box);
    expect(reports.filter((m) => m.includes("Subject: Delayed Mail")).length).toBe(1);
    expect(reports.length).toBe(2);
    expect(sys.log().match(new RegExp(`${id}: sender delay notification`, "g"))!.length).toBe(1);
  }, 30_000);
});
