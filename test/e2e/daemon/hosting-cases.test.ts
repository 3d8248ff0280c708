/**
 * docs/virtual.md's hosting cases that no other test runs, through the
 * whole running system as root, set up as the page sets them up (one
 * virtual mailbox domain, example.com):
 *
 * - autoreplies: alice@example.com is aliased to herself and to
 *   alice@example.com@autoreply.example.com, which transport_maps sends to
 *   an `autoreply` pipe service: she gets the message and the service is
 *   called with the sender and ${mailbox} = alice@example.com;
 * - a mailing list through a pipe service: listname@example.com is listed
 *   in virtual_mailbox_maps (so the SMTP server knows it) and routed per
 *   address by transport_maps to the `mylist` service;
 * - a mailing list through local aliases: the list's addresses are virtual
 *   aliases of local names whose /etc/aliases entries run a command;
 * - a catch-all in virtual_mailbox_maps takes unknown users, real
 *   mailboxes keep theirs.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { run } from "../../helpers/run.ts";
import { freePort } from "../../helpers/smtpd-system.ts";
import { ensureMailOwner, HOST, isRoot, MailSystem, maildirMessages, TestUsers, waitFor } from "../../helpers/mail-system.ts";

const users = new TestUsers("phc");
let sys: MailSystem | undefined;
afterAll(async () => {
  await sys?.cleanup();
  users.removeAll();
});

/** Appends "NAME ARGS..." and the message to OUT; the command the services and the alias run. */
const SCRIPT = `#!/bin/sh
out="$1"; shift
{ echo "ARGS $*"; cat; echo "--END--"; } >> "$out"
`;

describe.skipIf(!isRoot)("docs/virtual.md's autoreply, mailing list and catch-all cases", () => {
  let vmail: PasswdEntry;
  let runner: PasswdEntry;
  let base: string;
  let out: string;
  let port: number;
  const calls = () => {
    try {
      return readFileSync(out, "utf8").split("--END--\n").filter(Boolean);
    } catch {
      return [];
    }
  };
  const called = (what: string, subject: string) => waitFor(`${what} with "${subject}"`, () => calls().find((c) => c.startsWith(`ARGS ${what}`) && c.includes(`Subject: ${subject}\n`)));
  const inMaildir = (user: string, subject: string) => waitFor(`"${subject}" for ${user}`, () => maildirMessages(join(base, "example.com", user)).find((m) => m.includes(`Subject: ${subject}\n`)));

  function swaks(to: string, subject: string): { code: number; out: string } {
    const r = Bun.spawnSync(["swaks", "--server", `127.0.0.1:${port}`, "--helo", "client.example.org", "--from", "friend@example.org", "--to", to, "--header", `Subject: ${subject}`, "--body", "over SMTP\n"], { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
    return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() };
  }

  beforeAll(async () => {
    ensureMailOwner();
    sys = new MailSystem();
    const homes = join(sys.dir, "home");
    vmail = users.add("v", homes);
    runner = users.add("r", homes);
    base = join(sys.dir, "vhosts");
    mkdirSync(join(base, "example.com"), { recursive: true, mode: 0o755 });
    chownSync(join(base, "example.com"), vmail.uid, vmail.gid);
    const outDir = join(sys.dir, "out");
    // the pipe services run as `runner`; the alias command as default_privs (nobody): both may append
    mkdirSync(outDir, { mode: 0o755 });
    out = join(outDir, "calls");
    writeFileSync(out, "");
    chmodSync(out, 0o666);
    const script = join(sys.dir, "record.sh");
    writeFileSync(script, SCRIPT, { mode: 0o755 });
    const vmailbox = sys.etcFile("vmailbox", "alice@example.com  example.com/alice/\nbob@example.com  example.com/bob/\nlistname@example.com  x\n@example.com  example.com/catchall/\n");
    const virtual = sys.etcFile(
      "virtual",
      [
        "alice@example.com  alice@example.com, alice@example.com@autoreply.example.com",
        "oldlist@example.com  oldlist",
        "oldlist-request@example.com  oldlist-request",
        "",
      ].join("\n"),
    );
    const transport = sys.etcFile("transport", "autoreply.example.com  autoreply:\nlistname@example.com  mylist:\n");
    const aliases = sys.etcFile("aliases", `oldlist: "|${script} ${out} alias-post oldlist"\noldlist-request: "|${script} ${out} alias-request oldlist"\n`);
    const pa = await run("postalias", ["-c", sys.etc, aliases]);
    if (pa.code !== 0) throw new Error(`postalias: ${pa.stderr}`);
    port = freePort();
    sys.writeConfig(
      {
        virtual_mailbox_domains: "example.com",
        virtual_mailbox_base: base,
        virtual_mailbox_maps: `texthash:${vmailbox}`,
        virtual_uid_maps: `static:${vmail.uid}`,
        virtual_gid_maps: `static:${vmail.gid}`,
        virtual_alias_maps: `texthash:${virtual}`,
        transport_maps: `texthash:${transport}`,
        alias_maps: `hash:${aliases}`,
        autoreply_destination_recipient_limit: 1,
        mylist_destination_recipient_limit: 1,
      },
      [
        `[services.smtp]\nlisten = "127.0.0.1:${port}"\n`,
        `[services.autoreply]\nrole = "pipe"\nuser = "${runner.name}"\nargv = "${script} ${out} autoreply \${sender} \${mailbox}"\n`,
        `[services.mylist]\nrole = "pipe"\nuser = "${runner.name}"\nflags = "FRDO"\nargv = "${script} ${out} mylist \${sender} \${recipient}"\n`,
      ].join("\n"),
    );
    const check = await run("postfix", ["-c", sys.etc, "check"]);
    if (check.code !== 0) throw new Error(`postfix check: ${check.stderr}`);
    await sys.start();
    await waitFor("the smtpd listener", () => swaks("bob@example.com", "warm-up").code === 0);
  }, 60_000);

  test("autoreply: alice gets the message, and the autoreply service runs with the sender and ${mailbox} = her address", async () => {
    expect(swaks("alice@example.com", "hc-vacation")).toMatchObject({ code: 0 });
    expect(await inMaildir("alice", "hc-vacation")).toContain("Delivered-To: alice@example.com\n");
    await called("autoreply friend@example.org alice@example.com\n", "hc-vacation");
    await sys!.waitForLog(/to=<alice@example\.com@autoreply\.example\.com>, orig_to=<alice@example\.com>, relay=autoreply, .*status=sent/);
  });

  test("a list through a pipe service: accepted at RCPT (virtual_mailbox_maps) and handed to the service, not to virtual(8)", async () => {
    expect(swaks("listname@example.com", "hc-list")).toMatchObject({ code: 0 });
    const c = await called("mylist friend@example.org listname@example.com\n", "hc-list");
    expect(c).toContain("Delivered-To: listname@example.com\n");
    await sys!.waitForLog(/to=<listname@example\.com>, relay=mylist, .*status=sent/);
  });

  test("a list through local aliases: the virtual alias reaches the local alias, whose command runs", async () => {
    expect(swaks("oldlist@example.com", "hc-alias-list")).toMatchObject({ code: 0 });
    await called("alias-post oldlist\n", "hc-alias-list");
    await sys!.waitForLog(new RegExp(`to=<oldlist@${HOST.replace(/\./g, "\\.")}>, orig_to=<oldlist@example\\.com>, relay=local, .*status=sent \\(delivered to command`));
  });

  test("the catch-all in virtual_mailbox_maps takes an unknown user; bob keeps his mailbox", async () => {
    expect(swaks("nobody-here@example.com", "hc-catchall")).toMatchObject({ code: 0 });
    expect(swaks("bob@example.com", "hc-bob")).toMatchObject({ code: 0 });
    expect(await inMaildir("catchall", "hc-catchall")).toContain("Delivered-To: nobody-here@example.com\n");
    await inMaildir("bob", "hc-bob");
    expect(maildirMessages(join(base, "example.com", "catchall")).some((m) => m.includes("Subject: hc-bob\n"))).toBe(false);
  });
});
