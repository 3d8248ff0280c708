/**
 * The crash test: 500 messages submitted with sendmail by parallel
 * submitters while the system delivers them into a Maildir; twice during
 * the run every postern process of the system (the master from its pid
 * file, its children and workers from /proc, and the sendmail processes in
 * flight) is killed with SIGKILL and the system started again. Once the
 * queue has drained, every message whose sendmail exited 0 must have been
 * delivered (none lost); duplicates (deliveries repeated because a crash
 * came between delivery and its record) are counted and printed, not failed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { bin, cleanEnv } from "../../helpers/run.ts";
import { ensureMailOwner, isRoot, MailSystem, TestUsers, waitFor } from "../../helpers/mail-system.ts";

const MESSAGES = 500;
const SUBMITTERS = 8;
/** Kill everything when this many submissions have finished. */
const CRASH_POINTS = [150, 330];

const users = new TestUsers("pdc");
let sys: MailSystem;
let rcpt: PasswdEntry;

beforeAll(async () => {
  if (!isRoot) return;
  ensureMailOwner();
  sys = new MailSystem({ home_mailbox: "Maildir/" });
  rcpt = users.add("m", join(sys.dir, "home"));
  await sys.start();
});

afterAll(async () => {
  if (!isRoot) return;
  await sys?.cleanup();
  users.removeAll();
});

/** Message-Ids in the recipient's Maildir, with how often each was delivered. */
function deliveredCounts(box: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const sub of ["new", "cur"]) {
    let names: string[] = [];
    try {
      names = readdirSync(join(box, sub));
    } catch {}
    for (const name of names) {
      const id = /^Message-Id: <(crash-\d+)@test>$/m.exec(readFileSync(join(box, sub, name), "latin1"))?.[1];
      if (id) counts.set(id, (counts.get(id) ?? 0) + 1);
    }
  }
  return counts;
}

describe.skipIf(!isRoot)("crash test", () => {
  test(`kill -9 of every process twice while ${MESSAGES} messages are submitted and delivered: none lost`, async () => {
    const inFlight = new Set<ReturnType<typeof Bun.spawn>>();
    const accepted = new Set<string>();
    const refused: string[] = [];
    let finished = 0;
    let next = 0;
    const crashes: Array<{ at: number; killed: number }> = [];

    const crash = async (at: number) => {
      // the daemons and the submissions in flight, as a power cut would
      let killed = 0;
      for (const p of inFlight) {
        try {
          p.kill("SIGKILL");
          killed++;
        } catch {}
      }
      killed += await sys.killAll();
      crashes.push({ at, killed });
      await sys.start();
    };

    const submitter = async () => {
      for (;;) {
        const n = next++;
        if (n >= MESSAGES) return;
        const id = `crash-${n}`;
        const text = `Subject: ${id}\nMessage-Id: <${id}@test>\n\nMessage ${n} of the crash test.\n`;
        const proc = Bun.spawn([bin("sendmail"), "-C", sys.etc, "-i", rcpt.name], {
          env: cleanEnv(),
          stdin: new Blob([text]),
          stdout: "ignore",
          stderr: "ignore",
        });
        inFlight.add(proc);
        const code = await proc.exited;
        inFlight.delete(proc);
        if (code === 0) accepted.add(id);
        else refused.push(id);
        finished++;
      }
    };
    const crasher = async () => {
      for (const point of CRASH_POINTS) {
        await waitFor(`${point} finished submissions`, () => finished >= point, 120_000);
        await crash(finished);
      }
    };
    const started = Date.now();
    await Promise.all([crasher(), ...Array.from({ length: SUBMITTERS }, submitter)]);
    const submittedIn = Date.now() - started;
    expect(crashes.length).toBe(CRASH_POINTS.length);
    // both crashes came while submissions were still running
    for (const c of crashes) expect(c.at).toBeLessThan(MESSAGES);

    const box = join(rcpt.home, "Maildir");
    // every accepted message arrives (deferrals from the crash are retried after 1 s)
    await waitFor(
      "every accepted message in the Maildir",
      () => {
        const counts = deliveredCounts(box);
        return [...accepted].every((id) => counts.has(id));
      },
      180_000,
    ).catch(() => undefined);
    await sys.waitForEmptyQueue(60_000).catch(() => undefined);

    const counts = deliveredCounts(box);
    const lost = [...accepted].filter((id) => !counts.has(id));
    const duplicates = [...counts.values()].reduce((sum, c) => sum + (c - 1), 0);
    const deliveredAnyway = refused.filter((id) => counts.has(id)).length;
    console.log(
      `crash test: ${MESSAGES} submitted, ${accepted.size} accepted (sendmail exit 0), ${refused.length} killed or refused ` +
        `(${deliveredAnyway} of those delivered anyway); crashes after ${crashes.map((c) => `${c.at} (${c.killed} processes killed)`).join(" and ")}; ` +
        `delivered ${counts.size} distinct, lost ${lost.length}, duplicates ${duplicates} ` +
        `(submissions took ${submittedIn} ms, the queue drained ${Date.now() - started - submittedIn} ms later)`,
    );
    expect(lost).toEqual([]);
    expect(sys.queueIds("corrupt")).toEqual([]);
    for (const q of ["incoming", "active", "deferred", "hold"]) expect([q, sys.queueIds(q)]).toEqual([q, []]);
    // the system still answers after all that
    expect((await sys.postern(["status"])).code).toBe(0);
  }, 300_000);
});
