/**
 * virtual_alias_maps end to end (issue 12, part 2): mail for a virtual
 * alias domain, from SMTP clients and from sendmail, is expanded by cleanup
 * before it is queued: to a local user's mbox, to a remote address relayed
 * to a sink, through the catch-all @domain, one-to-many. A table mail_owner
 * cannot read defers the mail (451 at RCPT, kept in maildrop/ by pickup),
 * and once it is readable again the mail is delivered: nothing lost, nothing
 * passed through unrewritten.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ensureMailOwner, HOST, isRoot, mboxMessages, message, TestUsers, waitFor } from "../../helpers/mail-system.ts";
import { startPythonSink, type PythonSink } from "../../helpers/python-sink.ts";
import { RawSmtp, SmtpdSystem } from "../../helpers/smtpd-system.ts";
import type { PasswdEntry } from "../../../src/util/passwd.ts";

const users = new TestUsers("pva");

function inMbox(sys: SmtpdSystem, user: PasswdEntry, subject: string): Promise<string> {
  const path = join(sys.spool, user.name);
  return waitFor(`"${subject}" in ${path}`, () => mboxMessages(path).find((m) => m.includes(`Subject: ${subject}\n`)));
}

async function smtpSend(port: number, rcpts: string[], subject: string): Promise<string[]> {
  const c = await RawSmtp.connect(port);
  const replies = [await c.reply()];
  replies.push(await c.cmd("EHLO client.example"));
  replies.push(await c.cmd("MAIL FROM:<sender@client.example>"));
  for (const r of rcpts) replies.push(await c.cmd(`RCPT TO:<${r}>`));
  if (replies.at(-1)!.startsWith("250")) {
    replies.push(await c.cmd("DATA"));
    replies.push(await c.cmd(`${message(subject).replace(/\n/g, "\r\n")}.`));
  }
  await c.quit();
  return replies;
}

describe.skipIf(!isRoot)("virtual alias domains", () => {
  let sys: SmtpdSystem;
  let sink: PythonSink;
  let alice: PasswdEntry;
  let bob: PasswdEntry;

  beforeAll(async () => {
    ensureMailOwner();
    sink = await startPythonSink();
    sys = new SmtpdSystem({
      local_transport: "local",
      default_transport: "smtp",
      relayhost: `[127.0.0.1]:${sink.port}`,
      mynetworks: "127.0.0.0/8",
      recipient_delimiter: "+",
      virtual_alias_domains: "hosted.test",
    });
    const homes = join(sys.dir, "home");
    alice = users.add("al", homes);
    bob = users.add("bo", homes);
    const table = sys.etcFile(
      "virtual",
      [
        `info@hosted.test ${alice.name}`,
        `team@hosted.test ${alice.name}@${HOST}, ${bob.name}`,
        `sales@hosted.test ${alice.name}, far@sink.example`,
        "loop1@hosted.test loop2@hosted.test",
        "loop2@hosted.test loop1@hosted.test",
        `@hosted.test ${bob.name}`,
        "",
      ].join("\n"),
    );
    sys.writeConfig({ virtual_alias_maps: `texthash:${table}` });
    await sys.start();
  }, 60_000);

  afterAll(async () => {
    await sys?.cleanup();
    sink?.stop();
    users.removeAll();
  });

  test("SMTP: an alias goes to a local user's mbox", async () => {
    const r = await smtpSend(sys.port, ["info@hosted.test"], "va-smtp-info");
    expect(r.at(-1)).toMatch(/^250 /);
    const m = await inMbox(sys, alice, "va-smtp-info");
    expect(m).toContain(`Delivered-To: ${alice.name}@${HOST}`);
    await sys.waitForLog(new RegExp(`to=<${alice.name}@${HOST.replace(/\./g, "\\.")}>, orig_to=<info@hosted\\.test>, relay=local`));
  }, 60_000);

  test("SMTP: one-to-many, a local user and a remote address relayed to the sink", async () => {
    const r = await smtpSend(sys.port, ["sales@hosted.test"], "va-smtp-sales");
    expect(r.at(-1)).toMatch(/^250 /);
    await inMbox(sys, alice, "va-smtp-sales");
    const relayed = await waitFor("va-smtp-sales at the sink", () => sink.messages().find((m) => m.data.includes("Subject: va-smtp-sales")));
    expect(relayed.rcpt_tos).toEqual(["far@sink.example"]);
  }, 60_000);

  test("SMTP: the catch-all @domain takes any other user of the domain", async () => {
    const r = await smtpSend(sys.port, ["whoever@hosted.test"], "va-smtp-catchall");
    expect(r.at(-1)).toMatch(/^250 /);
    await inMbox(sys, bob, "va-smtp-catchall");
  }, 60_000);

  test("SMTP: an alias loop is refused with 451 4.6.0 at the end of DATA", async () => {
    const r = await smtpSend(sys.port, ["loop1@hosted.test"], "va-smtp-loop");
    expect(r.at(-1)).toMatch(/^451 4\.6\.0 Alias expansion error/);
    await sys.waitForLog(/warning: NOQUEUE: unreasonable virtual_alias_maps map nesting for loop1@hosted\.test -- message not accepted, try again later/);
  }, 60_000);

  test("sendmail: one-to-many to two local users, and an extension copied to the result", async () => {
    await sys.send(["team@hosted.test"], message("va-sendmail-team"));
    await inMbox(sys, alice, "va-sendmail-team");
    await inMbox(sys, bob, "va-sendmail-team");
    await sys.send(["sales+box@hosted.test"], message("va-sendmail-ext"));
    const relayed = await waitFor("va-sendmail-ext at the sink", () => sink.messages().find((m) => m.data.includes("Subject: va-sendmail-ext")));
    expect(relayed.rcpt_tos).toEqual(["far+box@sink.example"]);
    const m = await inMbox(sys, alice, "va-sendmail-ext");
    expect(m).toContain(`Delivered-To: ${alice.name}+box@${HOST}`);
    await sys.waitForEmptyQueue();
    expect(sys.log()).not.toMatch(/User unknown in virtual alias table/);
  }, 60_000);
});

describe.skipIf(!isRoot)("virtual alias table that cannot be read", () => {
  let sys: SmtpdSystem;
  let alice: PasswdEntry;
  let table: string;

  beforeAll(async () => {
    ensureMailOwner();
    sys = new SmtpdSystem({ local_transport: "local", mynetworks: "127.0.0.0/8", virtual_alias_domains: "hosted.test" });
    alice = users.add("al2", join(sys.dir, "home"));
    table = sys.etcFile("virtual", `info@hosted.test ${alice.name}\n`);
    chmodSync(table, 0o000);
    sys.writeConfig({ virtual_alias_maps: `texthash:${table}` });
    await sys.start();
  }, 60_000);

  afterAll(async () => {
    await sys?.cleanup();
    users.removeAll();
  });

  test("SMTP gets 451 4.3.0; sendmail's mail waits in maildrop/ and is delivered once the table is readable", async () => {
    const r = await smtpSend(sys.port, ["info@hosted.test"], "va-unreadable-smtp");
    expect(r.at(-1)).toMatch(/^451 4\.3\.0 /);

    await sys.send(["info@hosted.test"], message("va-unreadable-sendmail"));
    await sys.waitForLog(/virtual_alias_maps map lookup problem for info@hosted\.test .*-- message not accepted, try again later/);
    expect(readdirSync(join(sys.queue, "maildrop")).length).toBe(1);
    expect(sys.log()).not.toMatch(/status=bounced/);

    chmodSync(table, 0o644);
    // another submission wakes pickup, which takes the waiting file too
    await sys.send([alice.name], message("va-unreadable-wakeup"));
    await inMbox(sys, alice, "va-unreadable-sendmail");
    await inMbox(sys, alice, "va-unreadable-wakeup");
    expect(sys.log()).not.toMatch(/status=bounced/);
  }, 60_000);
});
