/**
 * postsuper, option by option, judged by its effect on the queue (files
 * moved, removed or marked), what it prints (Postfix's per-message lines and
 * counts), and its exit status. Each test builds its own queue.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodeQueueFile } from "../../src/global/queue/format.ts";
import { run } from "../helpers/run.ts";
import {
  createTestUser, giveQueueTo, IS_ROOT, makeQueue, removeQueues, putMessage, putRawFile, removeTestUser, runAs,
  type FixtureMessage, type TestQueue, type TestUser,
} from "../helpers/queue-fixture.ts";

afterAll(removeQueues);

function msg(queue: FixtureMessage["queue"], id: string, over: Partial<FixtureMessage> = {}): FixtureMessage {
  return {
    queue,
    id,
    arrival: 1_795_242_239,
    sender: "alice@example.com",
    recipients: [{ address: "bob@remote.test" }],
    content: "Subject: hi\n\nhello\n",
    defer: queue === "maildrop" ? undefined : [{ recipient: "bob@remote.test", reason: "try later" }],
    ...over,
  };
}

/** Every queue file and log, as "queue/name", sorted. */
function inventory(q: TestQueue): string[] {
  const out: string[] = [];
  for (const dir of ["maildrop", "incoming", "active", "deferred", "hold", "corrupt", "defer", "bounce"]) {
    for (const name of readdirSync(join(q.queueDirectory, dir))) out.push(`${dir}/${name}`);
  }
  return out.sort();
}

function decoded(q: TestQueue, rel: string) {
  return decodeQueueFile(readFileSync(join(q.queueDirectory, rel)));
}

async function postsuper(q: TestQueue, args: string[], stdin?: string) {
  return run("postsuper", ["-c", q.configDir, ...args], { stdin });
}

/** A queue with one message in each of incoming, active, deferred, hold and maildrop. */
async function fullQueue(): Promise<TestQueue> {
  const q = await makeQueue();
  putMessage(q, msg("incoming", "1000000A1"));
  putMessage(q, msg("active", "1000000B2"));
  putMessage(q, msg("deferred", "1000000C3"));
  putMessage(q, msg("hold", "1000000D4"));
  putMessage(q, msg("maildrop", "1000000E5"));
  return q;
}

describe("-d: delete", () => {
  test("one message: file and its defer and bounce logs go; Postfix's lines on stderr", async () => {
    const q = await fullQueue();
    writeFileSync(join(q.queueDirectory, "bounce", "1000000C3"), "recipient=x status=5.0.0 action=failed time=1 reason=no\n");
    const r = await postsuper(q, ["-d", "1000000C3"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("postsuper: 1000000C3: removed\npostsuper: Deleted: 1 message\n");
    expect(inventory(q)).not.toContain("deferred/1000000C3");
    expect(inventory(q)).not.toContain("defer/1000000C3");
    expect(inventory(q)).not.toContain("bounce/1000000C3");
    expect(inventory(q)).toContain("defer/1000000A1");
  });

  test("several -d options, an unknown ID, and an invalid one", async () => {
    const q = await fullQueue();
    const r = await postsuper(q, ["-d", "1000000A1", "-d", "1000000B2", "-d", "FFFFFFFFFF", "-d", "../hold/1000000D4"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      'postsuper: 1000000A1: removed\npostsuper: 1000000B2: removed\npostsuper: warning: invalid mail queue ID "../hold/1000000D4"\npostsuper: Deleted: 2 messages\n',
    );
    expect(inventory(q).filter((f) => !f.startsWith("defer/"))).toEqual(["deferred/1000000C3", "hold/1000000D4", "maildrop/1000000E5"]);
  });

  test("nothing found still reports the count, zero in the plural", async () => {
    const q = await fullQueue();
    const r = await postsuper(q, ["-d", "FFFFFFFFFF"]);
    expect(r.stderr).toBe("postsuper: Deleted: 0 messages\n");
  });

  test("maildrop is searched only when named, as with Postfix", async () => {
    const q = await fullQueue();
    expect((await postsuper(q, ["-d", "1000000E5"])).stderr).toBe("postsuper: Deleted: 0 messages\n");
    expect(inventory(q)).toContain("maildrop/1000000E5");
    expect((await postsuper(q, ["-d", "1000000E5", "maildrop"])).stderr).toBe("postsuper: 1000000E5: removed\npostsuper: Deleted: 1 message\n");
    expect(inventory(q)).not.toContain("maildrop/1000000E5");
  });

  test("-d - reads queue IDs from standard input", async () => {
    const q = await fullQueue();
    const r = await postsuper(q, ["-d", "-"], "1000000A1\r\n1000000D4\n\nnot-an-id\n");
    expect(r.stderr).toBe('postsuper: 1000000A1: removed\npostsuper: 1000000D4: removed\npostsuper: warning: invalid mail queue ID "not-an-id"\npostsuper: Deleted: 2 messages\n');
    expect(inventory(q).filter((f) => !f.startsWith("defer/"))).toEqual(["active/1000000B2", "deferred/1000000C3", "maildrop/1000000E5"]);
  });

  test("-d ALL deferred empties only deferred/, counts without per-message lines", async () => {
    const q = await fullQueue();
    putMessage(q, msg("deferred", "1000000F6"));
    const r = await postsuper(q, ["-d", "ALL", "deferred"]);
    expect(r.stderr).toBe("postsuper: Deleted: 2 messages\n");
    expect(inventory(q).filter((f) => f.startsWith("deferred/") || f.endsWith("C3") || f.endsWith("F6"))).toEqual([]);
    expect(inventory(q)).toContain("incoming/1000000A1");
  });

  test("-d ALL deletes every message, maildrop included; lower-case all is a queue ID, not ALL", async () => {
    const q = await fullQueue();
    expect((await postsuper(q, ["-d", "all"])).stderr).toBe('postsuper: warning: invalid mail queue ID "all"\npostsuper: Deleted: 0 messages\n');
    const r = await postsuper(q, ["-d", "ALL"]);
    expect(r.stderr).toBe("postsuper: Deleted: 5 messages\n");
    expect(inventory(q)).toEqual([]);
  });
});

describe("-h and -H: hold and release", () => {
  test("-h moves a message to hold/, -H moves it to deferred/; the file is unchanged", async () => {
    const q = await fullQueue();
    const before = readFileSync(join(q.queueDirectory, "incoming", "1000000A1"));
    const h = await postsuper(q, ["-h", "1000000A1"]);
    expect(h.stderr).toBe("postsuper: 1000000A1: placed on hold\npostsuper: Placed on hold: 1 message\n");
    expect(inventory(q)).toContain("hold/1000000A1");
    const rel = await postsuper(q, ["-H", "1000000A1"]);
    expect(rel.stderr).toBe("postsuper: 1000000A1: released from hold\npostsuper: Released from hold: 1 message\n");
    expect(readFileSync(join(q.queueDirectory, "deferred", "1000000A1"))).toEqual(before);
    expect(inventory(q)).toContain("defer/1000000A1"); // the reasons stay
  });

  test("maildrop mail cannot be held (it is not sanitized yet); a held message is not held twice", async () => {
    const q = await fullQueue();
    expect((await postsuper(q, ["-h", "1000000E5", "-h", "1000000D4"])).stderr).toBe("postsuper: Placed on hold: 0 messages\n");
    expect(inventory(q)).toContain("maildrop/1000000E5");
  });

  test("-h ALL holds incoming, active and deferred mail; -H ALL releases all of it", async () => {
    const q = await fullQueue();
    expect((await postsuper(q, ["-h", "ALL"])).stderr).toBe("postsuper: Placed on hold: 3 messages\n");
    expect(readdirSync(join(q.queueDirectory, "hold")).sort()).toEqual(["1000000A1", "1000000B2", "1000000C3", "1000000D4"]);
    expect((await postsuper(q, ["-H", "ALL"])).stderr).toBe("postsuper: Released from hold: 4 messages\n");
    expect(readdirSync(join(q.queueDirectory, "deferred")).sort()).toEqual(["1000000A1", "1000000B2", "1000000C3", "1000000D4"]);
    expect(inventory(q)).toContain("maildrop/1000000E5");
  });

  test("-h - reads IDs from standard input", async () => {
    const q = await fullQueue();
    expect((await postsuper(q, ["-h", "-"], "1000000B2\n1000000C3\n")).stderr).toContain("postsuper: Placed on hold: 2 messages\n");
  });
});

describe("-r: requeue", () => {
  test("the message moves unchanged to maildrop/, with its time stamps reset; pickup will process it again", async () => {
    const q = await fullQueue();
    const path = join(q.queueDirectory, "deferred", "1000000C3");
    const future = new Date(Date.now() + 3_600_000); // deferred mail carries its next retry time
    utimesSync(path, future, future);
    const content = readFileSync(path);
    const r = await postsuper(q, ["-r", "1000000C3"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("postsuper: 1000000C3: requeued\npostsuper: Requeued: 1 message\n");
    const moved = join(q.queueDirectory, "maildrop", "1000000C3");
    expect(readFileSync(moved)).toEqual(content);
    expect(statSync(moved).mtimeMs).toBeLessThan(Date.now() + 1000);
    expect(inventory(q)).toContain("defer/1000000C3"); // logs are kept, as Postfix keeps them
  });

  test("-r ALL requeues hold, incoming, active and deferred mail, not what is already in maildrop", async () => {
    const q = await fullQueue();
    expect((await postsuper(q, ["-r", "ALL"])).stderr).toBe("postsuper: Requeued: 4 messages\n");
    expect(readdirSync(join(q.queueDirectory, "maildrop")).sort()).toEqual(["1000000A1", "1000000B2", "1000000C3", "1000000D4", "1000000E5"]);
  });
});

describe("-e and -f: forced expiry", () => {
  test("-e appends the expiry record; the message stays where it is; mailq shows #", async () => {
    const q = await fullQueue();
    const r = await postsuper(q, ["-e", "1000000C3"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("postsuper: 1000000C3: expired\npostsuper: Force-expired: 1 message\n");
    expect(decoded(q, "deferred/1000000C3").attributes.expire).toBe("yes");
    expect(readFileSync(join(q.queueDirectory, "deferred", "1000000C3"), "latin1")).toMatch(/\nE\nX \d+\n$/);
    const list = await run("postqueue", ["-c", q.configDir, "-p"]);
    expect(list.stdout).toContain("1000000C3#       22 ");
    expect((await postsuper(q, ["-e", "1000000C3"])).stderr).toBe("postsuper: Force-expired: 0 messages\n");
  });

  test("-e on held mail leaves it on hold (shown as !#); -f expires and releases it", async () => {
    const q = await fullQueue();
    expect((await postsuper(q, ["-e", "1000000D4"])).stderr).toBe("postsuper: 1000000D4: expired\npostsuper: Force-expired: 1 message\n");
    expect((await run("postqueue", ["-c", q.configDir, "-p"])).stdout).toContain("1000000D4!#      22 ");
    const f = await postsuper(q, ["-f", "1000000D4"]);
    expect(f.stderr).toBe("postsuper: 1000000D4: released from hold\npostsuper: Force-expired: 0 messages\npostsuper: Released from hold: 1 message\n");
    expect(decoded(q, "deferred/1000000D4").attributes.expire).toBe("yes");
  });

  test("-f on a held message that was not expired yet does both", async () => {
    const q = await fullQueue();
    const f = await postsuper(q, ["-f", "1000000D4"]);
    expect(f.stderr).toBe("postsuper: 1000000D4: expired\npostsuper: 1000000D4: released from hold\npostsuper: Force-expired: 1 message\npostsuper: Released from hold: 1 message\n");
  });

  test("-e ALL marks every message outside maildrop; postqueue -j says forced_expire", async () => {
    const q = await fullQueue();
    expect((await postsuper(q, ["-e", "ALL"])).stderr).toBe("postsuper: Force-expired: 4 messages\n");
    const j = (await run("postqueue", ["-c", q.configDir, "-j"])).stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(j.map((m) => `${m.queue_name}:${m.forced_expire}`)).toEqual(["maildrop:false", "active:true", "incoming:true", "deferred:true", "hold:true"]);
  });
});

describe("several actions at once", () => {
  test("Postfix's order: requeue, delete, expire, hold, release; each count reported", async () => {
    const q = await fullQueue();
    const r = await postsuper(q, ["-H", "1000000D4", "-h", "1000000A1", "-e", "1000000B2", "-d", "1000000C3", "-r", "FFFFFFFFFF"]);
    expect(r.stderr).toBe(
      [
        "1000000C3: removed",
        "1000000B2: expired",
        "1000000A1: placed on hold",
        "1000000D4: released from hold",
        "Requeued: 0 messages",
        "Deleted: 1 message",
        "Force-expired: 1 message",
        "Placed on hold: 1 message",
        "Released from hold: 1 message",
      ].map((l) => `postsuper: ${l}\n`).join(""),
    );
  });

  test("named queues replace the defaults for every action", async () => {
    const q = await fullQueue();
    expect((await postsuper(q, ["-h", "ALL", "incoming"])).stderr).toBe("postsuper: Placed on hold: 1 message\n");
    expect(inventory(q)).toContain("active/1000000B2");
    expect(inventory(q)).toContain("hold/1000000A1");
  });

  test("an unknown queue name is a usage error", async () => {
    const q = await fullQueue();
    const r = await postsuper(q, ["-d", "ALL", "nosuchqueue"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('postsuper: fatal: Invalid directory name "nosuchqueue"');
    expect(inventory(q)).toContain("deferred/1000000C3");
  });

  test("an unknown option is a usage error", async () => {
    const q = await fullQueue();
    const r = await postsuper(q, ["-x"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toStartWith("postsuper: invalid option -- 'x'\npostsuper: fatal: usage: postsuper");
  });

  test("the log gets the same lines (maillog_file)", async () => {
    const q = await makeQueue();
    putMessage(q, msg("deferred", "1000000C3"));
    const logFile = join(q.queueDirectory, "..", "maillog");
    writeFileSync(join(q.configDir, "postern.toml"), readFileSync(join(q.configDir, "postern.toml"), "utf8").replace('maillog_file = "/dev/stderr"', `maillog_file = "${logFile}"`));
    await postsuper(q, ["-d", "1000000C3"]);
    const log = readFileSync(logFile, "utf8");
    expect(log).toMatch(/ postfix\/postsuper\[\d+\]: 1000000C3: removed\n/);
    expect(log).toMatch(/ postfix\/postsuper\[\d+\]: Deleted: 1 message\n/);
  });
});

describe("-p: purge temporary files", () => {
  test("temporary files older than a day go, younger ones and messages stay; nothing is printed", async () => {
    const q = await fullQueue();
    const old = putRawFile(q, "incoming", "t.123.oldone", "half a message");
    const young = putRawFile(q, "maildrop", "t.456.young", "being written");
    const dayAgo = new Date(Date.now() - 25 * 3600 * 1000);
    utimesSync(old, dayAgo, dayAgo);
    const r = await postsuper(q, ["-p"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(existsSync(old)).toBe(false);
    expect(existsSync(young)).toBe(true);
    expect(inventory(q)).toContain("incoming/1000000A1");
  });
});

describe("stale temporary files at check and start (issue 9, item 19)", () => {
  /** A pid that no process has now: one of a process that has exited. */
  function deadPid(): number {
    const p = Bun.spawnSync(["true"]);
    return p.pid;
  }

  test("postern check removes temporary files of crashed writers (older than 5 minutes, writer gone) and day-old ones, with a log line each", async () => {
    const q = await makeQueue();
    const tenMinutesAgo = new Date(Date.now() - 10 * 60 * 1000);
    const dayAgo = new Date(Date.now() - 25 * 3600 * 1000);
    const dead = deadPid();
    const crashed = putRawFile(q, "incoming", `t.${dead}.crashed`, "half a message");
    const crashedDrop = putRawFile(q, "maildrop", `t.${dead}.dropped`, "half a submission");
    const ancient = putRawFile(q, "hold", `t.${process.pid}.ancient`, "x");
    const running = putRawFile(q, "incoming", `t.${process.pid}.running`, "a writer that still runs");
    const fresh = putRawFile(q, "incoming", `t.${dead}.fresh`, "just now");
    for (const f of [crashed, crashedDrop, running]) utimesSync(f, tenMinutesAgo, tenMinutesAgo);
    utimesSync(ancient, dayAgo, dayAgo);

    const r = await run("postern", ["check", "-c", q.configDir]);
    expect(r.code).toBe(0);
    for (const gone of [crashed, crashedDrop, ancient]) expect(existsSync(gone)).toBe(false);
    for (const kept of [running, fresh]) expect(existsSync(kept)).toBe(true);
    expect(r.stderr).toMatch(new RegExp(`postsuper: removed stale temporary file incoming/t\\.${dead}\\.crashed \\(left by a crashed writer\\)\n`));
    expect(r.stderr).toContain(`postsuper: removed stale temporary file maildrop/t.${dead}.dropped (left by a crashed writer)\n`);
    expect(r.stderr).toContain(`postsuper: removed stale temporary file hold/t.${process.pid}.ancient (left by a crashed writer)\n`);
    expect(r.stderr.match(/removed stale temporary file/g)?.length).toBe(3);
  });

  test("postsuper -p applies the same rule, silently", async () => {
    const q = await makeQueue();
    const crashed = putRawFile(q, "deferred", `t.${deadPid()}.x`, "x");
    const tenMinutesAgo = new Date(Date.now() - 10 * 60 * 1000);
    utimesSync(crashed, tenMinutesAgo, tenMinutesAgo);
    const r = await postsuper(q, ["-p"]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(existsSync(crashed)).toBe(false);
  });
});

describe("-s: structure check", () => {
  test("bad names and corrupt files go to corrupt/, non-files are removed, subdirectories flattened, IDs matched to inodes", async () => {
    const q = await makeQueue();
    // a message whose ID names its inode: left alone
    const goodPath = putMessage(q, msg("deferred", "1000000C3"));
    const goodId = "10000" + BigInt(lstatSync(goodPath).ino).toString(16).toUpperCase();
    Bun.spawnSync(["mv", goodPath, join(q.queueDirectory, "deferred", goodId)]);
    Bun.spawnSync(["mv", join(q.queueDirectory, "defer", "1000000C3"), join(q.queueDirectory, "defer", goodId)]);
    // a message restored from elsewhere: its ID does not name its inode
    const restored = putMessage(q, msg("hold", "2000000AAAA"));
    const restoredId = "20000" + BigInt(lstatSync(restored).ino).toString(16).toUpperCase();
    putRawFile(q, "incoming", "junk.txt", "not a queue file");
    putRawFile(q, "active", "3000000BB", "postern-queue 1\nT 1\n");
    symlinkSync("/etc/passwd", join(q.queueDirectory, "deferred", "4000000CC"));
    mkdirSync(join(q.queueDirectory, "deferred", "A"));
    const hashed = putMessage(q, msg("deferred", "5000000DD", { defer: undefined }));
    const hashedId = "50000" + BigInt(lstatSync(hashed).ino).toString(16).toUpperCase();
    Bun.spawnSync(["mv", hashed, join(q.queueDirectory, "deferred", "A", hashedId)]);
    chownSync(join(q.queueDirectory, "deferred", "A"), q.uid, q.gid);

    const r = await postsuper(q, ["-s"]);
    expect(r.code).toBe(0);
    expect(inventory(q)).toEqual(
      [
        "corrupt/3000000BB",
        "corrupt/junk.txt",
        `defer/${goodId}`,
        `defer/${restoredId}`,
        `deferred/${goodId}`,
        `deferred/${hashedId}`,
        `hold/${restoredId}`,
      ].sort(),
    );
    expect(existsSync(join(q.queueDirectory, "deferred", "A"))).toBe(false);
    expect(readFileSync("/etc/passwd", "utf8")).toContain("root:");
    expect(r.stderr).toContain("postsuper: warning: moving bad file name incoming/junk.txt to corrupt/\n");
    expect(r.stderr).toContain("postsuper: warning: moving corrupt queue file active/3000000BB (");
    expect(r.stderr).toContain(`postsuper: warning: removed ${join(q.queueDirectory, "deferred", "4000000CC")}: not a regular file\n`);
    expect(r.stderr).toContain(`postsuper: warning: moved misplaced file deferred/A/${hashedId} to deferred/${hashedId}\n`);
    expect(r.stderr).toContain("postsuper: Renamed to match inode number: 1 message\npostsuper: warning: QUEUE FILE NAMES WERE CHANGED TO MATCH INODE NUMBERS\n");
    // a second pass finds nothing to do
    expect((await postsuper(q, ["-s"])).stderr).toBe("");
  });

  test("without options postsuper does -s and -p", async () => {
    const q = await makeQueue();
    putRawFile(q, "incoming", "junk.txt", "x");
    const old = putRawFile(q, "incoming", "t.1.old", "x");
    const dayAgo = new Date(Date.now() - 25 * 3600 * 1000);
    utimesSync(old, dayAgo, dayAgo);
    const r = await postsuper(q, []);
    expect(r.code).toBe(0);
    expect(inventory(q)).toEqual(["corrupt/junk.txt"]);
  });
});

describe.skipIf(!IS_ROOT)("privileges", () => {
  let user: TestUser;
  beforeAll(() => {
    user = createTestUser(`pstest${process.pid % 100000}`);
  });
  afterAll(() => removeTestUser(user));

  test("other users are refused (EX_NOPERM) and nothing changes", async () => {
    const q = await fullQueue();
    const before = inventory(q);
    const r = await runAs(user, "postsuper", ["-c", q.configDir, "-d", "ALL"]);
    expect(r.code).toBe(77);
    expect(r.stderr).toBe('postsuper: fatal: Use of this command is reserved for the superuser and the owner of the queue ("nobody")\n');
    expect(inventory(q)).toEqual(before);
  });

  test("the owner of an unprivileged queue may use it", async () => {
    const q = await fullQueue();
    giveQueueTo(q, user);
    const r = await runAs(user, "postsuper", ["-c", q.configDir, "-h", "1000000C3"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("Placed on hold: 1 message");
  });

  test("root works as the queue's owner: a file only root can write is not touched", async () => {
    const q = await fullQueue();
    const rootOwned = join(q.queueDirectory, "deferred", "1000000C3");
    chownSync(rootOwned, 0, 0);
    const before = readFileSync(rootOwned);
    const r = await postsuper(q, ["-e", "1000000C3"]);
    expect(r.stderr).toContain("cannot mark deferred/1000000C3 for expiry");
    expect(r.stderr).toContain("Force-expired: 0 messages");
    expect(readFileSync(rootOwned)).toEqual(before);
  });

  test("a symbolic link planted in the queue is never written through", async () => {
    const q = await fullQueue();
    const victim = join(q.queueDirectory, "..", "victim");
    writeFileSync(victim, readFileSync(join(q.queueDirectory, "deferred", "1000000C3")));
    chownSync(victim, q.uid, q.gid);
    symlinkSync(victim, join(q.queueDirectory, "deferred", "1000000F6"));
    const before = readFileSync(victim);
    const r = await postsuper(q, ["-e", "1000000F6"]);
    expect(r.stderr).toContain("not a regular file");
    expect(readFileSync(victim)).toEqual(before);
  });
});
