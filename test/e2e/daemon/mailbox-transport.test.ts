/**
 * local(8) handing recipients to another transport through the running
 * system, as root: mailbox_transport = lmtp:inet:127.0.0.1:PORT takes a
 * local user's mail to a Python LMTP server instead of the user's
 * home_mailbox, and fallback_transport takes an unknown local user's mail
 * there while known users keep their spool mailbox. The log lines are
 * Postfix's: local's "passing <addr> to transport=lmtp", then the LMTP
 * client's to=, relay= and status=sent with the server's reply.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { startPythonSink, type PythonSink } from "../../helpers/python-sink.ts";
import { ensureMailOwner, HOST, isRoot, MailSystem, mboxMessages, message, TestUsers, waitFor, type Params } from "../../helpers/mail-system.ts";

const users = new TestUsers("pmt");
const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  users.removeAll();
});

async function system(params: Params): Promise<MailSystem> {
  ensureMailOwner();
  const sys = new MailSystem(params);
  cleanups.push(() => sys.cleanup());
  await sys.start();
  return sys;
}

async function lmtpServer(): Promise<PythonSink> {
  const s = await startPythonSink({ lmtp: true });
  cleanups.push(() => s.stop());
  return s;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe.skipIf(!isRoot)("local(8) passing mail to LMTP", () => {
  test("mailbox_transport = lmtp:inet:127.0.0.1:PORT: a local user's mail goes to the LMTP server, not to home_mailbox", async () => {
    const py = await lmtpServer();
    const sys = await system({ mailbox_transport: `lmtp:inet:127.0.0.1:${py.port}`, home_mailbox: "Maildir/" });
    const user = users.add("a", join(sys.dir, "home"));
    const rcpt = `${user.name}@${HOST}`;
    await sys.send([rcpt], message("to-lmtp"));
    const id = (await sys.waitForLog(new RegExp(`postfix/local\\[\\d+\\]: ([0-9A-F]+): passing <${esc(rcpt)}> to transport=lmtp$`, "m")))[1]!;
    await sys.waitForLog(new RegExp(`postfix/lmtp\\[\\d+\\]: ${id}: to=<${esc(rcpt)}>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${py.port}, .*dsn=2\\.0\\.0, status=sent \\(250 2\\.0\\.0 <${esc(rcpt)}> Saved\\)`));
    await waitFor("the message at the LMTP server", () => py.messages().find((m) => m.data.includes("Subject: to-lmtp")));
    expect(py.messages().map((m) => m.rcpt_tos)).toEqual([[rcpt]]);
    expect(existsSync(join(user.home, "Maildir"))).toBe(false);
    await sys.waitForLog(new RegExp(`${id}: removed`));
  });

  test("fallback_transport = lmtp:inet:127.0.0.1:PORT: an unknown local user's mail goes there; a known user's to the spool", async () => {
    const py = await lmtpServer();
    const sys = await system({ fallback_transport: `lmtp:inet:127.0.0.1:${py.port}` });
    const user = users.add("b", join(sys.dir, "home"));
    const known = `${user.name}@${HOST}`;
    const unknown = `nosuch${user.name}@${HOST}`;
    await sys.send([known, unknown], message("fallback"));
    await sys.waitForLog(new RegExp(`postfix/lmtp\\[\\d+\\]: [0-9A-F]+: to=<${esc(unknown)}>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${py.port}, .*status=sent \\(250 2\\.0\\.0 <${esc(unknown)}> Saved\\)`));
    await sys.waitForLog(new RegExp(`postfix/local\\[\\d+\\]: [0-9A-F]+: to=<${esc(known)}>, relay=local, .*status=sent \\(delivered to mailbox\\)`));
    await waitFor("the known user's mailbox", () => mboxMessages(join(sys.spool, user.name)).find((m) => m.includes("Subject: fallback")));
    await waitFor("the message at the LMTP server", () => py.messages().find((m) => m.data.includes("Subject: fallback")));
    expect(py.messages().map((m) => m.rcpt_tos)).toEqual([[unknown]]);
  });

  test("mailbox_transport_maps after alias expansion (orig_to= in the LMTP line), -bv as RCPT only, a map result naming local deferred 4.3.5", async () => {
    const py = await lmtpServer();
    const sys = new MailSystem({});
    cleanups.push(() => sys.cleanup());
    const user = users.add("c", join(sys.dir, "home"));
    const looped = users.add("d", join(sys.dir, "home"));
    ensureMailOwner();
    sys.writeConfig({
      alias_maps: `inline:{ {team = ${user.name}} }`,
      mailbox_transport_maps: `inline:{ {${user.name} = lmtp:inet:127.0.0.1:${py.port}}, {${looped.name} = local:x} }`,
    });
    await sys.start();
    const rcpt = `${user.name}@${HOST}`;
    await sys.send([`team@${HOST}`], message("aliased"));
    await sys.waitForLog(new RegExp(`postfix/lmtp\\[\\d+\\]: [0-9A-F]+: to=<${esc(rcpt)}>, orig_to=<team@${esc(HOST)}>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${py.port}, .*status=sent \\(250 2\\.0\\.0 <${esc(rcpt)}> Saved\\)`));
    await waitFor("the message at the LMTP server", () => py.messages().find((m) => m.data.includes("Subject: aliased")));

    await sys.sendmail(["-bv", user.name], "");
    await sys.waitForLog(new RegExp(`postfix/lmtp\\[\\d+\\]: [0-9A-F]+: to=<${esc(rcpt)}>, orig_to=<${esc(user.name)}>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${py.port}, .*status=deliverable`));

    await sys.send([looped.name], message("to-local"));
    await sys.waitForLog(new RegExp(`local delivery cannot pass mail to the local transport itself; deferring mail for ${esc(looped.name)}@`));
    await sys.waitForLog(new RegExp(`: to=<${esc(looped.name)}@${esc(HOST)}>, .*dsn=4\\.3\\.5, status=deferred \\(mail system configuration error\\)`));
    expect(py.messages().map((m) => m.rcpt_tos)).toEqual([[rcpt]]);
  });
});
