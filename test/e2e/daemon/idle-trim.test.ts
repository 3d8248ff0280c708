/**
 * A daemon hands back the executable's pages once its work stops
 * (src/util/exe-trim.ts, issue 16: idle memory): after a message has gone
 * through, the queue manager's resident pages of dist/postern fall well
 * below what the delivery left mapped, max_idle (5 s here) after its last
 * unit of work, and the system goes on delivering afterwards. A deferred
 * message keeps the queue manager running (it is started on demand and
 * leaves when its queues are empty), as it would at a site with mail
 * waiting for a retry. Runs as
 * root (the daemons drop to mail_owner) or as any user.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { parseSmaps, trimmable } from "../../../src/util/exe-trim.ts";
import { ensureMailOwner, isRoot, MailSystem, mboxMessages, message, waitFor } from "../../helpers/mail-system.ts";
import { bin } from "../../helpers/run.ts";

let sys: MailSystem;

beforeAll(async () => {
  ensureMailOwner();
  // max_idle is how long a daemon's work must have stopped before it trims (100 s by default)
  // remote mail is deferred (retry:) and waits 300 s for its retry (Postfix's defaults; the tests' are 1-2 s)
  sys = new MailSystem({ max_idle: "5s", default_transport: "retry:4.4.1 the test defers remote mail", queue_run_delay: "300s", minimal_backoff_time: "300s", maximal_backoff_time: "300s" });
  await sys.start();
  await sys.send(["bob@example.net"], message("deferred, keeps the queue manager"));
  await sys.waitForLog(/to=<bob@example\.net>.*status=deferred/);
}, 60_000);

afterAll(async () => {
  await sys?.cleanup();
}, 60_000);

function me(): string {
  return isRoot ? "root" : (process.env.USER ?? "root");
}

/** The kB of dist/postern's read-only, unmodified pages resident in process `pid`. */
function exeResidentKb(pid: number): number {
  const exe = realpathSync(bin("postern"));
  return trimmable(parseSmaps(readFileSync(`/proc/${pid}/smaps`, "latin1")), exe).reduce((n, m) => n + m.rssKb, 0);
}

async function deliver(subject: string): Promise<void> {
  await sys.send([me()], message(subject));
  const path = join(sys.spool, me());
  await waitFor(`"${subject}" in ${path}`, () => mboxMessages(path).some((m) => m.includes(`Subject: ${subject}\n`)));
}

/** Waits until the queue manager's resident executable pages fall below half of `from`; returns them. */
function fallBelowHalf(qmgr: number, from: number): Promise<number> {
  return waitFor(`the queue manager's pages to fall below ${from / 2} kB`, () => {
    const now = exeResidentKb(qmgr);
    return now < from / 2 ? now : undefined;
  }, 30_000);
}

test("after a delivery the queue manager drops the executable's pages it no longer uses, and still delivers", async () => {
  const qmgr = await waitFor("the queue manager", () => sys.roles().get("qmgr"));
  // the first fall is the trim 2 s after the start (or the idle one, if the machine is slow): after it,
  // only the trim after idle time is left to make the next fall
  await deliver("first");
  const first = exeResidentKb(qmgr);
  expect(first).toBeGreaterThan(2048);
  await fallBelowHalf(qmgr, first);
  // a delivery maps pages again; within max_idle of it the queue manager has not trimmed yet
  await deliver("second");
  const after = exeResidentKb(qmgr);
  const trimmed = await fallBelowHalf(qmgr, after);
  console.log(`idle-trim: queue manager's executable pages ${first} kB after the first delivery, ${after} kB after the second, ${trimmed} kB after the idle trim`);
  expect(trimmed).toBeLessThan(after / 2);
  await deliver("after the trim");
  expect(sys.roles().get("qmgr")).toBe(qmgr);
}, 90_000);
