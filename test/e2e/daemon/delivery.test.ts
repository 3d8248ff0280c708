/**
 * Mail through the whole running system as root: sendmail -> maildrop ->
 * pickup/cleanup -> qmgr -> local -> mailbox, with users made for the test.
 * Mailboxes (mbox in a temporary mail_spool_directory, and Maildir with
 * home_mailbox), every alias kind, .forward, forwarding loops, and an
 * unknown user's bounce read back with python's email parser.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { header, parseMime, type MimeNode } from "../../unit/bounce/mime-parse.ts";
import { run } from "../../helpers/run.ts";
import { ensureMailOwner, HOST, isRoot, MailSystem, maildirMessages, mboxMessages, message, TestUsers, waitFor } from "../../helpers/mail-system.ts";
import { RFC5322_DATE } from "../../helpers/dates.ts";

const users = new TestUsers("pdd");
const systems: MailSystem[] = [];
afterAll(async () => {
  await Promise.all(systems.map((s) => s.cleanup()));
  users.removeAll();
});

/** Waits for the mbox message holding `subject` and returns it. */
function inMbox(path: string, subject: string): Promise<string> {
  return waitFor(`"${subject}" in ${path}`, () => mboxMessages(path).find((m) => m.includes(`Subject: ${subject}\n`)));
}

/** Every mbox message of `path` that is a report about `subject`. */
function bounceIn(path: string, subject: string): Promise<string> {
  return waitFor(`a report about "${subject}" in ${path}`, () =>
    mboxMessages(path).find((m) => m.includes("Subject: Undelivered Mail Returned to Sender\n") && m.includes(`Subject: ${subject}\n`)),
  );
}

/** The message without its mbox "From " line, as bytes for the parser. */
function withoutFromLine(m: string): Uint8Array {
  return Buffer.from(m.slice(m.indexOf("\n") + 1), "latin1");
}

describe.skipIf(!isRoot)("mbox delivery, aliases and .forward", () => {
  let sys: MailSystem;
  let alice: PasswdEntry, bob: PasswdEntry, carol: PasswdEntry, dave: PasswdEntry, erin: PasswdEntry, frank: PasswdEntry;
  let shared: string;

  beforeAll(async () => {
    ensureMailOwner();
    sys = new MailSystem();
    systems.push(sys);
    const homes = join(sys.dir, "home");
    alice = users.add("a", homes);
    bob = users.add("b", homes);
    carol = users.add("c", homes);
    dave = users.add("d", homes);
    erin = users.add("e", homes);
    frank = users.add("f", homes);
    shared = join(sys.dir, "shared");
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    sys.etcFile("include.list", `${alice.name}\n${bob.name}\n`);
    const aliases = sys.etcFile(
      "aliases",
      [
        `to-user: ${alice.name}`,
        `to-qualified: ${bob.name}@${HOST}`,
        `to-file: ${shared}/alias-file.mbox`,
        `to-command: "|id -u > ${shared}/command.uid; cat > ${shared}/command.msg"`,
        `to-include: :include:${join(sys.etc, "include.list")}`,
        `to-several: ${alice.name}, ${bob.name}`,
        "",
      ].join("\n"),
    );
    sys.writeConfig({ alias_maps: `hash:${aliases}`, alias_database: `hash:${aliases}` });
    const built = await run("postalias", ["-c", sys.etc, aliases]);
    expect(built).toMatchObject({ code: 0 });
    // carol keeps a copy and forwards to alice; erin and frank forward to each other
    const forward = (u: PasswdEntry, text: string) => {
      const path = join(u.home, ".forward");
      writeFileSync(path, text);
      chownSync(path, u.uid, u.gid);
      chmodSync(path, 0o644);
    };
    forward(carol, `\\${carol.name}, ${alice.name}, "|id -u > ${shared}/forward.uid"\n`);
    forward(erin, `${frank.name}\n`);
    forward(frank, `${erin.name}\n`);
    await sys.start();
  });

  test("a user's mbox: From line, Return-Path, Delivered-To, >From quoting; owned by the user, mode 0600", async () => {
    await sys.send([alice.name], message("mbox1", "First line\nFrom the middle of a line\nlast\n"));
    const m = await inMbox(join(sys.spool, alice.name), "mbox1");
    expect(m).toMatch(/^From root@mail\.example\.test {1,2}\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n/);
    expect(m).toContain("\nReturn-Path: <root@mail.example.test>\n");
    expect(m).toContain(`\nDelivered-To: ${alice.name}@${HOST}\n`);
    expect(m).toContain("\n>From the middle of a line\n");
    expect(m.endsWith("last\n\n")).toBe(true);
    const st = statSync(join(sys.spool, alice.name));
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([alice.uid, alice.gid, 0o600]);
    await sys.waitForLog(new RegExp(`: to=<${alice.name}@mail\\.example\\.test>, orig_to=<${alice.name}>, relay=local, .*status=sent \\(delivered to mailbox\\)`));
  });

  test("a message submitted by a user carries that user as sender and uid", async () => {
    await sys.send([bob.name], message("fromuser"), { user: dave });
    const m = await inMbox(join(sys.spool, bob.name), "fromuser");
    expect(m.startsWith(`From ${dave.name}@${HOST} `)).toBe(true);
    await sys.waitForLog(new RegExp(`postfix/pickup\\[\\d+\\]: [0-9A-F]+: uid=${dave.uid} from=<${dave.name}>`));
  });

  test("alias to a user, and to user@domain", async () => {
    await sys.send(["to-user", `to-qualified@${HOST}`], message("alias1"));
    // as in Postfix, Delivered-To names the address the message came to, before alias expansion
    const a = await inMbox(join(sys.spool, alice.name), "alias1");
    expect(a).toContain(`\nX-Original-To: to-user\nDelivered-To: to-user@${HOST}\n`);
    const b = await inMbox(join(sys.spool, bob.name), "alias1");
    expect(b).toContain(`\nX-Original-To: to-qualified@${HOST}\nDelivered-To: to-qualified@${HOST}\n`);
    const id = await sys.queueIdOf("alias1");
    await sys.waitForLog(new RegExp(`${id}: to=<${alice.name}@${HOST}>, orig_to=<to-user>, relay=local, .*status=sent \\(delivered to mailbox\\)`));
  });

  test("alias to a file: appended in mbox format, as default_privs (nobody)", async () => {
    await sys.send(["to-file"], message("alias2"));
    const m = await inMbox(join(shared, "alias-file.mbox"), "alias2");
    expect(m.startsWith("From root@mail.example.test ")).toBe(true);
    expect(statSync(join(shared, "alias-file.mbox")).uid).toBe(65534);
    const id = await sys.queueIdOf("alias2");
    await sys.waitForLog(new RegExp(`${id}: to=<to-file@${HOST}>, orig_to=<to-file>, relay=local, .*status=sent \\(delivered to file: ${shared}/alias-file\\.mbox\\)`));
  });

  test("alias to a command: runs as default_privs with the message on stdin", async () => {
    await sys.send(["to-command"], message("alias3", "command body\n"));
    const out = await waitFor("the command's output", () => {
      const path = join(shared, "command.msg");
      return existsSync(path) && readFileSync(path, "utf8").includes("command body\n") ? readFileSync(path, "utf8") : undefined;
    });
    expect(out).toContain("Subject: alias3\n");
    expect(out).toMatch(/^From root@mail\.example\.test /);
    expect(readFileSync(join(shared, "command.uid"), "utf8").trim()).toBe("65534");
    const id = await sys.queueIdOf("alias3");
    await sys.waitForLog(new RegExp(`${id}: to=<to-command@${HOST}>, orig_to=<to-command>, relay=local, .*status=sent \\(delivered to command: `));
  });

  test(":include: list delivers to each listed user", async () => {
    await sys.send(["to-include"], message("alias4"));
    await inMbox(join(sys.spool, alice.name), "alias4");
    await inMbox(join(sys.spool, bob.name), "alias4");
  });

  test("an alias with several users: one delivery line each, one mailbox copy each", async () => {
    await sys.send(["to-several"], message("alias5"));
    await inMbox(join(sys.spool, alice.name), "alias5");
    await inMbox(join(sys.spool, bob.name), "alias5");
    const id = await sys.queueIdOf("alias5");
    await sys.waitForLog(new RegExp(`${id}: removed`));
    const lines = sys.log().split("\n").filter((l) => l.includes(`${id}: to=<`));
    expect(lines.length).toBe(2);
    expect(mboxMessages(join(sys.spool, alice.name)).filter((m) => m.includes("Subject: alias5\n")).length).toBe(1);
  });

  test(".forward: a kept copy, a forward to another user, and a command run as the user", async () => {
    await sys.send([carol.name], message("forward1"));
    const own = await inMbox(join(sys.spool, carol.name), "forward1");
    expect(own).toContain(`\nDelivered-To: ${carol.name}@${HOST}\n`);
    // forwarded as a new message: it carries carol's Delivered-To on to alice
    const fwd = await inMbox(join(sys.spool, alice.name), "forward1");
    expect(fwd).toContain(`\nDelivered-To: ${carol.name}@${HOST}\n`);
    expect(fwd).toContain(`\nDelivered-To: ${alice.name}@${HOST}\n`);
    const uid = await waitFor("the .forward command's output", () => existsSync(join(shared, "forward.uid")) && readFileSync(join(shared, "forward.uid"), "utf8").trim());
    expect(uid).toBe(String(carol.uid));
  });

  test("a message that already carries Delivered-To for the recipient bounces with 5.4.6", async () => {
    await sys.send([alice.name], message("loop1", "x\n", `Delivered-To: ${alice.name}@${HOST}\n`), { user: dave });
    const report = await bounceIn(join(sys.spool, dave.name), "loop1");
    const mime = parseMime(withoutFromLine(report));
    const rcpt = mime.parts![1]!.groups![1]!;
    expect(header(rcpt, "Status")).toBe("5.4.6");
    expect(header(rcpt, "Diagnostic-Code")).toBe(`X-Postern; mail forwarding loop for ${alice.name}@${HOST}`);
    expect(mboxMessages(join(sys.spool, alice.name)).some((m) => m.includes("Subject: loop1\n"))).toBe(false);
  });

  test("two .forward files that point at each other: the loop ends in a 5.4.6 bounce", async () => {
    await sys.send([erin.name], message("loop2"), { user: dave });
    const report = await bounceIn(join(sys.spool, dave.name), "loop2");
    const rcpt = parseMime(withoutFromLine(report)).parts![1]!.groups![1]!;
    expect(header(rcpt, "Final-Recipient")).toBe(`rfc822; ${erin.name}@${HOST}`);
    expect(header(rcpt, "Status")).toBe("5.4.6");
    expect(header(rcpt, "Diagnostic-Code")).toBe(`X-Postern; mail forwarding loop for ${erin.name}@${HOST}`);
    // the returned message is the copy erin's .forward made
    expect(report).toContain(`\nDelivered-To: ${erin.name}@${HOST}\n`);
    await sys.waitForLog(new RegExp(`to=<${erin.name}@${HOST}>, orig_to=<${erin.name}>, relay=local, .*dsn=5\\.4\\.6, status=bounced \\(mail forwarding loop for ${erin.name}@${HOST}\\)`));
    expect(existsSync(join(sys.spool, erin.name))).toBe(false);
    expect(existsSync(join(sys.spool, frank.name))).toBe(false);
  });

  test("an unknown user: an RFC 3464 report to the sender, field by field", async () => {
    await sys.send([`nosuch@${HOST}`, bob.name], message("unknown1", "The original body.\n"), { user: dave });
    const id = await sys.queueIdOf("unknown1");
    const report = await bounceIn(join(sys.spool, dave.name), "unknown1");
    expect(report.startsWith("From MAILER-DAEMON ")).toBe(true);
    const mime = parseMime(withoutFromLine(report));
    expect(mime.defects).toEqual([]);
    expect(mime.type).toBe("multipart/report");
    expect(mime.params["report-type"]).toBe("delivery-status");
    expect(header(mime, "From")).toBe(`Mail Delivery System <MAILER-DAEMON@${HOST}>`);
    expect(header(mime, "To")).toBe(`${dave.name}@${HOST}`);
    expect(header(mime, "Subject")).toBe("Undelivered Mail Returned to Sender");
    expect(header(mime, "Auto-Submitted")).toBe("auto-replied");
    expect(header(mime, "Return-Path")).toBe("<>");
    expect(mime.parts!.map((p: MimeNode) => p.type)).toEqual(["text/plain", "message/delivery-status", "message/rfc822"]);
    const text = mime.parts![0]!.body!;
    expect(text).toContain(`This is the mail system at host ${HOST}.`);
    expect(text).toContain(`<nosuch@${HOST}>: unknown user: "nosuch"`);
    expect(text).not.toContain(bob.name);
    const [perMessage, perRecipient, ...more] = mime.parts![1]!.groups!;
    expect(more).toEqual([]);
    expect(header(perMessage!, "Reporting-MTA")).toBe(`dns; ${HOST}`);
    expect(header(perMessage!, "X-Postern-Queue-ID")).toBe(id);
    expect(header(perMessage!, "X-Postern-Sender")).toBe(`rfc822; ${dave.name}@${HOST}`);
    expect(header(perMessage!, "Arrival-Date")).toMatch(new RegExp(`^${RFC5322_DATE}`));
    expect(header(perRecipient!, "Final-Recipient")).toBe(`rfc822; nosuch@${HOST}`);
    expect(header(perRecipient!, "Original-Recipient")).toBe(`rfc822;nosuch@${HOST}`);
    expect(header(perRecipient!, "Action")).toBe("failed");
    expect(header(perRecipient!, "Status")).toBe("5.1.1");
    expect(header(perRecipient!, "Diagnostic-Code")).toBe('X-Postern; unknown user: "nosuch"');
    const returned = mime.parts![2]!.parts![0]!;
    expect(header(returned, "Subject")).toBe("unknown1");
    expect(header(returned, "Return-Path")).toBe(`<${dave.name}@${HOST}>`);
    expect(returned.body).toBe("The original body.\n");
    // the other recipient got the message, and the log has Postfix's lines
    await inMbox(join(sys.spool, bob.name), "unknown1");
    await sys.waitForLog(new RegExp(`${id}: to=<nosuch@${HOST}>, relay=local, .*dsn=5\\.1\\.1, status=bounced \\(unknown user: "nosuch"\\)`));
    await sys.waitForLog(new RegExp(`postfix/bounce\\[\\d+\\]: ${id}: sender non-delivery notification: [0-9A-F]+`));
  });

  test("the queue is empty and nothing went to corrupt/", async () => {
    await sys.waitForEmptyQueue();
    expect(sys.queueIds("corrupt")).toEqual([]);
    expect(sys.log()).not.toMatch(/(error|fatal|panic):/);
  });
});

describe.skipIf(!isRoot)("Maildir delivery (home_mailbox = Maildir/)", () => {
  let sys: MailSystem;
  let gina: PasswdEntry;

  beforeAll(async () => {
    ensureMailOwner();
    sys = new MailSystem({ home_mailbox: "Maildir/" });
    systems.push(sys);
    gina = users.add("g", join(sys.dir, "home"));
    await sys.start();
  });

  test("new/ holds the message, owned by the user; tmp/ is empty; the Maildir is the user's", async () => {
    await sys.send([gina.name], message("maildir1", "From the maildir test\n"));
    const box = join(gina.home, "Maildir");
    const m = await waitFor("the message in new/", () => maildirMessages(box).find((x) => x.includes("Subject: maildir1\n")));
    expect(m.startsWith("Return-Path: <root@mail.example.test>\n")).toBe(true);
    expect(m).toContain(`\nDelivered-To: ${gina.name}@${HOST}\n`);
    // no mbox quoting in a maildir
    expect(m).toContain("\nFrom the maildir test\n");
    const [name] = readdirSync(join(box, "new"));
    // Postfix's new/ names: TIME.VdevIinoMusec.HOST (the machine's host name, as Postfix's maildir)
    expect(name).toMatch(/^\d+\.V[0-9a-f]+I[0-9a-f]+M\d+\.[^/]+$/);
    const st = statSync(join(box, "new", name!));
    expect([st.uid, st.gid]).toEqual([gina.uid, gina.gid]);
    for (const sub of ["", "tmp", "new", "cur"]) expect(statSync(join(box, sub)).uid).toBe(gina.uid);
    expect(readdirSync(join(box, "tmp"))).toEqual([]);
    expect(existsSync(join(sys.spool, gina.name))).toBe(false);
    await sys.waitForLog(new RegExp(`to=<${gina.name}@${HOST}>, orig_to=<${gina.name}>, relay=local, .*status=sent \\(delivered to maildir\\)`));
  });

  test("ten messages: ten files with unique names", async () => {
    await Promise.all(Array.from({ length: 10 }, (_, i) => sys.send([gina.name], message(`many${i}`))));
    const box = join(gina.home, "Maildir");
    await waitFor("ten messages", () => maildirMessages(box).filter((m) => /Subject: many\d\n/.test(m)).length === 10);
    const subjects = maildirMessages(box).flatMap((m) => /Subject: (many\d)\n/.exec(m)?.[1] ?? []);
    expect(subjects.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `many${i}`));
  });
});
