/**
 * sendmail -bv (address verification) and sendmail -v (a delivery record)
 * through the running system as root, against what Postfix 3.7 does:
 *
 * - -bv: nothing is delivered; the local agent says what it would do
 *   (mailbox, alias expansion, file, command, forwarding, unknown user), the
 *   SMTP client probes the next hop (found through the fake DNS server) with
 *   RCPT TO and never DATA, each answer is logged as status=deliverable or
 *   undeliverable, and the sender gets one "Mail Delivery Status Report"
 *   from the null sender; the probe leaves the queue.
 * - -v: mail is delivered as usual (with the usual bounce), and the sender
 *   also gets the report of the first attempt, once, even when a recipient
 *   is deferred and delivered later.
 *
 * Every server listens on 127.0.0.1 and every name is answered by the fake
 * DNS server. Reports are read with python's email parser.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { header, parseMime, type MimeNode } from "../../unit/bounce/mime-parse.ts";
import { startFakeDns, type FakeDns } from "../../helpers/fake-dns.ts";
import { run } from "../../helpers/run.ts";
import { FakeSmtpServer } from "../../helpers/smtp-server.ts";
import { ensureMailOwner, HOST, isRoot, MailSystem, mboxMessages, message, TestUsers, waitFor } from "../../helpers/mail-system.ts";

const users = new TestUsers("pdv");
const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  users.removeAll();
});

const REPORT = "Subject: Mail Delivery Status Report\n";
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The status reports in an mbox that mention `marker`. */
function reportsIn(box: string, marker: string): string[] {
  return mboxMessages(box).filter((m) => m.includes(REPORT) && m.includes(marker));
}

function reportIn(box: string, marker: string): Promise<string> {
  return waitFor(`a status report mentioning "${marker}" in ${box}`, () => reportsIn(box, marker)[0]);
}

function parsed(m: string): MimeNode {
  return parseMime(Buffer.from(m.slice(m.indexOf("\n") + 1), "latin1"));
}

/** The per-recipient groups of a report: [Final-Recipient, Action, Status, Diagnostic-Code]. */
function groups(mime: MimeNode): string[][] {
  return mime.parts![1]!.groups!.slice(1).map((g) => ["Final-Recipient", "Action", "Status", "Diagnostic-Code"].map((n) => header(g, n) ?? ""));
}

/** The human-readable part, with the 79-column wrapping undone. */
function text(mime: MimeNode): string {
  return mime.parts![0]!.body!.replace(/\n {4}/g, " ");
}

describe.skipIf(!isRoot)("sendmail -bv and -v through the running system", () => {
  let sys: MailSystem;
  let server: FakeSmtpServer;
  let zone: FakeDns;
  let alice: PasswdEntry, bob: PasswdEntry, carol: PasswdEntry;
  let shared: string;
  let root: string;
  /** later@remote.example is refused for now until this is set. */
  let acceptLater = false;

  beforeAll(async () => {
    ensureMailOwner();
    server = FakeSmtpServer.start({
      onRcpt: (a) =>
        a.startsWith("bad")
          ? "550 5.1.1 <bad@remote.example>: Recipient address rejected: User unknown"
          : a.startsWith("later") && !acceptLater
            ? "450 4.2.0 <later@remote.example>: Recipient address rejected: try later"
            : undefined,
    });
    cleanups.push(() => server.stop());
    zone = await startFakeDns({ "remote.example": { MX: [[10, "mx.remote.example"]] }, "mx.remote.example": { A: ["127.0.0.1"] } }, { autoStop: false });
    cleanups.push(() => zone.stop());
    sys = new MailSystem({ dns_servers: zone.server, smtp_tcp_port: server.port });
    cleanups.push(() => sys.cleanup());
    const homes = join(sys.dir, "home");
    alice = users.add("a", homes);
    bob = users.add("b", homes);
    carol = users.add("c", homes);
    shared = join(sys.dir, "shared");
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    root = join(sys.spool, "root");
    const aliases = sys.etcFile(
      "aliases",
      [`staff: ${alice.name}, ${bob.name}`, `list: ${carol.name}, ${shared}/list.mbox, "|touch ${shared}/ran", far@remote.example`, ""].join("\n"),
    );
    sys.writeConfig({ alias_maps: `hash:${aliases}`, alias_database: `hash:${aliases}` });
    expect(await run("postalias", ["-c", sys.etc, aliases])).toMatchObject({ code: 0 });
    await sys.start();
  });

  test("-bv for a local user: the sender's report says 'delivers to mailbox', the user's mailbox stays empty", async () => {
    const r = await sys.sendmail(["-bv", alice.name], "");
    expect(r).toMatchObject({ code: 0, stdout: "Mail Delivery Status Report will be mailed to <root>.\n" });
    const report = await reportIn(root, `${alice.name}@${HOST}`);
    expect(report).toStartWith("From MAILER-DAEMON ");
    expect(report).toContain("\nReturn-Path: <>\n");
    const mime = parsed(report);
    expect(mime.defects).toEqual([]);
    expect(header(mime, "From")).toBe(`Mail Delivery System <MAILER-DAEMON@${HOST}>`);
    expect(header(mime, "Subject")).toBe("Mail Delivery Status Report");
    expect(header(mime, "Auto-Submitted")).toBe("auto-replied");
    expect(mime.params["report-type"]).toBe("delivery-status");
    expect(text(mime)).toContain("Enclosed is the mail delivery report that you requested.\n");
    expect(text(mime)).toContain(`<${alice.name}@${HOST}> (expanded from <${alice.name}>): delivery via local: delivers to mailbox\n`);
    expect(groups(mime)).toEqual([[`rfc822; ${alice.name}@${HOST}`, "deliverable", "2.0.0", "X-Postern; delivery via local: delivers to mailbox"]]);
    // the probe's headers come back, not a message
    expect(mime.parts![2]!.type).toBe("text/rfc822-headers");
    const id = header(mime.parts![1]!.groups![0]!, "X-Postern-Queue-ID")!;
    await sys.waitForLog(new RegExp(`postfix/local\\[\\d+\\]: ${id}: to=<${esc(alice.name)}@${esc(HOST)}>, orig_to=<${esc(alice.name)}>, relay=local, .*dsn=2\\.0\\.0, status=deliverable \\(delivers to mailbox\\)`));
    await sys.waitForLog(new RegExp(`postfix/bounce\\[\\d+\\]: ${id}: sender delivery status notification: [0-9A-F]+`));
    await sys.waitForLog(new RegExp(`postfix/qmgr\\[\\d+\\]: ${id}: removed`));
    await sys.waitForEmptyQueue();
    expect(existsSync(join(sys.spool, alice.name))).toBe(false);
    expect(sys.log()).not.toMatch(new RegExp(`${id}: .*status=sent`));
  });

  test("-bv for an unknown user: undeliverable, 5.1.1, and no bounce", async () => {
    await sys.sendmail(["-bv", "nosuchuser"], "");
    const mime = parsed(await reportIn(root, `nosuchuser@${HOST}`));
    expect(text(mime)).toContain(`<nosuchuser@${HOST}> (expanded from <nosuchuser>): delivery via local: unknown user: "nosuchuser"\n`);
    expect(groups(mime)).toEqual([[`rfc822; nosuchuser@${HOST}`, "undeliverable", "5.1.1", 'X-Postern; delivery via local: unknown user: "nosuchuser"']]);
    await sys.waitForLog(/: to=<nosuchuser@mail\.example\.test>, orig_to=<nosuchuser>, relay=local, .*dsn=5\.1\.1, status=undeliverable \(unknown user: "nosuchuser"\)/);
    await sys.waitForEmptyQueue();
    expect(mboxMessages(root).filter((m) => m.includes("Subject: Undelivered Mail Returned to Sender\n"))).toEqual([]);
  });

  test("-bv for aliases: each address of the expansion, with files, commands and forwarding only named", async () => {
    await sys.sendmail(["-bv", "staff", "list"], "");
    const mime = parsed(await reportIn(root, `${carol.name}@${HOST}`));
    const lines = text(mime);
    expect(lines).toContain(`<${alice.name}@${HOST}> (expanded from <staff>): delivery via local: delivers to mailbox\n`);
    expect(lines).toContain(`<${bob.name}@${HOST}> (expanded from <staff>): delivery via local: delivers to mailbox\n`);
    expect(lines).toContain(`<${carol.name}@${HOST}> (expanded from <list>): delivery via local: delivers to mailbox\n`);
    expect(lines).toContain(`<list@${HOST}> (expanded from <list>): delivery via local: delivers to file: ${shared}/list.mbox\n`);
    expect(lines).toContain(`<list@${HOST}> (expanded from <list>): delivery via local: delivers to command: touch ${shared}/ran\n`);
    expect(lines).toContain("<far@remote.example> (expanded from <list>): delivery via local: forwards to far@remote.example\n");
    expect(groups(mime).map((g) => g[1])).toEqual(Array(6).fill("deliverable"));
    // Original-Recipient is the address as submitted, qualified (Postfix's ORCPT)
    expect(mime.parts![1]!.groups!.slice(1).map((g) => header(g, "Original-Recipient")).sort()).toEqual([...Array(4).fill(`rfc822;list@${HOST}`), ...Array(2).fill(`rfc822;staff@${HOST}`)]);
    await sys.waitForEmptyQueue();
    for (const u of [alice, bob, carol]) expect(existsSync(join(sys.spool, u.name))).toBe(false);
    expect(readdirSync(shared)).toEqual([]);
    expect(sys.log()).not.toContain("forwarded as");
    expect(server.commands.some((c) => c.includes("far@remote.example"))).toBe(false);
  });

  test("-bv for remote addresses: RCPT TO at the MX host and no DATA; 2xx deliverable, 5xx and 4xx undeliverable", async () => {
    const before = server.commands.length;
    await sys.sendmail(["-bv", "good@remote.example", "bad@remote.example", "later@remote.example"], "");
    const mime = parsed(await reportIn(root, "good@remote.example"));
    const relay = `mx.remote.example[127.0.0.1]:${server.port}`;
    expect(text(mime)).toContain(`<good@remote.example>: delivery via ${relay}: 250 2.1.5 Ok\n`);
    expect(text(mime)).toContain(
      `<bad@remote.example>: delivery via ${relay}: host mx.remote.example[127.0.0.1] said: 550 5.1.1 <bad@remote.example>: Recipient address rejected: User unknown (in reply to RCPT TO command)\n`,
    );
    const byRecipient = Object.fromEntries(groups(mime).map((g) => [g[0], g.slice(1)]));
    expect(byRecipient).toEqual({
      "rfc822; good@remote.example": ["deliverable", "2.1.5", "smtp; 250 2.1.5 Ok"],
      "rfc822; bad@remote.example": ["undeliverable", "5.1.1", "smtp; 550 5.1.1 <bad@remote.example>: Recipient address rejected: User unknown"],
      "rfc822; later@remote.example": ["undeliverable", "4.2.0", "smtp; 450 4.2.0 <later@remote.example>: Recipient address rejected: try later"],
    });
    const verbs = server.commands.slice(before).map((c) => c.split(/[\s:]/)[0]!.toUpperCase());
    expect(verbs.filter((v) => v === "RCPT")).toHaveLength(3);
    expect(verbs).not.toContain("DATA");
    expect(server.messages).toEqual([]);
    await sys.waitForLog(new RegExp(`postfix/smtp\\[\\d+\\]: [0-9A-F]+: to=<good@remote\\.example>, relay=${esc(relay)}, .*dsn=2\\.1\\.5, status=deliverable \\(250 2\\.1\\.5 Ok\\)`));
    await sys.waitForLog(/to=<later@remote\.example>, .*dsn=4\.2\.0, status=undeliverable \(host mx\.remote\.example\[127\.0\.0\.1\] said: 450 4\.2\.0 /);
    // a deferral is an answer too: the probe does not wait in deferred/
    await sys.waitForEmptyQueue();
  });

  test("-bv as a user: the report goes to that user", async () => {
    const r = await sys.sendmail(["-bv", bob.name], "", alice);
    expect(r).toMatchObject({ code: 0, stdout: `Mail Delivery Status Report will be mailed to <${alice.name}>.\n` });
    const mime = parsed(await reportIn(join(sys.spool, alice.name), `${bob.name}@${HOST}`));
    expect(header(mime, "To")).toBe(`${alice.name}@${HOST}`);
    await sys.waitForEmptyQueue();
    expect(existsSync(join(sys.spool, bob.name))).toBe(false);
  });

  test("-v delivers, bounces as usual, and reports the first attempt once, deferred recipients as delayed", async () => {
    const r = await sys.sendmail(["-v", "-i", carol.name, "bad@remote.example", "later@remote.example"], message("record1", "Recorded.\n"));
    expect(r).toMatchObject({ code: 0, stdout: "Mail Delivery Status Report will be mailed to <root>.\n" });
    const id = await sys.queueIdOf("record1");
    // delivered for real, and the usual non-delivery report for bad@
    const box = join(sys.spool, carol.name);
    await waitFor("the message in carol's mailbox", () => mboxMessages(box).find((m) => m.includes("Subject: record1\n")));
    await waitFor("the bounce", () => mboxMessages(root).find((m) => m.includes("Subject: Undelivered Mail Returned to Sender\n") && m.includes(`X-Postern-Queue-ID: ${id}`)));
    const report = await reportIn(root, `X-Postern-Queue-ID: ${id}`);
    const mime = parsed(report);
    expect(text(mime)).toContain(`<${carol.name}@${HOST}> (expanded from <${carol.name}>): delivery via local: delivered to mailbox\n`);
    expect(Object.fromEntries(groups(mime).map((g) => [g[0], g.slice(1, 3)]))).toEqual({
      [`rfc822; ${carol.name}@${HOST}`]: ["delivered", "2.0.0"],
      "rfc822; bad@remote.example": ["failed", "5.1.1"],
      "rfc822; later@remote.example": ["delayed", "4.2.0"],
    });
    await sys.waitForLog(new RegExp(`${id}: to=<${esc(carol.name)}@${esc(HOST)}>, orig_to=<${esc(carol.name)}>, relay=local, .*status=sent \\(delivered to mailbox\\)`));
    await sys.waitForLog(new RegExp(`${id}: to=<later@remote\\.example>, .*status=deferred`));
    // the next attempt (backoff 1-2 s) is deferred again and then delivers: no second report
    const seen = sys.log().length;
    await sys.waitForLog(new RegExp(`${id}: to=<later@remote\\.example>, .*status=deferred`), 30_000, seen);
    acceptLater = true;
    await sys.waitForLog(new RegExp(`${id}: removed`), 30_000);
    expect(server.messages.some((m) => m.recipients.includes("later@remote.example"))).toBe(true);
    await sys.waitForEmptyQueue();
    expect(reportsIn(root, `X-Postern-Queue-ID: ${id}`)).toHaveLength(1);
    expect(existsSync(join(sys.queue, "trace", id))).toBe(false);
  }, 30_000);

  test("-v with NOTIFY=SUCCESS: no separate success notice, the recipient twice in the report, as Postfix does", async () => {
    await sys.sendmail(["-v", "-i", "-N", "success", bob.name], message("record2"));
    const id = await sys.queueIdOf("record2");
    const mime = parsed(await reportIn(root, `X-Postern-Queue-ID: ${id}`));
    expect(groups(mime).map((g) => g.slice(0, 2))).toEqual([
      [`rfc822; ${bob.name}@${HOST}`, "delivered"],
      [`rfc822; ${bob.name}@${HOST}`, "delivered"],
    ]);
    await sys.waitForLog(new RegExp(`${id}: removed`));
    await sys.waitForEmptyQueue();
    expect(mboxMessages(root).filter((m) => m.includes("Subject: Successful Mail Delivery Report\n"))).toEqual([]);
  });

  test("the same log fields serve ordinary reports: a bounce names the alias, a success notice the relay", async () => {
    const aliases = sys.etcFile("aliases2", `ghost: nobody-here\n`);
    expect(await run("postalias", ["-c", sys.etc, aliases])).toMatchObject({ code: 0 });
    sys.writeConfig({ alias_maps: `hash:${join(sys.etc, "aliases")}, hash:${aliases}` });
    expect((await sys.postern(["reload"])).code).toBe(0);
    await sys.waitForLog(/reload -- version/);
    await sys.send(["ghost", carol.name], message("ordinary1"), { args: ["-N", "success,failure"] });
    const id = await sys.queueIdOf("ordinary1");
    const bounce = await waitFor("the bounce", () => mboxMessages(root).find((m) => m.includes("Subject: Undelivered Mail Returned to Sender\n") && m.includes(`X-Postern-Queue-ID: ${id}`)));
    expect(text(parsed(bounce))).toContain(`<nobody-here@${HOST}> (expanded from <ghost>): unknown user: "nobody-here"\n`);
    const success = await waitFor("the success notice", () => mboxMessages(root).find((m) => m.includes("Subject: Successful Mail Delivery Report\n") && m.includes(`X-Postern-Queue-ID: ${id}`)));
    expect(text(parsed(success))).toContain(`<${carol.name}@${HOST}> (expanded from <${carol.name}>): delivery via local: delivered to mailbox\n`);
  });
});
