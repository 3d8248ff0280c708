/**
 * Blind copies end to end (issue 12, part 2): always_bcc and
 * recipient_bcc_maps add recipients in cleanup, for mail from SMTP clients
 * and from sendmail; each copy is delivered like any recipient, and the
 * message's headers do not name it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ensureMailOwner, HOST, isRoot, mboxMessages, message, TestUsers, waitFor } from "../../helpers/mail-system.ts";
import { RawSmtp, SmtpdSystem } from "../../helpers/smtpd-system.ts";
import type { PasswdEntry } from "../../../src/util/passwd.ts";

const users = new TestUsers("pbc");

describe.skipIf(!isRoot)("blind copies", () => {
  let sys: SmtpdSystem;
  let alice: PasswdEntry;
  let boss: PasswdEntry;
  let archive: PasswdEntry;

  const inMbox = (user: PasswdEntry, subject: string) => {
    const path = join(sys.spool, user.name);
    return waitFor(`"${subject}" in ${path}`, () => mboxMessages(path).find((m) => m.includes(`Subject: ${subject}\n`)));
  };

  beforeAll(async () => {
    ensureMailOwner();
    sys = new SmtpdSystem({ local_transport: "local", mynetworks: "127.0.0.0/8" });
    const homes = join(sys.dir, "home");
    alice = users.add("al", homes);
    boss = users.add("bs", homes);
    archive = users.add("ar", homes);
    const table = sys.etcFile("recipient_bcc", `${alice.name}@${HOST} ${boss.name}@${HOST}\n`);
    sys.writeConfig({ always_bcc: archive.name, recipient_bcc_maps: `texthash:${table}` });
    await sys.start();
  }, 60_000);

  afterAll(async () => {
    await sys?.cleanup();
    users.removeAll();
  });

  test("SMTP: the recipient, its recipient_bcc_maps copy and the always_bcc copy all get the message", async () => {
    const c = await RawSmtp.connect(sys.port);
    expect(await c.reply()).toMatch(/^220 /);
    await c.cmd("EHLO client.example");
    expect(await c.cmd("MAIL FROM:<x@client.example>")).toMatch(/^250 /);
    expect(await c.cmd(`RCPT TO:<${alice.name}@${HOST}>`)).toMatch(/^250 /);
    expect(await c.cmd("DATA")).toMatch(/^354 /);
    expect(await c.cmd(`${message("bcc-smtp").replace(/\n/g, "\r\n")}.`)).toMatch(/^250 /);
    await c.quit();
    await inMbox(alice, "bcc-smtp");
    const copy = await inMbox(boss, "bcc-smtp");
    const archived = await inMbox(archive, "bcc-smtp");
    for (const m of [copy, archived]) expect(m).not.toMatch(new RegExp(`^(To|Cc|Bcc):.*(${boss.name}|${archive.name})`, "m"));
  }, 60_000);

  test("sendmail: the same copies", async () => {
    await sys.send([alice.name], message("bcc-sendmail"));
    await inMbox(alice, "bcc-sendmail");
    await inMbox(boss, "bcc-sendmail");
    await inMbox(archive, "bcc-sendmail");
    await sys.waitForEmptyQueue();
  }, 60_000);
});
