/**
 * pflogsumm (Debian's package, the usual Postfix log report) over the
 * maillog_file of a test run: its grand totals must be what the test did.
 * This is the check that postern's log lines keep Postfix 3.7's shape.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { ensureMailOwner, HOST, isRoot, MailSystem, mboxMessages, message, TestUsers, waitFor } from "../../helpers/mail-system.ts";

const PFLOGSUMM = "/usr/sbin/pflogsumm";
const users = new TestUsers("pdp");
let sys: MailSystem;

afterAll(async () => {
  await sys?.cleanup();
  users.removeAll();
});

/** "      7   delivered" -> 7, from pflogsumm's Grand Totals. */
function total(report: string, word: string): number {
  const m = new RegExp(`^\\s*(\\d+)\\s+${word}\\b`, "m").exec(report);
  if (!m) throw new Error(`no "${word}" line in pflogsumm's report:\n${report}`);
  return Number(m[1]);
}

describe.skipIf(!isRoot || !existsSync(PFLOGSUMM))("pflogsumm reads the log", () => {
  let una: PasswdEntry, ulf: PasswdEntry;

  beforeAll(async () => {
    ensureMailOwner();
    // deferred mail waits an hour: exactly one deferral in the log; mail for other domains is
    // deferred by default_transport, so nothing leaves the machine
    sys = new MailSystem({
      minimal_backoff_time: "1h",
      maximal_backoff_time: "2h",
      queue_run_delay: "1h",
      default_transport: "retry:4.4.1 remote delivery is switched off by the test",
    });
    una = users.add("u", join(sys.dir, "home"));
    ulf = users.add("v", join(sys.dir, "home"));
    // ulf keeps a copy and forwards one to una
    const forward = join(ulf.home, ".forward");
    writeFileSync(forward, `\\${ulf.name}, ${una.name}\n`);
    chownSync(forward, ulf.uid, ulf.gid);
    await sys.start();
  });

  test("received, delivered, forwarded, deferred and bounced match what was sent", async () => {
    const unaBox = join(sys.spool, una.name);
    const inBox = (path: string, subject: string) => waitFor(`"${subject}" in ${path}`, () => mboxMessages(path).some((m) => m.includes(`Subject: ${subject}\n`)));

    // 3 messages to una: 3 received, 3 delivered
    for (const s of ["sum1", "sum2", "sum3"]) await sys.send([una.name], message(s));
    // to una and an unknown user: 1 received, 1 delivered, 1 bounced; the report to root: 1 delivered
    await sys.send([una.name, `nosuch@${HOST}`], message("sum4"));
    // to ulf, whose .forward keeps a copy and forwards: 1 received, 1 delivered, 1 forwarded; the copy: 1 delivered
    await sys.send([ulf.name], message("sum5"));
    // to another domain: 1 received, deferred once
    await sys.send(["someone@remote.example"], message("sum6"));

    for (const s of ["sum1", "sum2", "sum3", "sum4", "sum5"]) await inBox(unaBox, s);
    await inBox(join(sys.spool, ulf.name), "sum5");
    await waitFor("the report to root", () => mboxMessages(join(sys.spool, "root")).some((m) => m.includes("Subject: sum4\n")));
    const remote = await sys.queueIdOf("sum6");
    await sys.waitForLog(new RegExp(`${remote}: to=<someone@remote\\.example>, .*status=deferred`));
    await waitFor("every message but the deferred one to leave the queue", () => ["incoming", "active"].every((q) => sys.queueIds(q).length === 0));
    await sys.stop();

    const proc = Bun.spawnSync(["perl", PFLOGSUMM, sys.maillog], { stdout: "pipe", stderr: "pipe" });
    const report = proc.stdout.toString();
    expect(proc.exitCode).toBe(0);
    const totals = {
      received: total(report, "received"),
      delivered: total(report, "delivered"),
      forwarded: total(report, "forwarded"),
      deferred: total(report, "deferred"),
      bounced: total(report, "bounced"),
      rejected: total(report, "rejected"),
    };
    expect(totals).toEqual({ received: 6, delivered: 7, forwarded: 1, deferred: 1, bounced: 1, rejected: 0 });
    expect(report).toMatch(/\(1\s+deferrals\)/);
    // the per-reason sections read postern's reasons
    expect(report).toMatch(/local \(total: 1\)\n\s+1\s+unknown user: "nosuch"/);
    expect(report).toMatch(/retry \(total: 1\)\n\s+1\s+remote delivery is switched off by the test/);
    // deliveries by domain: 7 sent here, 1 deferral for the other domain
    expect(report).toMatch(/^\s*7\s+\d+\s+0\s+.*\smail\.example\.test$/m);
    expect(report).toMatch(/^\s*0\s+0\s+1\s+.*\sremote\.example$/m);
    expect(report).toContain("Warnings: none");
    expect(report).toContain("Fatal Errors: none");
    expect(report).toContain("Panics: none");
  });

  // pflogsumm counts a sender only when pickup's "uid= from=" line comes before the queue
  // manager's "from=, size=" line, as Postfix logs them.
  test("pflogsumm counts every sender: pickup's line comes before the queue manager's", () => {
    const first = new Map<string, string>();
    const picked = new Set<string>();
    for (const l of sys.log().split("\n")) {
      const m = /postfix\/(pickup|qmgr)\[\d+\]: ([0-9A-F]+): (?:uid=|from=)/.exec(l);
      if (!m) continue;
      if (m[1] === "pickup") picked.add(m[2]!);
      if (!first.has(m[2]!)) first.set(m[2]!, m[1]!);
    }
    expect(picked.size).toBe(6);
    expect([...picked].filter((id) => first.get(id) !== "pickup")).toEqual([]);
    const report = Bun.spawnSync(["perl", PFLOGSUMM, sys.maillog], { stdout: "pipe" }).stdout.toString();
    expect(report).toMatch(/^\s*6\s+root@mail\.example\.test$/m);
  });
});
