/**
 * The local delivery agent end to end, unprivileged: everything runs as the
 * user running the tests, with a passwd file of the test's own whose users
 * have homes under a temporary directory. Queue files are committed with
 * the queue API; the agent is called as the queue manager calls it.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLocalAgent, type LocalAgent } from "../../../src/local/agent.ts";
import { readQueueFile } from "../../../src/global/queue/store.ts";
import { InProcessPerformer, type Performer } from "../../../src/local/worker/performer.ts";
import type { WorkerJob } from "../../../src/local/worker/jobs.ts";
import { memoryTable, passwdFile, queueMessage, testSite, type TestSite } from "../../helpers/local-delivery.ts";
import { removeDir } from "../../helpers/run.ts";
import { CANNOT_MOUNT, mountSmallFs, type SmallFs } from "../../helpers/small-fs.ts";

const uid = process.getuid!();
const gid = process.getgid!();
const sites: TestSite[] = [];
const agents: LocalAgent[] = [];

afterAll(async () => {
  for (const a of agents) await a.close();
  for (const s of sites) removeDir(s.dir);
});

interface Setup {
  site: TestSite;
  agent: LocalAgent;
  spool: string;
  home: (user: string) => string;
}

function setup(settings: Record<string, string | number | boolean> = {}, aliases: Record<string, string> = {}, performer?: Performer): Setup {
  const base = testSite();
  sites.push(base);
  const spool = join(base.dir, "spool");
  mkdirSync(spool);
  const site = testSite({ mail_spool_directory: spool, alias_maps: "memory:aliases", recipient_delimiter: "+", ...settings }, base.dir);
  const home = (user: string) => join(base.dir, "home", user);
  for (const u of ["alice", "bob"]) mkdirSync(home(u), { recursive: true });
  const pw = passwdFile(base.dir, [`alice:x:${uid}:${gid}:Alice:${home("alice")}:/bin/sh`, `bob:x:${uid}:${gid}:Bob:${home("bob")}:/bin/bash`]);
  const agent = createLocalAgent(site.config, { privileged: false, passwdFile: pw, openTable: (spec) => memoryTable(spec, aliases), ...(performer ? { performer } : {}) });
  agents.push(agent);
  return { site, agent, spool, home };
}

/** A directory of its own for files a test names but never creates. */
function site0(): string {
  const s = testSite();
  sites.push(s);
  return s.dir;
}

describe("mailboxes", () => {
  test("mbox in mail_spool_directory: From_ line, headers, >From quoting, blank line; appended", async () => {
    const { site, agent, spool } = setup();
    const req = await queueMessage(site, { recipients: [{ address: "alice@mail.example.test", original: "Alice" }], content: "Subject: one\n\nFrom here\nbody" });
    expect(await agent.deliver(req)).toMatchObject([{ index: 0, status: "sent", dsn: "2.0.0", reason: "delivered to mailbox", relay: "local" }]);
    const req2 = await queueMessage(site, { sender: "", recipients: ["alice@mail.example.test"], content: "Subject: two\n\nsecond\n" });
    expect((await agent.deliver(req2))[0]!.status).toBe("sent");
    const box = readFileSync(join(spool, "alice"), "utf8");
    expect(box).toMatch(
      /^From sender@example\.org {2}\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\nReturn-Path: <sender@example\.org>\nX-Original-To: Alice\nDelivered-To: alice@mail\.example\.test\nSubject: one\n\n>From here\nbody\n\nFrom MAILER-DAEMON {2}.*\nReturn-Path: <>\nX-Original-To: alice@mail\.example\.test\nDelivered-To: alice@mail\.example\.test\nSubject: two\n\nsecond\n\n$/,
    );
    expect(statSync(join(spool, "alice")).mode & 0o777).toBe(0o600);
    expect(existsSync(join(spool, "alice.lock"))).toBe(false);
  });

  test("home_mailbox Maildir/: tmp, new and cur made; one file in new/ with Return-Path and Delivered-To", async () => {
    const { site, agent, home } = setup({ home_mailbox: "Maildir/" });
    const req = await queueMessage(site, { recipients: ["bob+lists@mail.example.test"], content: "Subject: m\n\nFrom x\n" });
    expect(await agent.deliver(req)).toMatchObject([{ status: "sent", reason: "delivered to maildir" }]);
    const md = join(home("bob"), "Maildir");
    expect(readdirSync(md).sort()).toEqual(["cur", "new", "tmp"]);
    expect(readdirSync(join(md, "tmp"))).toEqual([]);
    const files = readdirSync(join(md, "new"));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^\d+\.V[0-9a-f]+I[0-9a-f]+M\d+\./);
    expect(readFileSync(join(md, "new", files[0]!), "utf8")).toBe(
      "Return-Path: <sender@example.org>\nX-Original-To: bob+lists@mail.example.test\nDelivered-To: bob+lists@mail.example.test\nSubject: m\n\nFrom x\n",
    );
  });

  test("home_mailbox without a slash is an mbox file in the home directory", async () => {
    const { site, agent, home } = setup({ home_mailbox: "Mailbox" });
    await agent.deliver(await queueMessage(site, { recipients: ["bob@mail.example.test"], content: "S: x\n\nb\n" }));
    expect(readFileSync(join(home("bob"), "Mailbox"), "utf8")).toStartWith("From sender@example.org  ");
  });

  test("mail_spool_directory ending in a slash is a maildir per user", async () => {
    const { site, spool } = setup();
    const agent2 = createLocalAgent(testSite({ mail_spool_directory: `${spool}/md/`, alias_maps: "" }, site.dir).config, {
      privileged: false,
      passwdFile: join(site.dir, "passwd"),
    });
    agents.push(agent2);
    expect(await agent2.deliver(await queueMessage(site, { recipients: ["alice@localhost"], content: "S: x\n\nb\n" }))).toMatchObject([{ reason: "delivered to maildir" }]);
    expect(readdirSync(join(spool, "md", "alice", "new"))).toHaveLength(1);
  });

  test("mailbox_size_limit: the write fails with File too large and the mailbox keeps its old size", async () => {
    const { site, agent, spool } = setup({ mailbox_size_limit: 400, message_size_limit: 300 });
    const first = await agent.deliver(await queueMessage(site, { recipients: ["alice@localhost"], content: "Subject: a\n\nsmall\n" }));
    expect(first[0]!.status).toBe("sent");
    const size = statSync(join(spool, "alice")).size;
    const r = await agent.deliver(await queueMessage(site, { recipients: ["alice@localhost"], content: `Subject: b\n\n${"x".repeat(280)}\n` }));
    expect(r).toMatchObject([
      { status: "bounced", dsn: "5.2.2", reason: `cannot update mailbox ${join(spool, "alice")} for user alice. error writing message: File too large` },
    ]);
    expect(statSync(join(spool, "alice")).size).toBe(size);
  });

  test("unprivileged with an empty local_recipient_maps, any local part has a maildir (npm start)", async () => {
    const base = testSite();
    sites.push(base);
    const site = testSite({ mail_spool_directory: `${base.dir}/mail/`, local_recipient_maps: "", alias_maps: "" }, base.dir);
    const agent = createLocalAgent(site.config, { privileged: false, passwdFile: passwdFile(base.dir, []) });
    agents.push(agent);
    expect(await agent.deliver(await queueMessage(site, { recipients: ["you@localhost"], content: "S: x\n\nb\n" }))).toMatchObject([{ status: "sent", reason: "delivered to maildir" }]);
    expect(readdirSync(join(base.dir, "mail", "you", "new"))).toHaveLength(1);
    // with the default local_recipient_maps the name is unknown, as with Postfix
    const strict = createLocalAgent(testSite({ mail_spool_directory: `${base.dir}/mail/`, alias_maps: "" }, base.dir).config, { privileged: false, passwdFile: passwdFile(base.dir, []) });
    agents.push(strict);
    expect(await strict.deliver(await queueMessage(site, { recipients: ["you@localhost"], content: "S: x\n\nb\n" }))).toMatchObject([{ status: "bounced", dsn: "5.1.1" }]);
  });

  // issue 9 item 5: RCPT TO:<"../home/.bashrc"@localhost> appended the message to a file outside the spool
  for (const kind of ["maildir", "mbox"] as const) {
    test(`unprivileged with an empty local_recipient_maps, a name that is no plain file name is an unknown user (${kind} spool)`, async () => {
      const base = testSite();
      sites.push(base);
      const spoolDir = join(base.dir, "mail");
      mkdirSync(spoolDir);
      const home = join(base.dir, "home");
      mkdirSync(home);
      writeFileSync(join(home, ".bashrc"), "# rc\n");
      const site = testSite({ mail_spool_directory: kind === "maildir" ? `${spoolDir}/` : spoolDir, local_recipient_maps: "", alias_maps: "" }, base.dir);
      const agent = createLocalAgent(site.config, { privileged: false, passwdFile: passwdFile(base.dir, []) });
      agents.push(agent);
      const before = readdirSync(base.dir).sort();
      const names = ["../home/.bashrc", "../x", "..", ".", ".bashrc", "a/b", "/tmp/x", "a\u0001b", "a\nb", "a\u007fb", "x".repeat(65)];
      const r = await agent.deliver(await queueMessage(site, { recipients: names.map((n) => `${n}@localhost`), content: "S: x\n\nb\n" }));
      expect(r.map((x) => [x.status, x.dsn, x.reason])).toEqual(names.map((n) => ["bounced", "5.1.1", `unknown user: "${n.toLowerCase()}"`]));
      expect(readFileSync(join(home, ".bashrc"), "utf8")).toBe("# rc\n");
      expect(readdirSync(home)).toEqual([".bashrc"]);
      expect(readdirSync(spoolDir)).toEqual([]);
      expect(readdirSync(base.dir).sort()).toEqual(before);
      // a plain name still gets its mailbox
      expect(await agent.deliver(await queueMessage(site, { recipients: ["you@localhost"], content: "S: x\n\nb\n" }))).toMatchObject([{ status: "sent" }]);
      expect(readdirSync(spoolDir)).toEqual(["you"]);
    });
  }

  test("the mailbox writers refuse a path outside the directory they are given", async () => {
    const base = testSite();
    sites.push(base);
    const { executeJob } = await import("../../../src/local/worker/job-exec.ts");
    const spoolDir = join(base.dir, "mail");
    const lock = { dotlock: false, fcntl: true, flock: false, dotlockMayFail: false, attempts: 1, delayMs: 0, staleSeconds: 500 };
    const mbox = await executeJob({ type: "mbox", path: `${spoolDir}/../escaped`, prefix: "", quote: true, blank: true, lock, sizeLimit: 0, defaultDsn: "5.2.0", within: spoolDir }, Buffer.from("S: x\n\nb\n"));
    expect(mbox).toMatchObject({ ok: false, dsn: "4.3.0" });
    const md = await executeJob({ type: "maildir", dir: `${spoolDir}/../escaped/`, prefix: "", sizeLimit: 0, hostname: "h", within: `${spoolDir}/` }, Buffer.from("S: x\n\nb\n"));
    expect(md).toMatchObject({ ok: false, dsn: "4.3.0" });
    expect(existsSync(join(base.dir, "escaped"))).toBe(false);
  });

  test("a symbolic link or a hard link as mailbox is refused", async () => {
    const { site, agent, spool } = setup();
    // a world-writable spool, as /var/mail with its sticky bit: a link there is never trusted
    chmodSync(spool, 0o1777);
    writeFileSync(join(site.dir, "target"), "");
    symlinkSync(join(site.dir, "target"), join(spool, "alice"));
    writeFileSync(join(site.dir, "other"), "");
    linkSync(join(site.dir, "other"), join(spool, "bob"));
    const r = await agent.deliver(await queueMessage(site, { recipients: ["alice@localhost", "bob@localhost"], content: "S: x\n\nb\n" }));
    expect(r).toMatchObject([
      { status: "bounced", dsn: "5.2.0", reason: `cannot update mailbox ${spool}/alice for user alice. file is a symbolic link` },
      { status: "bounced", dsn: "5.2.0", reason: `cannot update mailbox ${spool}/bob for user bob. file has 2 hard links` },
    ]);
    expect(readFileSync(join(site.dir, "target"), "utf8")).toBe("");
    expect(readFileSync(join(site.dir, "other"), "utf8")).toBe("");
  });
});

describe("the queue file a request names", () => {
  test("only QUEUE/ID under the queue directory, no link, one link: anything else is deferred unread", async () => {
    const { site, agent, spool } = setup();
    const good = await queueMessage(site, { recipients: ["alice@localhost"], content: "Subject: one\n\nbody\n" });
    // a secret the request's writer (mail_owner) must not get delivered into a mailbox
    const secret = join(site.dir, "secret");
    writeFileSync(secret, `${readFileSync(good.queueFile, "latin1")}`, { mode: 0o600 });
    const active = join(site.queueDirectory, "active");
    symlinkSync(secret, join(active, "4F00000001A"));
    linkSync(secret, join(active, "4F00000002B"));
    for (const queueFile of [secret, join(active, "4F00000001A"), join(active, "4F00000002B"), join(active, "..", "..", "secret"), join(active, "not-an-id")]) {
      const r = await agent.deliver({ ...good, queueFile });
      expect({ queueFile, r }).toEqual({ queueFile, r: [{ index: 0, status: "deferred", dsn: "4.3.0", reason: "cannot read the queue file", relay: "local", action: "delayed" }] });
    }
    expect(existsSync(join(spool, "alice"))).toBe(false);
    expect(await agent.deliver(good)).toMatchObject([{ status: "sent" }]);
    expect(readFileSync(join(spool, "alice"), "utf8")).toContain("Subject: one");
  });
});

describe("locks", () => {
  test("a mailbox locked with flock by a reader defers with 4.2.0 after the attempts", async () => {
    const { site, agent, spool } = setup({ deliver_lock_attempts: 2, mailbox_delivery_lock: "flock" });
    writeFileSync(join(spool, "alice"), "", { mode: 0o600 });
    const holder = Bun.spawn(["flock", "-x", join(spool, "alice"), "sleep", "30"], { stdout: "ignore", stderr: "ignore" });
    try {
      // the holder has the lock once a non-blocking flock of our own fails
      const locked = () => Bun.spawnSync(["flock", "-xn", join(spool, "alice"), "true"]).exitCode === 1;
      for (const deadline = Date.now() + 10_000; !locked() && Date.now() < deadline; ) await Bun.sleep(10);
      expect(locked()).toBe(true);
      const r = await agent.deliver(await queueMessage(site, { recipients: ["alice@localhost"], content: "S: x\n\nb\n" }));
      expect(r).toMatchObject([
        { status: "deferred", dsn: "4.2.0", reason: `cannot update mailbox ${spool}/alice for user alice. unable to lock for exclusive access: Resource temporarily unavailable` },
      ]);
    } finally {
      holder.kill();
    }
    expect(readFileSync(join(spool, "alice"), "utf8")).toBe("");
  });

  test("an fcntl lock held by another process defers; after release delivery works", async () => {
    const { site, agent, spool } = setup({ deliver_lock_attempts: 1, mailbox_delivery_lock: "fcntl" });
    const box = join(spool, "alice");
    writeFileSync(box, "", { mode: 0o600 });
    const holder = Bun.spawn(["python3", "-c", `import fcntl,sys,time\nf=open(sys.argv[1],'a')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\ntime.sleep(30)`, box], {
      stdout: "pipe",
      stderr: "ignore",
    });
    const reader = (holder.stdout as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    const r = await agent.deliver(await queueMessage(site, { recipients: ["alice@localhost"], content: "S: x\n\nb\n" }));
    expect(r[0]).toMatchObject({ status: "deferred", dsn: "4.2.0" });
    holder.kill();
    await holder.exited;
    expect((await agent.deliver(await queueMessage(site, { recipients: ["alice@localhost"], content: "S: x\n\nb\n" })))[0]!.status).toBe("sent");
  });

  test("a fresh dotlock defers; a stale one is removed", async () => {
    const { site, agent, spool } = setup({ deliver_lock_attempts: 2, mailbox_delivery_lock: "dotlock", stale_lock_time: "600s" });
    writeFileSync(join(spool, "alice.lock"), "");
    const r = await agent.deliver(await queueMessage(site, { recipients: ["alice@localhost"], content: "S: x\n\nb\n" }));
    expect(r).toMatchObject([{ status: "deferred", dsn: "4.2.0", reason: `cannot update mailbox ${spool}/alice for user alice. unable to create lock file ${spool}/alice.lock: File exists` }]);

    const stale = setup({ deliver_lock_attempts: 3, mailbox_delivery_lock: "dotlock", stale_lock_time: "0s" });
    writeFileSync(join(stale.spool, "alice.lock"), "");
    utimesSync(join(stale.spool, "alice.lock"), new Date(0), new Date(0));
    const r2 = await stale.agent.deliver(await queueMessage(stale.site, { recipients: ["alice@localhost"], content: "S: x\n\nb\n" }));
    expect(r2[0]!.status).toBe("sent");
    expect(existsSync(join(stale.spool, "alice.lock"))).toBe(false);
  });
});

describe("aliases", () => {
  test("an alias to local users delivers to each, logged with the final address", async () => {
    const { site, agent, spool } = setup({}, { staff: "alice, bob, nosuchuser" });
    const r = await agent.deliver(await queueMessage(site, { recipients: [{ address: "staff@mail.example.test", original: "staff" }], content: "S: x\n\nb\n" }));
    expect(r[0]).toMatchObject({ status: "sent", reason: "delivered to mailbox" });
    expect(r[0]!.expanded).toEqual([
      { address: "alice@mail.example.test", status: "sent", dsn: "2.0.0", reason: "delivered to mailbox", action: "delivered" },
      { address: "bob@mail.example.test", status: "sent", dsn: "2.0.0", reason: "delivered to mailbox", action: "delivered" },
      { address: "nosuchuser@mail.example.test", status: "bounced", dsn: "5.1.1", reason: 'unknown user: "nosuchuser"', action: "failed" },
    ]);
    // X-Original-To keeps the original recipient; Delivered-To is the address that was first delivered to
    expect(readFileSync(join(spool, "bob"), "utf8")).toContain("X-Original-To: staff\nDelivered-To: staff@mail.example.test\n");
  });

  test("files, commands, :include: and the allow_mail_to_* classes", async () => {
    const base = setup();
    const dir = base.site.dir;
    writeFileSync(join(dir, "list"), `# members\nbob\n"|echo included"\n${dir}/inc.mbox\n`);
    const { site, agent } = setup({ allow_mail_to_files: "alias" }, {
      tofile: `${dir}/alias.mbox`,
      tocmd: `"|env > ${dir}/env.out"`,
      list: `:include:${dir}/list`,
      tomaildir: `${dir}/md/`,
    });
    const r = await agent.deliver(
      await queueMessage(site, {
        recipients: ["tofile@localhost", { address: "tocmd+ext@localhost", original: "tocmd+ext" }, "list@localhost", "tomaildir@localhost"],
        content: "S: x\n\nFrom b\n",
      }),
    );
    expect(r[0]).toMatchObject({ status: "sent", reason: `delivered to file: ${dir}/alias.mbox` });
    expect(r[1]).toMatchObject({ status: "sent", reason: `delivered to command: env > ${dir}/env.out` });
    expect(readFileSync(join(dir, "alias.mbox"), "utf8")).toContain("\n>From b\n\n");
    const env = Object.fromEntries(
      readFileSync(join(dir, "env.out"), "utf8")
        .trim()
        .split("\n")
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    expect(env).toMatchObject({
      USER: "tocmd",
      LOGNAME: "tocmd",
      EXTENSION: "ext",
      LOCAL: "tocmd+ext",
      DOMAIN: "localhost",
      RECIPIENT: "tocmd+ext@localhost",
      ORIGINAL_RECIPIENT: "tocmd+ext",
      SENDER: "sender@example.org",
      PATH: "/usr/bin:/bin",
    });
    // an alias has no user context: no HOME or SHELL
    expect(env.HOME).toBeUndefined();
    // :include: members: local users are forwarded, commands and files are restricted by default
    expect(r[2]!.expanded!.map((e) => `${e.status} ${e.dsn} ${e.reason.replace(/[0-9A-F]{6,}$/, "ID")}`)).toEqual([
      "bounced 5.7.1 mail to command is restricted",
      "bounced 5.7.1 mail to file is restricted",
      "sent 2.0.0 forwarded as ID",
    ]);
    expect(r[3]).toMatchObject({ status: "sent", reason: "delivered to maildir" });
    expect(readdirSync(join(dir, "md", "new"))).toHaveLength(1);
  });

  test("an alias to another domain is forwarded as a new queue file", async () => {
    const { site, agent } = setup({}, { fwd: "someone@remote.example, alice" });
    const req = await queueMessage(site, { recipients: [{ address: "fwd@mail.example.test", original: "fwd" }], content: "Subject: f\n\nbody\n", attributes: { client_address: "192.0.2.1" } });
    const r = await agent.deliver(req);
    const forwarded = r[0]!.expanded!.find((e) => e.reason.startsWith("forwarded as "))!;
    expect(forwarded).toMatchObject({ address: "fwd@mail.example.test", status: "sent", dsn: "2.0.0", action: "relayed" });
    const id = forwarded.reason.slice("forwarded as ".length);
    const q = readQueueFile(join(site.queueDirectory, "incoming", id));
    expect(q.sender).toBe("sender@example.org");
    expect(q.recipients).toEqual([{ address: "someone@remote.example", original: "fwd" }]);
    expect(q.attributes.client_address).toBe("192.0.2.1");
    expect(Buffer.from(q.content).toString()).toMatch(new RegExp(`^Received: by mail\\.example\\.test \\(postern\\)\\n\\tid ${id}; .*\\nDelivered-To: fwd@mail\\.example\\.test\\nSubject: f\\n`));
    // the forwarded message went through cleanup (rewrite context local): the headers this fixture lacks are added
    expect(Buffer.from(q.content).toString()).toMatch(/\nMessage-Id: <[0-9]+\.[0-9A-F]+@mail\.example\.test>\nDate: .*\nFrom: sender@example\.org\n\nbody\n$/);
  });

  describe.skipIf(CANNOT_MOUNT !== undefined)(`on a full queue file system${CANNOT_MOUNT ? ` (skipped: ${CANNOT_MOUNT})` : ""}`, () => {
    const mounts: SmallFs[] = [];
    afterAll(() => {
      for (const m of mounts) m.release();
    });

    test("a forwarded copy that cannot be written whole defers the recipient and leaves no file", async () => {
      const { site, agent } = setup({}, { fwd: "someone@remote.example" });
      const incoming = join(site.queueDirectory, "incoming");
      mounts.push(mountSmallFs("256k", incoming));
      const req = await queueMessage(site, { recipients: [{ address: "fwd@mail.example.test", original: "fwd" }], content: `Subject: big\n\n${"x".repeat(76)}\n`.repeat(5000) });
      const r = await agent.deliver(req);
      expect(r[0]).toMatchObject({ status: "deferred", dsn: "4.3.0", reason: "unable to forward message" });
      expect(readdirSync(incoming)).toEqual([]);
    });
  });

  test("the forwarded message goes through cleanup: canonical and virtual alias maps, headers in the original's rewrite context, no bcc", async () => {
    const { site, agent } = setup(
      {
        virtual_alias_maps: "inline:{ {moved@hosted.test = far@remote.example, copy@remote.example} }",
        recipient_canonical_maps: "inline:{ {old@legacy.example = new@remote.example} }",
        sender_canonical_maps: "inline:{ {sender@example.org = Sender.Name@example.org} }",
        always_bcc: "bcc@remote.example",
      },
      { fwd: "moved@hosted.test, old@legacy.example" },
    );
    const req = await queueMessage(site, { recipients: ["fwd@mail.example.test"], content: "From: sender@example.org\nTo: old@legacy.example\nSubject: f\n\nbody\n", attributes: { rewrite_context: "local" } });
    const r = await agent.deliver(req);
    const id = r[0]!.reason.slice("forwarded as ".length);
    const q = readQueueFile(join(site.queueDirectory, "incoming", id));
    expect(q.sender).toBe("Sender.Name@example.org");
    // the original recipient stays the one of the message being delivered, as Postfix's forward_append passes it
    expect(q.recipients.map((x) => [x.address, x.original])).toEqual([
      ["far@remote.example", "fwd@mail.example.test"],
      ["copy@remote.example", "fwd@mail.example.test"],
      ["new@remote.example", "fwd@mail.example.test"],
    ]);
    const text = Buffer.from(q.content).toString();
    expect(text).toContain("\nFrom: Sender.Name@example.org\nTo: new@remote.example\nSubject: f\n");
    expect(text).toStartWith("Received: by mail.example.test (postern)\n");
  });

  test("a cleanup table that cannot be read defers the forwarding recipient; nothing is forwarded", async () => {
    const { site, agent } = setup({ virtual_alias_maps: `texthash:${join(site0(), "no-such-table")}` }, { fwd: "someone@remote.example" });
    const req = await queueMessage(site, { recipients: ["fwd@mail.example.test"], content: "Subject: f\n\nbody\n" });
    const r = await agent.deliver(req);
    expect(r[0]).toMatchObject({ status: "deferred", dsn: "4.3.0", reason: "unable to forward message" });
    expect(readdirSync(join(site.queueDirectory, "incoming"))).toEqual([]);
  });

  test("owner-NAME becomes the sender, and the members go out as a new message", async () => {
    const { site, agent } = setup({}, { team: "alice, bob", "owner-team": "alice" });
    const r = await agent.deliver(await queueMessage(site, { recipients: ["team@mail.example.test"], content: "S: x\n\nb\n" }));
    expect(r[0]!.expanded).toHaveLength(1);
    const id = r[0]!.reason.slice("forwarded as ".length);
    const q = readQueueFile(join(site.queueDirectory, "incoming", id));
    expect(q.sender).toBe("owner-team@mail.example.test");
    expect(q.recipients.map((x) => x.address)).toEqual(["alice@mail.example.test", "bob@mail.example.test"]);
    // a mailing list starts a new original recipient: cleanup takes the member's own address, as Postfix's does
    expect(q.recipients[0]!.original).toBe("alice@mail.example.test");
  });

  test("an alias that includes its own name delivers to that user", async () => {
    const { site, agent, spool } = setup({}, { alice: "alice, bob" });
    const r = await agent.deliver(await queueMessage(site, { recipients: ["alice@localhost"], content: "S: x\n\nb\n" }));
    expect(r[0]!.expanded!.map((e) => `${e.address} ${e.reason}`)).toEqual([
      "alice@mail.example.test delivered to mailbox",
      "bob@mail.example.test delivered to mailbox",
    ]);
    expect(existsSync(join(spool, "alice"))).toBe(true);
  });

  test("the alias database unavailable defers", async () => {
    const base = testSite();
    sites.push(base);
    const agent = createLocalAgent(testSite({ alias_maps: "memory:broken" }, base.dir).config, {
      privileged: false,
      openTable: (spec) => ({ ...memoryTable(spec, {}), lookup: async () => Promise.reject(new Error("index is corrupt")) }),
    });
    agents.push(agent);
    expect(await agent.deliver(await queueMessage(base, { recipients: ["alice@localhost"], content: "S: x\n\nb\n" }))).toMatchObject([
      { status: "deferred", dsn: "4.3.0", reason: "alias database unavailable" },
    ]);
  });
});

describe("unknown users, loops, luser_relay", () => {
  test("an unknown user bounces with 5.1.1; postmaster without an alias is discarded", async () => {
    const { site, agent } = setup();
    const r = await agent.deliver(await queueMessage(site, { recipients: ["nosuch@localhost", "postmaster@localhost"], content: "S: x\n\nb\n" }));
    expect(r).toMatchObject([
      { status: "bounced", dsn: "5.1.1", reason: 'unknown user: "nosuch"', action: "failed" },
      { status: "sent", dsn: "2.0.0", reason: "discarded" },
    ]);
  });

  test("a message already delivered to the recipient bounces with 5.4.6", async () => {
    const { site, agent, spool } = setup({}, { loop: "alice" });
    const content = "Delivered-To: alice@mail.example.test\nSubject: loop\n\nb\n";
    const r = await agent.deliver(await queueMessage(site, { recipients: ["loop@mail.example.test", "Alice@mail.example.test"], content }));
    expect(r).toMatchObject([
      { status: "bounced", dsn: "5.4.6", reason: "mail forwarding loop for alice@mail.example.test" },
      { status: "bounced", dsn: "5.4.6", reason: "mail forwarding loop for Alice@mail.example.test" },
    ]);
    expect(existsSync(join(spool, "alice"))).toBe(false);
  });

  test("luser_relay takes mail for unknown users, with $user expanded", async () => {
    const { site, agent, spool } = setup({ luser_relay: "bob+$user" });
    const r = await agent.deliver(await queueMessage(site, { recipients: ["stranger@mail.example.test"], content: "S: x\n\nb\n" }));
    expect(r[0]!.expanded).toEqual([{ address: "bob+stranger@mail.example.test", status: "sent", dsn: "2.0.0", reason: "delivered to mailbox", action: "delivered" }]);
    expect(readFileSync(join(spool, "bob"), "utf8")).toContain("Delivered-To: stranger@mail.example.test\n");
  });
});

describe(".forward", () => {
  test("the first forward_path file wins: files, commands, other users forwarded, self to the mailbox", async () => {
    const { site, agent, spool, home } = setup();
    const dir = site.dir;
    writeFileSync(join(home("alice"), ".forward+lists"), `${dir}/lists.mbox\n`);
    writeFileSync(join(home("alice"), ".forward"), `# comment\n${dir}/fwd.mbox, "|cat > ${dir}/fwd.out"\n\\alice, bob\n`);
    const r = await agent.deliver(await queueMessage(site, { recipients: ["alice@mail.example.test", "alice+lists@mail.example.test"], content: "S: x\n\nb\n" }));
    expect(r[0]!.expanded!.map((e) => e.reason.replace(/[0-9A-F]{6,}$/, "ID"))).toEqual([
      `delivered to file: ${dir}/fwd.mbox`,
      `delivered to command: cat > ${dir}/fwd.out`,
      "delivered to mailbox",
      "forwarded as ID",
    ]);
    expect(readFileSync(join(dir, "fwd.out"), "utf8")).toStartWith("From sender@example.org  ");
    expect(readFileSync(join(spool, "alice"), "utf8")).toContain("Delivered-To: alice@mail.example.test\n");
    // alice+lists: .forward+lists is found first
    expect(r[1]).toMatchObject({ status: "sent", reason: `delivered to file: ${dir}/lists.mbox` });
  });

  test("an empty .forward means the mailbox", async () => {
    const { site, agent, home } = setup();
    writeFileSync(join(home("bob"), ".forward"), "");
    expect(await agent.deliver(await queueMessage(site, { recipients: ["bob@localhost"], content: "S: x\n\nb\n" }))).toMatchObject([{ reason: "delivered to mailbox" }]);
  });
});

/** A performer that runs jobs in this process and keeps the type of each (a worker's round trips). */
function countingPerformer(): Performer & { jobs: string[] } {
  const inner = new InProcessPerformer();
  const jobs: string[] = [];
  return {
    jobs,
    run(identity, job: WorkerJob, payload) {
      jobs.push(job.type === "forward-search" && job.otherwise ? `forward-search+${job.otherwise.type}` : job.type);
      return inner.run(identity, job, payload);
    },
    close: () => inner.close(),
  };
}

describe("one worker job per ordinary mailbox delivery", () => {
  test("no .forward: the .forward search and the Maildir write are one job, and the message is the same", async () => {
    const performer = countingPerformer();
    const { site, agent, home } = setup({ home_mailbox: "Maildir/" }, {}, performer);
    const r = await agent.deliver(await queueMessage(site, { recipients: ["bob+lists@mail.example.test"], content: "Subject: m\n\nFrom x\n" }));
    expect(r).toMatchObject([{ status: "sent", reason: "delivered to maildir" }]);
    expect(performer.jobs).toEqual(["forward-search+maildir"]);
    const files = readdirSync(join(home("bob"), "Maildir", "new"));
    expect(files).toHaveLength(1);
    expect(readFileSync(join(home("bob"), "Maildir", "new", files[0]!), "utf8")).toBe(
      "Return-Path: <sender@example.org>\nX-Original-To: bob+lists@mail.example.test\nDelivered-To: bob+lists@mail.example.test\nSubject: m\n\nFrom x\n",
    );
  });

  test("no .forward: a home mbox and a spool maildir are one job too; a spool mbox and a mailbox_command are not", async () => {
    const mbox = countingPerformer();
    const a = setup({ home_mailbox: "Mailbox" }, {}, mbox);
    expect(await a.agent.deliver(await queueMessage(a.site, { recipients: ["alice@localhost"], content: "S: x\n\nb\n" }))).toMatchObject([{ reason: "delivered to mailbox" }]);
    expect(mbox.jobs).toEqual(["forward-search+mbox"]);
    expect(readFileSync(join(a.home("alice"), "Mailbox"), "utf8")).toMatch(/^From sender@example\.org {2}.*\nReturn-Path: <sender@example\.org>\nX-Original-To: alice@localhost\nDelivered-To: alice@localhost\nS: x\n\nb\n\n$/);

    const spoolDir = countingPerformer();
    const b = setup({}, {}, spoolDir);
    mkdirSync(join(b.site.dir, "mdspool"));
    const maildirSite = testSite({ mail_spool_directory: `${b.site.dir}/mdspool/`, alias_maps: "memory:aliases" }, b.site.dir);
    const pw = passwdFile(b.site.dir, [`alice:x:${uid}:${gid}:Alice:${b.home("alice")}:/bin/sh`]);
    const agent = createLocalAgent(maildirSite.config, { privileged: false, passwdFile: pw, openTable: (spec) => memoryTable(spec, {}), performer: spoolDir });
    agents.push(agent);
    expect(await agent.deliver(await queueMessage(maildirSite, { recipients: ["alice@localhost"], content: "S: x\n\nb\n" }))).toMatchObject([{ reason: "delivered to maildir" }]);
    expect(spoolDir.jobs).toEqual(["forward-search+maildir"]);
    expect(readdirSync(join(b.site.dir, "mdspool", "alice", "new"))).toHaveLength(1);

    spoolDir.jobs.length = 0;
    expect(await b.agent.deliver(await queueMessage(b.site, { recipients: ["alice@localhost"], content: "S: x\n\nb\n" }))).toMatchObject([{ reason: "delivered to mailbox" }]);
    expect(spoolDir.jobs).toEqual(["forward-search", "mbox"]);

    const cmd = countingPerformer();
    const c = setup({ mailbox_command: `cat > ${b.site.dir}/cmd.out` }, {}, cmd);
    expect(await c.agent.deliver(await queueMessage(c.site, { recipients: ["alice@localhost"], content: "S: x\n\nb\n" }))).toMatchObject([{ status: "sent" }]);
    expect(cmd.jobs).toEqual(["forward-search", "command"]);
  });

  test("a .forward present: it takes effect in the same message, and the planned mailbox write does not happen", async () => {
    const performer = countingPerformer();
    const { site, agent, home } = setup({ home_mailbox: "Maildir/" }, {}, performer);
    const dir = site.dir;
    writeFileSync(join(home("bob"), ".forward"), `${dir}/fwd.mbox\n`);
    const r = await agent.deliver(await queueMessage(site, { recipients: ["bob@localhost"], content: "S: x\n\nb\n" }));
    expect(r).toMatchObject([{ status: "sent", reason: `delivered to file: ${dir}/fwd.mbox` }]);
    expect(performer.jobs).toEqual(["forward-search+maildir", "read", "mbox"]);
    expect(existsSync(join(home("bob"), "Maildir"))).toBe(false);
    expect(readFileSync(join(dir, "fwd.mbox"), "utf8")).toContain("Delivered-To: bob@localhost\n");

    // the .forward names the user again: the mailbox gets it (the second search finds the .forward), by a job of its own
    performer.jobs.length = 0;
    writeFileSync(join(home("bob"), ".forward"), "\\bob\n");
    expect(await agent.deliver(await queueMessage(site, { recipients: ["bob@localhost"], content: "S: y\n\nb\n" }))).toMatchObject([{ status: "sent", reason: "delivered to maildir" }]);
    expect(performer.jobs).toEqual(["forward-search+maildir", "read", "forward-search+maildir", "maildir"]);
    expect(readdirSync(join(home("bob"), "Maildir", "new"))).toHaveLength(1);
  });
});

describe("commands", () => {
  // issue 9 item 11: a grandchild in its own session holding stdout kept the delivery waiting forever
  test("a grandchild that calls setsid() and keeps the output open: the time limit still answers", async () => {
    const marker = String(700000 + (process.pid % 100000));
    const { site, agent } = setup({ command_time_limit: "2s" }, { escape: `"|(setsid sleep ${marker} &) ; exit 0"`, stopped: `"|kill -STOP $$"` });
    try {
      const r = await agent.deliver(await queueMessage(site, { recipients: ["escape@localhost", "stopped@localhost"], content: "S: x\n\nb\n" }));
      expect(r).toMatchObject([
        { status: "bounced", dsn: "5.3.0", reason: `Command time limit exceeded: "(setsid sleep ${marker} &) ; exit 0"` },
        { status: "bounced", dsn: "5.3.0", reason: `Command time limit exceeded: "kill -STOP $$"` },
      ]);
    } finally {
      // the sleep left our process group on purpose: stop it by its PID
      for (const name of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
        try {
          if (readFileSync(`/proc/${name}/cmdline`, "utf8") === `sleep\0${marker}\0`) process.kill(Number(name), "SIGKILL");
        } catch {}
      }
    }
  }, 20_000);

  test("no job of a request starts after daemon_timeout: the rest is deferred, for the queue manager is still waiting", async () => {
    const { site, agent } = setup({ daemon_timeout: "1s", command_time_limit: "10s" }, { two: `"|sleep 2", "|echo late > /dev/null"` });
    const r = await agent.deliver(await queueMessage(site, { recipients: ["two@localhost"], content: "S: x\n\nb\n" }));
    expect(r[0]!.expanded!.map((e) => [e.status, e.reason])).toEqual([
      ["sent", "delivered to command: sleep 2"],
      ["deferred", "local delivery request time limit exceeded"],
    ]);
  }, 20_000);

  test("sysexits, D.S.N output, and the time limit that kills the process group", async () => {
    const { site, agent } = setup({ command_time_limit: "1s" }, {
      tempfail: `"|exit 75"`,
      nouser: `"|exit 67"`,
      dsn: `"|echo 4.7.1 go away; exit 1"`,
      slow: `"|sleep 30 & sleep 30"`,
      ok: `"|cat > /dev/null"`,
    });
    const started = Date.now();
    const r = await agent.deliver(await queueMessage(site, { recipients: ["tempfail@localhost", "nouser@localhost", "dsn@localhost", "slow@localhost", "ok@localhost"], content: "S: x\n\nb\n" }));
    expect(r).toMatchObject([
      { status: "deferred", dsn: "4.3.0", reason: "temporary failure" },
      { status: "bounced", dsn: "5.1.1", reason: "user unknown" },
      { status: "deferred", dsn: "4.7.1", reason: "go away " },
      { status: "bounced", dsn: "5.3.0", reason: `Command time limit exceeded: "sleep 30 & sleep 30"` },
      { status: "sent", reason: "delivered to command: cat > /dev/null" },
    ]);
    // the background sleep was killed with its group: nothing keeps the test waiting 30 s
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
