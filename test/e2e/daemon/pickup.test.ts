/**
 * pickup against what any local user can put into the world-writable
 * maildrop/, through the whole running system as root: the users are real,
 * they write into maildrop/ themselves (a directory, a symbolic link, a FIFO,
 * a sparse file of 5 GiB, an unreadable file, a bad name, forged queue files),
 * and pickup runs as mail_owner. After each bad entry a normal sendmail must
 * still be delivered, and the bad entry must be gone or in corrupt/ with one
 * log line; forged envelopes never reach a mailbox; a user outside
 * authorized_submit_users cannot submit by writing the file directly; the
 * arrival time is pickup's, not the file's.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { readQueueFile } from "../../../src/global/queue/store.ts";
import { cleanEnv } from "../../helpers/run.ts";
import { ensureMailOwner, isRoot, MailSystem, mboxMessages, message, TestUsers, waitFor } from "../../helpers/mail-system.ts";
import { freePort } from "../../helpers/ports.ts";

const users = new TestUsers("ppk");
const systems: MailSystem[] = [];
afterAll(async () => {
  await Promise.all(systems.map((s) => s.cleanup()));
  users.removeAll();
});

/** Runs a shell command as `user` (their uid, gid and groups), with `stdin`. */
async function asUser(user: PasswdEntry, script: string, stdin = ""): Promise<void> {
  const proc = Bun.spawn(["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", "sh", "-c", script], {
    env: cleanEnv({ HOME: user.home, USER: user.name, LOGNAME: user.name }),
    cwd: "/",
    stdin: new Blob([stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`as ${user.name}: ${script}: exit ${code}: ${stderr}`);
}

/** A queue file as a user could write it by hand. */
function forgedFile(opts: { arrival?: number; sender: string; recipient: string; attributes?: string[]; subject: string }): string {
  const content = message(opts.subject, "forged body\n");
  return [
    "postern-queue 1",
    `T ${opts.arrival ?? Date.now()}`,
    `S ${opts.sender}`,
    ...(opts.attributes ?? []),
    `R ${opts.recipient}`,
    `M ${Buffer.byteLength(content)}`,
    `${content}`,
    "E",
    "",
  ].join("\n");
}

describe.skipIf(!isRoot)("pickup and what users put into maildrop/", () => {
  let sys: MailSystem;
  let alice: PasswdEntry, bob: PasswdEntry, mallory: PasswdEntry;
  let maildrop: string;
  let testStart: number;
  const bad: string[] = [];
  let sent = 0;

  /** Writes `text` into maildrop/NAME as `user` does by hand: a temporary name first, then a rename. */
  async function drop(user: PasswdEntry, name: string, text: string): Promise<void> {
    await asUser(user, `umask 027; cd ${maildrop} && cat > t.${process.pid}.x${name.toLowerCase()} && mv t.${process.pid}.x${name.toLowerCase()} ${name}`, text);
  }

  /** A normal submission by bob to alice: it must reach alice's mailbox. */
  async function deliveredAfter(): Promise<void> {
    const subject = `normal${++sent}`;
    await sys.send([alice.name], message(subject), { user: bob });
    await waitFor(`"${subject}" in alice's mailbox`, () => mboxMessages(join(sys.spool, alice.name)).some((m) => m.includes(`Subject: ${subject}\n`)));
  }

  /** Log lines about maildrop/NAME. */
  const linesAbout = (name: string) => sys.log().split("\n").filter((l) => l.includes(`maildrop/${name}`));

  /** Every mailbox in the spool, as text. */
  const allMail = () => readdirSync(sys.spool).map((n) => readFileSync(join(sys.spool, n), "latin1")).join("\n");

  beforeAll(async () => {
    ensureMailOwner();
    sys = new MailSystem({ relayhost: `[127.0.0.1]:${freePort()}` });
    systems.push(sys);
    const homes = join(sys.dir, "home");
    alice = users.add("a", homes);
    bob = users.add("b", homes);
    mallory = users.add("m", homes);
    // a table in the list, as Postfix allows: pickup looks the file owner's login name up in it
    sys.writeConfig({ authorized_submit_users: `!inline:{ ${mallory.name}=refused }, static:anyone` });
    maildrop = join(sys.queue, "maildrop");
    testStart = Date.now();
    await sys.start();
  });

  test("a directory named like a queue ID is removed; the next sendmail is delivered", async () => {
    await asUser(mallory, `mkdir ${maildrop}/A0000000D1`);
    bad.push("A0000000D1");
    await deliveredAfter();
    await waitFor("the directory to go", () => !existsSync(join(maildrop, "A0000000D1")));
    expect(linesAbout("A0000000D1")).toEqual([expect.stringContaining(`warning: maildrop/A0000000D1: uid=${mallory.uid}: a directory, not a queue file; removed`)]);
  });

  test("a directory pickup cannot empty is reported once and skipped; the next sendmail is delivered", async () => {
    // made outside and moved in whole: pickup would remove it while still empty
    await asUser(mallory, `cd && mkdir d2 && touch d2/x && chmod 700 d2 && mv d2 ${maildrop}/A0000000D2`);
    bad.push("A0000000D2");
    await deliveredAfter();
    await sys.waitForLog(/maildrop\/A0000000D2: .*ignoring it from now on/);
    await deliveredAfter();
    expect(linesAbout("A0000000D2").length).toBe(1);
  });

  test("a symbolic link is removed, never followed; the next sendmail is delivered", async () => {
    await asUser(mallory, `ln -s /etc/shadow ${maildrop}/A0000000E1`);
    bad.push("A0000000E1");
    await deliveredAfter();
    await waitFor("the link to go", () => !readdirSync(maildrop).includes("A0000000E1"));
    expect(linesAbout("A0000000E1")).toEqual([expect.stringContaining("a symbolic link, not a queue file; removed")]);
    expect(existsSync(join(sys.queue, "corrupt", "A0000000E1"))).toBe(false);
  });

  test("a FIFO is removed without being opened; the next sendmail is delivered", async () => {
    await asUser(mallory, `mkfifo ${maildrop}/A0000000F1`);
    bad.push("A0000000F1");
    await deliveredAfter();
    await waitFor("the FIFO to go", () => !existsSync(join(maildrop, "A0000000F1")));
    expect(linesAbout("A0000000F1")).toEqual([expect.stringContaining("a FIFO, not a queue file; removed")]);
  });

  test("a sparse file of 5 GiB goes to corrupt/ unread; the next sendmail is delivered", async () => {
    await asUser(mallory, `cd && truncate -s 5G big && mv big ${maildrop}/A0000000B1`);
    bad.push("A0000000B1");
    await deliveredAfter();
    await waitFor("the big file to go to corrupt/", () => existsSync(join(sys.queue, "corrupt", "A0000000B1")));
    expect(existsSync(join(maildrop, "A0000000B1"))).toBe(false);
    expect(linesAbout("A0000000B1")).toEqual([expect.stringContaining(`A0000000B1: moving corrupt queue file maildrop/A0000000B1 to corrupt/: uid=${mallory.uid}: message file too big: 5368709120 bytes`)]);
  });

  test("a file pickup may not read goes to corrupt/; the next sendmail is delivered", async () => {
    await asUser(mallory, `umask 077; echo secret > ${maildrop}/A0000000C1`);
    bad.push("A0000000C1");
    await deliveredAfter();
    await waitFor("the unreadable file to go to corrupt/", () => existsSync(join(sys.queue, "corrupt", "A0000000C1")));
    expect(linesAbout("A0000000C1")).toEqual([expect.stringContaining(`uid=${mallory.uid}: cannot open it: permission denied`)]);
  });

  test("a name that is not a queue ID is removed; the next sendmail is delivered", async () => {
    await asUser(mallory, `echo junk > ${maildrop}/not-a-queue-id`);
    bad.push("not-a-queue-id");
    await deliveredAfter();
    await waitFor("the bad name to go", () => !existsSync(join(maildrop, "not-a-queue-id")));
    expect(linesAbout("not-a-queue-id")).toEqual([expect.stringContaining("a file whose name is not a queue ID; removed")]);
  });

  test("after more passes each bad entry has been logged once, and no pass failed", async () => {
    for (let i = 0; i < 3; i++) await deliveredAfter();
    for (const name of bad) expect({ name, lines: linesAbout(name).length }).toEqual({ name, lines: 1 });
    expect(sys.log()).not.toContain("pickup pass failed");
    expect(readdirSync(maildrop).sort()).toEqual(["A0000000D2"]);
  });

  test("a file written straight into maildrop/ by a user outside authorized_submit_users is not delivered", async () => {
    await drop(mallory, "A0000000AC", forgedFile({ sender: mallory.name, recipient: alice.name, subject: "acl-forged" }));
    await sys.waitForLog(new RegExp(`warning: maildrop/A0000000AC: uid=${mallory.uid}: User ${mallory.name}\\(${mallory.uid}\\) is not allowed to submit mail \\(authorized_submit_users\\); removed`));
    await deliveredAfter();
    expect(existsSync(join(maildrop, "A0000000AC"))).toBe(false);
    expect(allMail()).not.toContain("acl-forged");
    // sendmail refuses mallory too, and bob's own hand-written file still goes through
    const r = await sys.sendmail(["-i", alice.name], message("acl-sendmail"), mallory);
    expect(r.code).toBe(77);
    await drop(bob, "A0000000AD", forgedFile({ sender: bob.name, recipient: alice.name, subject: "acl-bob" }));
    await waitFor("bob's file in alice's mailbox", () => mboxMessages(join(sys.spool, alice.name)).some((m) => m.includes("Subject: acl-bob\n")));
  });

  test("original= with CR/LF is refused: no forged header in anyone's mailbox", async () => {
    const recipient = `${alice.name} original=${alice.name}%0D%0AX-Forged:%20original%0D%0A`;
    await drop(bob, "A0000000A1", forgedFile({ sender: bob.name, recipient, subject: "orig-forged" }));
    await sys.waitForLog(/A0000000A1: moving corrupt queue file maildrop\/A0000000A1 to corrupt\/: uid=\d+: message refused: malformed original recipient \(a control character\)/);
    await deliveredAfter();
    expect(allMail()).not.toContain("orig-forged");
    expect(allMail()).not.toMatch(/^X-Forged/m);
  });

  test("orcpt= garbage is refused: no forged field in a delivery report", async () => {
    // a forged sender (alice) asks for a success report whose Original-Recipient would carry the garbage
    const recipient = `${bob.name} orcpt=rfc822;${bob.name}%0D%0AX-Forged:%20orcpt notify=SUCCESS`;
    await drop(bob, "A0000000A2", forgedFile({ sender: alice.name, recipient, subject: "orcpt-forged" }));
    await sys.waitForLog(/A0000000A2: moving corrupt queue file maildrop\/A0000000A2 to corrupt\/: uid=\d+: message refused: bad DSN original recipient/);
    await deliveredAfter();
    expect(allMail()).not.toContain("orcpt-forged");
    expect(allMail()).not.toMatch(/X-Forged: orcpt/);
  });

  test("notify= garbage: an unknown word refuses the file; a malformed list is dropped with a warning", async () => {
    await drop(bob, "A0000000A3", forgedFile({ sender: bob.name, recipient: `${alice.name} notify=SUCCESS%0D%0AX`, subject: "notify-forged" }));
    await sys.waitForLog(/A0000000A3: moving corrupt queue file maildrop\/A0000000A3 to corrupt\//);
    await drop(bob, "A0000000A4", forgedFile({ sender: bob.name, recipient: `${alice.name} notify=NEVER,SUCCESS,SUCCESS`, subject: "notify-dropped" }));
    await sys.waitForLog(new RegExp(`warning: maildrop/A0000000A4: uid=${bob.uid}: ignoring malformed DSN notify record <NEVER,SUCCESS,SUCCESS>`));
    await waitFor("the message without its NOTIFY", () => mboxMessages(join(sys.spool, alice.name)).some((m) => m.includes("Subject: notify-dropped\n")));
    expect(allMail()).not.toContain("notify-forged");
  });

  test("a T record in the past does not expire the message: pickup sets the arrival time", async () => {
    // 1970: with the user's time the message would expire at its first deferral
    await drop(bob, "A0000000E7", forgedFile({ arrival: 1000, sender: bob.name, recipient: "someone@remote.example", subject: "t-past" }));
    const id = await sys.queueIdOf("t-past");
    const deferred = new RegExp(`: ${id}: to=<someone@remote\\.example>, .*status=deferred`, "g");
    const expired = new RegExp(`: ${id}: from=<.*>, status=expired`);
    // the first attempt, then a retry (not expired) or the expiry, whichever comes
    await waitFor("a second attempt or the expiry", () => (sys.log().match(deferred)?.length ?? 0) >= 2 || expired.test(sys.log()));
    expect(sys.log()).not.toMatch(expired);
    const where = ["deferred", "active", "incoming"].find((q) => existsSync(join(sys.queue, q, id)));
    expect(where).toBeDefined();
    const arrival = readQueueFile(join(sys.queue, where!, id)).arrivalTime;
    expect(arrival).toBeGreaterThanOrEqual(testStart - 1000);
    expect(arrival).toBeLessThanOrEqual(Date.now());
  });
});
