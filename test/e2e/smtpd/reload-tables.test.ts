/**
 * What a reload leaves open in smtpd: each reload names another hash: table in
 * check_recipient_access, and a session after it looks that table up. The tables of
 * the replaced configurations must be closed (their index files no longer open in the
 * smtpd process: /proc/PID/fd shows their .sqlite index files), but a session that started before a reload keeps its
 * table to its end and gets its answers from it.
 *
 * Runs the system as the test's user (root: smtpd drops to mail_owner, which must read the
 * tables: they are world-readable files under etc/).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readlinkSync } from "node:fs";
import { HOST, RawSmtp, SmtpdSystem, waitFor } from "../../helpers/smtpd-system.ts";

let sys: SmtpdSystem;

/** A hash: table that rejects no@HOST with a text naming `name`; its spec. */
async function accessTable(name: string): Promise<string> {
  const path = sys.etcFile(`access-${name}`, `no@${HOST} 554 5.7.1 refused by ${name}\n`);
  const r = await sys.postern(["postmap", `hash:${path}`]);
  if (r.code !== 0) throw new Error(`postmap: ${r.stderr}`);
  return `hash:${path}`;
}

/** Rewrites the configuration to use the table `name`, reloads, and waits until smtpd has taken it. */
async function reloadWith(name: string): Promise<void> {
  sys.writeConfig({ smtpd_recipient_restrictions: `check_recipient_access ${await accessTable(name)}, permit` });
  const before = sys.log().match(/smtpd\[\d+\]: reload: configuration re-read/g)?.length ?? 0;
  const r = await sys.postern(["reload"]);
  if (r.code !== 0) throw new Error(`postern reload: ${r.stderr}`);
  await waitFor("smtpd to re-read its configuration", () => (sys.log().match(/smtpd\[\d+\]: reload: configuration re-read/g)?.length ?? 0) > before);
}

/** The access-* index files smtpd has open now. */
function openTables(): string[] {
  const pid = sys.roles().get("smtpd");
  if (pid === undefined) throw new Error("no smtpd process");
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      const m = /access-(\w+)\.sqlite$/.exec(target);
      if (m) out.push(m[1]!);
    } catch {}
  }
  return out.sort();
}

async function session(): Promise<RawSmtp> {
  const c = await RawSmtp.connect(sys.port);
  expect(await c.reply()).toStartWith("220 ");
  expect(await c.cmd("EHLO client.example.org")).toStartWith("250");
  expect(await c.cmd("MAIL FROM:<sender@example.org>")).toStartWith("250 ");
  return c;
}

beforeAll(async () => {
  sys = new SmtpdSystem({ smtpd_recipient_restrictions: "permit" });
  await sys.start();
}, 60_000);
afterAll(async () => {
  await sys?.cleanup();
}, 30_000);

describe("smtpd across reloads", () => {
  test("the tables of replaced configurations are closed", async () => {
    for (const name of ["a1", "a2", "a3", "a4", "a5"]) {
      await reloadWith(name);
      const c = await session();
      expect(await c.cmd(`RCPT TO:<no@${HOST}>`)).toContain(`refused by ${name}`);
      await c.cmd("QUIT");
      c.destroy();
    }
    await waitFor("smtpd to hold only the current table open", () => openTables().join() === "a5", 10_000).catch(() => undefined);
    expect(openTables()).toEqual(["a5"]);
  }, 60_000);

  test("a session in progress keeps its table through a reload, which closes once it ends", async () => {
    await reloadWith("b1");
    const c = await session();
    expect(await c.cmd(`RCPT TO:<no@${HOST}>`)).toContain("refused by b1");
    await reloadWith("b2");
    // the session's configuration is still b1's, and so is its table
    expect(await c.cmd(`RCPT TO:<no@${HOST}>`)).toContain("refused by b1");
    expect(await c.cmd(`RCPT TO:<root@${HOST}>`)).toStartWith("250 ");
    expect(openTables()).toEqual(["b1"]);
    const next = await session();
    expect(await next.cmd(`RCPT TO:<no@${HOST}>`)).toContain("refused by b2");
    expect(openTables()).toEqual(["b1", "b2"]);
    await next.cmd("QUIT");
    next.destroy();
    expect(await c.cmd("QUIT")).toStartWith("221 ");
    c.destroy();
    await waitFor("the old session's table to close", () => openTables().join() === "b2", 10_000).catch(() => undefined);
    expect(openTables()).toEqual(["b2"]);
  }, 60_000);
});
