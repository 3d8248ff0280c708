/**
 * The local delivery agent as root: deliveries run in `postern local-worker`
 * children (the built binary) that became the recipient. Users and a group
 * are created for the test and removed afterwards; the tests are skipped
 * when not running as root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLocalAgent, createPerformer, type LocalAgent } from "../../../src/local/agent.ts";
import type { Performer } from "../../../src/local/worker/performer.ts";
import { getpwnam, type PasswdEntry } from "../../../src/util/passwd.ts";
import { memoryTable, queueMessage, testSite, type TestSite } from "../../helpers/local-delivery.ts";
import { bin, removeDir } from "../../helpers/run.ts";

const isRoot = process.getuid?.() === 0;
// names unique to this run: other test runs on the machine may create and remove their own users meanwhile
const TAG = `plt${process.pid.toString(36)}`;
const ALICE = `${TAG}-alice`;
const BOB = `${TAG}-bob`;
const QUEUE = `${TAG}-queue`;
const USERS = [ALICE, BOB, QUEUE] as const;
const GROUP = `${TAG}-extra`;

let site: TestSite;
let agent: LocalAgent;
let spool: string;
let shared: string;
const pw: Record<string, PasswdEntry> = {};
let extraGid = 0;

function sh(argv: string[]): void {
  // useradd and friends fail while another process holds /etc/passwd's lock: try again
  for (let attempt = 1; ; attempt++) {
    const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
    if (r.exitCode === 0) return;
    if (attempt >= 20) throw new Error(`${argv.join(" ")}: ${r.stderr.toString()}`);
    Bun.sleepSync(250);
  }
}

function cleanupUsers(): void {
  for (const u of USERS) Bun.spawnSync(["userdel", "-f", u], { stdout: "ignore", stderr: "ignore" });
  Bun.spawnSync(["groupdel", GROUP], { stdout: "ignore", stderr: "ignore" });
}

beforeAll(() => {
  if (!isRoot) return;
  cleanupUsers();
  site = testSite();
  chmodSync(site.dir, 0o755);
  sh(["groupadd", GROUP]);
  for (const u of USERS) {
    sh(["useradd", "--no-user-group", "--gid", "nogroup", "--create-home", "--home-dir", join(site.dir, "home", u), "--shell", "/bin/sh", u]);
    pw[u] = getpwnam(u)!;
  }
  sh(["usermod", "-aG", GROUP, ALICE]);
  extraGid = Number(Bun.spawnSync(["getent", "group", GROUP]).stdout.toString().split(":")[2]);
  chmodSync(join(site.dir, "home"), 0o755);
  // the queue belongs to mail_owner, as `postern check` makes it
  for (const d of ["incoming", "active"]) chownSync(join(site.queueDirectory, d), pw[QUEUE]!.uid, pw[QUEUE]!.gid);
  spool = join(site.dir, "spool");
  mkdirSync(spool);
  chmodSync(spool, 0o1777);
  shared = join(site.dir, "shared");
  mkdirSync(shared);
  chmodSync(shared, 0o1777);
  const conf = testSite(
    {
      mail_spool_directory: spool,
      alias_maps: "memory:aliases",
      mail_owner: QUEUE,
      default_privs: "nobody",
      recipient_delimiter: "+",
    },
    site.dir,
  );
  site = conf;
  agent = createLocalAgent(conf.config, {
    workerCommand: [bin("postern"), "local-worker"],
    workerIdleMs: 1000,
    openTable: (spec) =>
      memoryTable(spec, {
        tofile: `${shared}/alias.mbox`,
        tocmd: `"|id -u > ${shared}/alias.id"`,
        loop: ALICE,
        remote: "someone@remote.example",
      }),
  });
});

afterAll(async () => {
  if (!isRoot) return;
  await agent?.close();
  cleanupUsers();
  removeDir(site.dir);
});

const content = "Subject: root test\n\nFrom the test\n";

describe.skipIf(!isRoot)("as root, deliveries run as the recipient", () => {
  test("the mailbox is created owned by the recipient, mode 0600", async () => {
    const r = await agent.deliver(await queueMessage(site, { recipients: [`${ALICE}@localhost`], content }));
    expect(r).toMatchObject([{ status: "sent", reason: "delivered to mailbox" }]);
    const st = statSync(join(spool, ALICE));
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([pw[ALICE]!.uid, pw[ALICE]!.gid, 0o600]);
    expect(readFileSync(join(spool, ALICE), "utf8")).toContain("\n>From the test\n\n");
  });

  test("mailbox_command runs as the user with the user's supplementary groups", async () => {
    const a = pw[ALICE]!;
    const withCommand = createLocalAgent(
      testSite({ alias_maps: "", mail_owner: QUEUE, mailbox_command: `id -u > ${shared}/mc.uid; id -G > ${shared}/mc.groups; echo "$HOME $USER $SHELL" > ${shared}/mc.env` }, site.dir).config,
      { workerCommand: [bin("postern"), "local-worker"], workerIdleMs: 500 },
    );
    try {
      const r = await withCommand.deliver(await queueMessage(site, { recipients: [`${ALICE}@localhost`], content }));
      expect(r[0]!.status).toBe("sent");
    } finally {
      await withCommand.close();
    }
    expect(readFileSync(join(shared, "mc.uid"), "utf8").trim()).toBe(String(a.uid));
    expect(readFileSync(join(shared, "mc.groups"), "utf8").trim().split(" ").map(Number)).toContain(extraGid);
    expect(readFileSync(join(shared, "mc.env"), "utf8").trim()).toBe(`${a.home} ${ALICE} /bin/sh`);
    expect(statSync(join(shared, "mc.uid")).uid).toBe(a.uid);
  });

  test("a home Maildir without .forward: one job in the recipient's worker, the file the recipient's", async () => {
    const a = pw[ALICE]!;
    const jobs: string[] = [];
    const conf = testSite({ alias_maps: "", mail_owner: QUEUE, home_mailbox: "Maildir/" }, site.dir).config;
    const pool = createPerformer(conf, { workerCommand: [bin("postern"), "local-worker"], workerIdleMs: 500 });
    const counted: Performer = {
      run(identity, job, payload) {
        jobs.push(`${job.type === "forward-search" && job.otherwise ? `forward-search+${job.otherwise.type}` : job.type} as ${identity?.uid}`);
        return pool.run(identity, job, payload);
      },
      close: () => pool.close(),
    };
    const maildirAgent = createLocalAgent(conf, { performer: counted });
    try {
      const r = await maildirAgent.deliver(await queueMessage(site, { recipients: [`${ALICE}@localhost`], content }));
      expect(r).toMatchObject([{ status: "sent", reason: "delivered to maildir" }]);
    } finally {
      await maildirAgent.close();
    }
    expect(jobs).toEqual([`forward-search+maildir as ${a.uid}`]);
    const files = readdirSync(join(a.home, "Maildir", "new"));
    expect(files).toHaveLength(1);
    const st = statSync(join(a.home, "Maildir", "new", files[0]!));
    expect([st.uid, st.mode & 0o777]).toEqual([a.uid, 0o600]);
    expect(readFileSync(join(a.home, "Maildir", "new", files[0]!), "utf8")).toStartWith(`Return-Path: <sender@example.org>\nX-Original-To: ${ALICE}@localhost\nDelivered-To: ${ALICE}@localhost\n`);
  });

  test(".forward owned by the user: a file and a command, both as the user", async () => {
    const b = pw[BOB]!;
    writeFileSync(join(b.home, ".forward"), `${shared}/bob.mbox, "|id -u > ${shared}/bob.id"\n`);
    chownSync(join(b.home, ".forward"), b.uid, b.gid);
    const r = await agent.deliver(await queueMessage(site, { recipients: [`${BOB}@localhost`], content }));
    expect(r[0]!.expanded!.map((e) => e.reason)).toEqual([`delivered to file: ${shared}/bob.mbox`, `delivered to command: id -u > ${shared}/bob.id`]);
    expect(statSync(join(shared, "bob.mbox")).uid).toBe(b.uid);
    expect(readFileSync(join(shared, "bob.id"), "utf8").trim()).toBe(String(b.uid));
  });

  test("a .forward owned by someone else is ignored", async () => {
    const b = pw[BOB]!;
    writeFileSync(join(b.home, ".forward"), `${shared}/hijack.mbox\n`);
    chownSync(join(b.home, ".forward"), pw[ALICE]!.uid, b.gid);
    const r = await agent.deliver(await queueMessage(site, { recipients: [`${BOB}@localhost`], content }));
    expect(r[0]).toMatchObject({ status: "sent", reason: "delivered to mailbox" });
    expect(existsSync(join(shared, "hijack.mbox"))).toBe(false);
    Bun.spawnSync(["rm", "-f", join(b.home, ".forward")]);
  });

  test("alias files and commands of a root-owned alias database run as default_privs", async () => {
    const nobody = getpwnam("nobody")!;
    const r = await agent.deliver(await queueMessage(site, { recipients: ["tofile@localhost", "tocmd@localhost"], content }));
    expect(r).toMatchObject([{ status: "sent" }, { status: "sent" }]);
    expect(statSync(join(shared, "alias.mbox")).uid).toBe(nobody.uid);
    expect(readFileSync(join(shared, "alias.id"), "utf8").trim()).toBe(String(nobody.uid));
  });

  test("an alias database owned by a user lends that user's rights", async () => {
    const a = pw[ALICE]!;
    const userOwned = createLocalAgent(testSite({ alias_maps: "memory:users", mail_owner: QUEUE }, site.dir).config, {
      workerCommand: [bin("postern"), "local-worker"],
      workerIdleMs: 500,
      openTable: (spec) => memoryTable(spec, { owned: `"|id -u > ${shared}/owned.id"` }, { status: "untrusted", uid: a.uid }),
    });
    try {
      expect((await userOwned.deliver(await queueMessage(site, { recipients: ["owned@localhost"], content })))[0]!.status).toBe("sent");
    } finally {
      await userOwned.close();
    }
    expect(readFileSync(join(shared, "owned.id"), "utf8").trim()).toBe(String(a.uid));
  });

  test("a symlinked or hard-linked mailbox is refused and its target untouched", async () => {
    const target = join(site.dir, "victim");
    writeFileSync(target, "secret\n");
    // writable by bob: only the link check stands in the way
    chmodSync(target, 0o666);
    Bun.spawnSync(["rm", "-f", join(spool, BOB)]);
    symlinkSync(target, join(spool, BOB));
    const r = await agent.deliver(await queueMessage(site, { recipients: [`${BOB}@localhost`], content }));
    expect(r).toMatchObject([{ status: "bounced", dsn: "5.2.0", reason: `cannot update mailbox ${spool}/${BOB} for user ${BOB}. file is a symbolic link` }]);
    Bun.spawnSync(["rm", "-f", join(spool, BOB)]);

    const other = join(spool, "other");
    writeFileSync(other, "");
    chownSync(other, pw[BOB]!.uid, 0);
    linkSync(other, join(spool, BOB));
    const r2 = await agent.deliver(await queueMessage(site, { recipients: [`${BOB}@localhost`], content }));
    expect(r2).toMatchObject([{ status: "bounced", dsn: "5.2.0", reason: `cannot update mailbox ${spool}/${BOB} for user ${BOB}. file has 2 hard links` }]);
    expect(readFileSync(target, "utf8")).toBe("secret\n");
    expect(readFileSync(other, "utf8")).toBe("");
    Bun.spawnSync(["rm", "-f", join(spool, BOB), other]);
  });

  test("a mailbox owned by someone else is deferred (strict_mailbox_ownership)", async () => {
    // writable by bob, but alice's
    writeFileSync(join(spool, BOB), "");
    chownSync(join(spool, BOB), pw[ALICE]!.uid, 0);
    chmodSync(join(spool, BOB), 0o666);
    const r = await agent.deliver(await queueMessage(site, { recipients: [`${BOB}@localhost`], content }));
    expect(r).toMatchObject([{ status: "deferred", dsn: "4.2.0", reason: `cannot update mailbox ${spool}/${BOB} for user ${BOB}. destination ${spool}/${BOB} is not owned by recipient` }]);
    Bun.spawnSync(["rm", "-f", join(spool, BOB)]);
  });

  test("a group-writable spool (like Debian's /var/mail, 2775 root:mail) is written with the spool's group", async () => {
    const gspool = join(site.dir, "gspool");
    mkdirSync(gspool);
    chownSync(gspool, 0, extraGid);
    chmodSync(gspool, 0o2775);
    const g = createLocalAgent(testSite({ mail_spool_directory: gspool, alias_maps: "", mail_owner: QUEUE }, site.dir).config, {
      workerCommand: [bin("postern"), "local-worker"],
      workerIdleMs: 500,
    });
    try {
      // bob is not in the group: only the spool's group lets him make the dotlock and the mailbox
      const r = await g.deliver(await queueMessage(site, { recipients: [`${BOB}@localhost`], content }));
      expect(r).toMatchObject([{ status: "sent", reason: "delivered to mailbox" }]);
    } finally {
      await g.close();
    }
    const st = statSync(join(gspool, BOB));
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([pw[BOB]!.uid, extraGid, 0o600]);
    expect(existsSync(join(gspool, `${BOB}.lock`))).toBe(false);
  });

  test("a spool only root can write: root creates the mailbox and gives it to the recipient", async () => {
    const rspool = join(site.dir, "rspool");
    mkdirSync(rspool);
    chmodSync(rspool, 0o755);
    const g = createLocalAgent(testSite({ mail_spool_directory: rspool, alias_maps: "", mail_owner: QUEUE }, site.dir).config, {
      workerCommand: [bin("postern"), "local-worker"],
    });
    try {
      expect(await g.deliver(await queueMessage(site, { recipients: [`${BOB}@localhost`], content }))).toMatchObject([{ status: "sent" }]);
      expect(await g.deliver(await queueMessage(site, { recipients: [`${BOB}@localhost`], content }))).toMatchObject([{ status: "sent" }]);
    } finally {
      await g.close();
    }
    const st = statSync(join(rspool, BOB));
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([pw[BOB]!.uid, pw[BOB]!.gid, 0o600]);
    expect(readFileSync(join(rspool, BOB), "utf8").match(/^From /gm)).toHaveLength(2);
  });

  // issue 9 item 11: a user who stops their own worker (SIGSTOP) held the delivery, and its slot, forever
  test("a worker its user stopped is killed when its job overruns; the next delivery gets a new worker", async () => {
    const stopper = createLocalAgent(
      testSite(
        { alias_maps: "", mail_owner: QUEUE, mail_spool_directory: spool, command_time_limit: "1s", deliver_lock_attempts: 1, deliver_lock_delay: "1s", mailbox_command: "kill -STOP $PPID" },
        site.dir,
      ).config,
      { workerCommand: [bin("postern"), "local-worker"], workerIdleMs: 60_000 },
    );
    try {
      const r = await stopper.deliver(await queueMessage(site, { recipients: [`${ALICE}@localhost`], content }));
      // 1 s for the command, 1 s of lock attempts, 5 s of margin
      expect(r).toMatchObject([{ status: "deferred", dsn: "4.3.0", reason: "local delivery worker did not answer within 7s and was killed" }]);
    } finally {
      await stopper.close();
    }
    // the stopped worker is gone, and alice's next delivery is served by a new one
    const again = await agent.deliver(await queueMessage(site, { recipients: [`${ALICE}@localhost`], content }));
    expect(again).toMatchObject([{ status: "sent", reason: "delivered to mailbox" }]);
  }, 30_000);

  test("a loop bounces with 5.4.6 and an unknown user with 5.1.1", async () => {
    const r = await agent.deliver(
      await queueMessage(site, { recipients: ["loop@localhost", `${TAG}-nosuch@localhost`], content: `Delivered-To: ${ALICE}@mail.example.test\nSubject: l\n\nb\n` }),
    );
    expect(r).toMatchObject([
      { status: "bounced", dsn: "5.4.6", reason: `mail forwarding loop for ${ALICE}@mail.example.test` },
      { status: "bounced", dsn: "5.1.1", reason: `unknown user: "${TAG}-nosuch"` },
    ]);
  });

  test("a forwarded message is a queue file of mail_owner", async () => {
    const r = await agent.deliver(await queueMessage(site, { recipients: ["remote@localhost"], content }));
    const id = r[0]!.reason.slice("forwarded as ".length);
    expect(r[0]).toMatchObject({ status: "sent", action: "relayed" });
    expect(statSync(join(site.queueDirectory, "incoming", id)).uid).toBe(pw[QUEUE]!.uid);
    expect(readdirSync(join(site.queueDirectory, "incoming"))).toContain(id);
  });
});
