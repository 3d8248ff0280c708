/**
 * postqueue, mailq: listing against Postfix's captured output, and flushing
 * with the mail system down, up, and unreachable.
 *
 * test/golden/mailq/ holds what Debian's Postfix 3.7 printed for a queue of
 * nine messages (see its README.md). The tests build the same queue with the
 * queue-file API, from the JSON capture (IDs, times, sizes, senders, open
 * recipients, reasons) plus what the JSON cannot show (a delivered
 * recipient, the queue-file order of recipients), and expect postern to
 * print what Postfix printed. Postfix lists a directory in readdir order,
 * postern in queue-ID order, so the golden entries are put in that order
 * first; nothing else is changed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { serveJsonLines } from "../../src/global/ipc/json-lines.ts";
import { ROOT, run } from "../helpers/run.ts";
import { fakeRunningMaster } from "../helpers/fake-master.ts";
import {
  contentOfSize, createTestUser, giveQueueTo, IS_ROOT, makeQueue, removeQueues, putMessage, putRawFile, removeTestUser, runAs,
  type FixtureMessage, type TestQueue, type TestUser,
} from "../helpers/queue-fixture.ts";

afterAll(removeQueues);

const GOLDEN = join(ROOT, "test/golden/mailq");
const QUEUE_ORDER = ["maildrop", "active", "incoming", "deferred", "hold"];

interface PostfixJson {
  queue_name: FixtureMessage["queue"];
  queue_id: string;
  arrival_time: number;
  message_size: number;
  forced_expire: boolean;
  sender: string;
  recipients: Array<{ address: string; delay_reason?: string }>;
}

const goldenJson: PostfixJson[] = readFileSync(join(GOLDEN, "postfix-j.jsonl"), "utf8").trimEnd().split("\n").map((l) => JSON.parse(l));
const goldenText = readFileSync(join(GOLDEN, "postfix-p.txt"), "utf8");

/** The golden text with its entries in postern's order (queue order, then queue ID). */
function goldenTextInPosternOrder(): string {
  const [heading, rest] = [goldenText.slice(0, goldenText.indexOf("\n") + 1), goldenText.slice(goldenText.indexOf("\n") + 1)];
  const blocks = rest.split("\n\n");
  const summary = blocks.pop()!;
  expect(blocks).toHaveLength(goldenJson.length);
  const pairs = goldenJson.map((j, i) => ({ j, block: blocks[i]! }));
  for (const { j, block } of pairs) expect(block.startsWith(j.queue_id)).toBe(true); // the two captures describe the same queue
  pairs.sort((a, b) => QUEUE_ORDER.indexOf(a.j.queue_name) - QUEUE_ORDER.indexOf(b.j.queue_name) || a.j.queue_id.localeCompare(b.j.queue_id));
  return heading + pairs.map((p) => p.block).join("\n\n") + "\n\n" + summary;
}

function goldenJsonInPosternOrder(): string {
  const lines = readFileSync(join(GOLDEN, "postfix-j.jsonl"), "utf8").trimEnd().split("\n");
  const sorted = lines.map((l, i) => ({ l, j: goldenJson[i]! }));
  sorted.sort((a, b) => QUEUE_ORDER.indexOf(a.j.queue_name) - QUEUE_ORDER.indexOf(b.j.queue_name) || a.j.queue_id.localeCompare(b.j.queue_id));
  return sorted.map((s) => s.l + "\n").join("");
}

/** What the JSON does not show: recipients already delivered, and queue-file order where the defer log's differs. */
const EXTRAS: Record<string, { delivered?: string[]; fileOrder?: string[] }> = {
  "4CAF620C78F": { delivered: ["ok1@remote.test"] },
  "52B7920C0E2": { fileOrder: ["short3@remote.test", "same3@remote.test"] },
};

const unquote = (a: string) => a.replace(/^"(.*)"@/, "$1@");

/** The golden situation, built with the queue-file API. */
function buildGoldenQueue(q: TestQueue): void {
  for (const m of goldenJson) {
    const extra = EXTRAS[m.queue_id] ?? {};
    const open = m.recipients.map((r) => unquote(r.address));
    const order = extra.fileOrder ?? open;
    putMessage(q, {
      queue: m.queue_name,
      id: m.queue_id,
      arrival: m.arrival_time,
      sender: m.sender === "MAILER-DAEMON" ? "" : m.sender,
      recipients: [...(extra.delivered ?? []).map((address) => ({ address, done: true })), ...order.map((address) => ({ address }))],
      content: contentOfSize(m.message_size, m.queue_id),
      defer: m.recipients.filter((r) => r.delay_reason).map((r) => ({ recipient: unquote(r.address), reason: r.delay_reason! })),
      expire: m.forced_expire,
    });
  }
}

function simpleMessage(id: string, over: Partial<FixtureMessage> = {}): FixtureMessage {
  return { queue: "deferred", id, arrival: 1_795_242_239, sender: "alice@example.com", recipients: [{ address: "bob@remote.test" }], content: "Subject: hi\n\nhello\n", ...over };
}

describe("listing against Postfix's output", () => {
  let q: TestQueue;
  beforeAll(async () => {
    q = await makeQueue();
    buildGoldenQueue(q);
  });

  test("postqueue -p prints exactly what Postfix printed for the same queue", async () => {
    const r = await run("postqueue", ["-c", q.configDir, "-p"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(goldenTextInPosternOrder());
  });

  test("postqueue -j prints exactly Postfix's JSON lines", async () => {
    const r = await run("postqueue", ["-c", q.configDir, "-j"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(goldenJsonInPosternOrder());
    for (const line of r.stdout.trimEnd().split("\n")) expect(() => JSON.parse(line)).not.toThrow();
  });

  test("mailq and postern postqueue print the same as postqueue -p", async () => {
    const viaMailq = await run("mailq", ["-C", q.configDir]);
    const viaPostern = await run("postern", ["postqueue", "-p", "-c", q.configDir]);
    const direct = await run("postqueue", ["-c", q.configDir, "-p"]);
    expect(viaMailq.code).toBe(0);
    expect(viaMailq.stdout).toBe(direct.stdout);
    expect(viaPostern.stdout).toBe(direct.stdout);
  });

  test("MAIL_CONFIG selects the configuration as -c does", async () => {
    const r = await run("mailq", [], { env: { MAIL_CONFIG: q.configDir } });
    expect(r.stdout).toBe(goldenTextInPosternOrder());
  });

  test("listing changes nothing in the queue", async () => {
    const before = QUEUE_ORDER.map((d) => readdirSync(join(q.queueDirectory, d)).join(",")).join(";");
    await run("postqueue", ["-c", q.configDir, "-p"]);
    expect(QUEUE_ORDER.map((d) => readdirSync(join(q.queueDirectory, d)).join(",")).join(";")).toBe(before);
  });
});

describe("listing", () => {
  test("an empty queue: Mail queue is empty, and nothing for -j", async () => {
    const q = await makeQueue();
    const r = await run("postqueue", ["-c", q.configDir, "-p"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("Mail queue is empty\n");
    const j = await run("postqueue", ["-c", q.configDir, "-j"]);
    expect(j.code).toBe(0);
    expect(j.stdout).toBe("");
  });

  test("one request is singular; maildrop files are listed; the null sender is MAILER-DAEMON", async () => {
    const q = await makeQueue();
    putMessage(q, simpleMessage("ABCDE12345", { queue: "maildrop", sender: "" }));
    const r = await run("postqueue", ["-c", q.configDir, "-p"]);
    expect(r.stdout).toBe(
      "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n" +
        "ABCDE12345       22 Sat Nov 21 06:23:59  MAILER-DAEMON\n" +
        " ".repeat(41) + "bob@remote.test\n" +
        "\n-- 0 Kbytes in 1 Request.\n",
    );
  });

  test("empty_address_recipient names the null sender", async () => {
    const q = await makeQueue('empty_address_recipient = "bounce-handler"');
    putMessage(q, simpleMessage("ABCDE12345", { sender: "" }));
    const r = await run("postqueue", ["-c", q.configDir, "-j"]);
    expect(JSON.parse(r.stdout).sender).toBe("bounce-handler");
  });

  test("a corrupt queue file is reported on stderr, skipped, and left where it is", async () => {
    const q = await makeQueue();
    putMessage(q, simpleMessage("ABCDE12345"));
    putRawFile(q, "deferred", "ABCDE99999", "postern-queue 1\nT 1\n");
    const r = await run("postqueue", ["-c", q.configDir, "-p"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("ABCDE12345 ");
    expect(r.stdout).not.toContain("ABCDE99999");
    expect(r.stdout).toEndWith("-- 0 Kbytes in 1 Request.\n");
    expect(r.stderr).toContain("postqueue: warning: deferred/ABCDE99999: ");
    expect(existsSync(join(q.queueDirectory, "deferred", "ABCDE99999"))).toBe(true);
  });

  test("a missing queue directory is a clear error", async () => {
    const q = await makeQueue();
    Bun.spawnSync(["rm", "-rf", q.queueDirectory]);
    const gone = await run("postqueue", ["-c", q.configDir, "-p"]);
    expect(gone.code).toBe(69);
    expect(gone.stderr).toContain("postqueue: fatal: Queue report unavailable - the queue directory");
  });

  test("a reader that goes away early is no error (mailq | head)", async () => {
    const q = await makeQueue();
    for (let i = 0; i < 400; i++) putMessage(q, simpleMessage(`ABCDE${String(i).padStart(5, "0")}`, { recipients: Array.from({ length: 20 }, (_, k) => ({ address: `r${k}@remote.test` })) }));
    const postqueue = join(process.env.POSTERN_DIST ?? join(ROOT, "dist"), "postqueue");
    const sh = Bun.spawnSync(["bash", "-c", 'set -o pipefail; "$0" -c "$1" -p | head -n 2', postqueue, q.configDir], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", TZ: "UTC" },
    });
    expect(sh.exitCode).toBe(0);
    expect(sh.stdout.toString()).toStartWith("-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\nABCDE00000 ");
    expect(sh.stderr.toString()).toBe("");
  });
});

describe("usage", () => {
  test("exactly one mode: none, two, or an operand is a usage error (EX_USAGE)", async () => {
    const q = await makeQueue();
    for (const args of [[], ["-p", "-j"], ["-p", "-f"], ["-p", "extra"], ["-x"]]) {
      const r = await run("postqueue", ["-c", q.configDir, ...args]);
      expect(r.code).toBe(64);
      expect(r.stderr).toContain("postqueue: fatal: usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p | postqueue -s site");
    }
    const bad = await run("postqueue", ["-x"]);
    expect(bad.stderr).toStartWith("postqueue: invalid option -- 'x'\n");
  });
});

describe("flushing", () => {
  let q: TestQueue;
  beforeAll(async () => {
    q = await makeQueue();
  });

  test("with the mail system down: Postfix's message and EX_UNAVAILABLE, for -f, -s and -i", async () => {
    for (const args of [["-f"], ["-s", "example.com"], ["-i", "ABCDE12345"]]) {
      const r = await run("postqueue", ["-c", q.configDir, ...args]);
      expect(r.code).toBe(69);
      expect(r.stderr).toBe("postqueue: fatal: Cannot flush mail queue - mail system is down\n");
    }
  });

  test("a stale pid file (its process is gone) still means down", async () => {
    const dead = Bun.spawnSync(["true"]).pid;
    writeFileSync(join(q.queueDirectory, "pid", "master.pid"), `${dead}\n`);
    const r = await run("postqueue", ["-c", q.configDir, "-f"]);
    expect(r.code).toBe(69);
    expect(r.stderr).toContain("Cannot flush mail queue - mail system is down");
  });

  test("an invalid destination or queue ID is refused before anything else (EX_USAGE)", async () => {
    const site = await run("postqueue", ["-c", q.configDir, "-s", "bad site!"]);
    expect(site.code).toBe(64);
    expect(site.stderr).toBe('postqueue: fatal: Cannot flush mail queue - invalid destination: "bad site!"\n');
    const id = await run("postqueue", ["-c", q.configDir, "-i", "../../etc/passwd"]);
    expect(id.code).toBe(64);
    expect(id.stderr).toBe('postqueue: fatal: Cannot flush queue ID - invalid name: "../../etc/passwd"\n');
  });

  test("with a running master, the request goes to the queue manager's socket", async () => {
    const requests: unknown[] = [];
    const server = await serveJsonLines(join(q.queueDirectory, "public", "qmgr"), 0o666, async (req) => {
      requests.push(req);
      return { moved: 0 };
    });
    const stopFake = fakeRunningMaster(q.queueDirectory);
    try {
      expect((await run("postqueue", ["-c", q.configDir, "-f"])).code).toBe(0);
      expect((await run("postqueue", ["-c", q.configDir, "-s", "[192.0.2.1]"])).code).toBe(0);
      expect((await run("postqueue", ["-c", q.configDir, "-i", "ABCDE12345"])).code).toBe(0);
    } finally {
      server.close();
      stopFake();
    }
    expect(requests).toEqual([
      { command: "flush", kind: "all" },
      { command: "flush", kind: "site", site: "[192.0.2.1]" },
      { command: "flush", kind: "id", id: "ABCDE12345" },
    ]);
  });

  test("a running master whose queue manager cannot be reached: a warning, then mail system is down", async () => {
    const stopFake = fakeRunningMaster(q.queueDirectory);
    Bun.spawnSync(["rm", "-f", join(q.queueDirectory, "public", "qmgr")]);
    const r = await run("postqueue", ["-c", q.configDir, "-f"]);
    stopFake();
    expect(r.code).toBe(69);
    expect(r.stderr).toContain("postqueue: warning: cannot reach the queue manager:");
    expect(r.stderr).toEndWith("postqueue: fatal: Cannot flush mail queue - mail system is down\n");
  });
});

describe.skipIf(!IS_ROOT)("users other than root", () => {
  let user: TestUser;
  beforeAll(() => {
    user = createTestUser(`pqtest${process.pid % 100000}`);
  });
  afterAll(() => removeTestUser(user));

  test("a user who cannot read the queue gets a clear message while the daemon is down (EX_UNAVAILABLE)", async () => {
    const q = await makeQueue();
    putMessage(q, simpleMessage("ABCDE12345"));
    for (const name of ["mailq", "postqueue"]) {
      const r = await runAs(user, name, name === "mailq" ? ["-C", q.configDir] : ["-c", q.configDir, "-p"]);
      expect(r.code).toBe(69);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe(`postqueue: fatal: Queue report unavailable - mail system is down and only root and "nobody" can read the queue in "${q.queueDirectory}"\n`);
    }
  });

  test("with a master running but no queue manager to answer, the message says so (test/e2e/showq.test.ts has the real service)", async () => {
    const q = await makeQueue();
    const stopFake = fakeRunningMaster(q.queueDirectory);
    const r = await runAs(user, "postqueue", ["-c", q.configDir, "-j"]);
    stopFake();
    expect(r.code).toBe(69);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("Queue report unavailable - cannot reach the queue manager");
  });

  test("authorized_mailq_users and authorized_flush_users are Postfix string lists", async () => {
    const allowed = await makeQueue(`authorized_mailq_users = "root, ${user.name}"\nauthorized_flush_users = "!${user.name}, static:anyone"`);
    // let in by the list, then stopped by the file system: the daemon is down and the queue is not readable
    expect((await runAs(user, "postqueue", ["-c", allowed.configDir, "-p"])).code).toBe(69);
    const refused = await runAs(user, "postqueue", ["-c", allowed.configDir, "-f"]);
    expect(refused.code).toBe(77);
    expect(refused.stderr).toBe(`postqueue: fatal: User ${user.name}(${user.uid}) is not allowed to flush the mail queue\n`);
    // a lookup table: found means allowed
    const table = await makeQueue(`authorized_flush_users = "inline:{ ${user.name}=yes }"`);
    const flush = await runAs(user, "postqueue", ["-c", table.configDir, "-f"]);
    expect(flush.stderr).toBe("postqueue: fatal: Cannot flush mail queue - mail system is down\n");
    expect(flush.code).toBe(69);
  });

  test("users the lists leave out are refused (EX_NOPERM); root always passes", async () => {
    const q = await makeQueue('authorized_mailq_users = "root"\nauthorized_flush_users = "root"');
    const list = await runAs(user, "postqueue", ["-c", q.configDir, "-p"]);
    expect(list.code).toBe(77);
    expect(list.stderr).toContain(`postqueue: fatal: User ${user.name}(${user.uid}) is not allowed to view the mail queue`);
    const flush = await runAs(user, "postqueue", ["-c", q.configDir, "-f"]);
    expect(flush.code).toBe(77);
    expect(flush.stderr).toContain(`User ${user.name}(${user.uid}) is not allowed to flush the mail queue`);
    // root is always allowed
    expect((await run("postqueue", ["-c", q.configDir, "-p"])).code).toBe(0);
  });

  test("the owner of an unprivileged queue lists it directly", async () => {
    const q = await makeQueue();
    putMessage(q, simpleMessage("ABCDE12345"));
    giveQueueTo(q, user);
    const r = await runAs(user, "postqueue", ["-c", q.configDir, "-p"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("ABCDE12345       22 Sat Nov 21 06:23:59  alice@example.com\n");
    expect(statSync(join(q.queueDirectory, "deferred", "ABCDE12345")).uid).toBe(user.uid);
  });
});
