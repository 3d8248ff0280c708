/**
 * postcat against Postfix's captured output (test/golden/postcat/): the
 * same envelope data and content, written as postern queue files, must
 * print the same lines, sections and markers. Only what describes Postfix's
 * own file layout differs: two numbers of `message_size:` (data offset and
 * queue manager flags), the offsets of -o, and maildrop files, where postern
 * has the size record Postfix's maildrop files lack.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, run } from "../helpers/run.ts";
import { createTestUser, IS_ROOT, makeQueue, removeQueues, putMessage, putRawFile, removeTestUser, runAs, type FixtureMessage, type TestQueue, type TestUser } from "../helpers/queue-fixture.ts";

afterAll(removeQueues);

const GOLDEN = join(ROOT, "test/golden/postcat");
const golden = (name: string) => readFileSync(join(GOLDEN, name), "utf8");

/** The message content as the golden file shows it (between MESSAGE CONTENTS and HEADER EXTRACTED). */
function contentOf(goldenName: string): string {
  const lines = golden(goldenName).split("\n");
  const start = lines.findIndex((l) => l.startsWith("*** MESSAGE CONTENTS "));
  const end = lines.findIndex((l) => l.startsWith("*** HEADER EXTRACTED "));
  return lines.slice(start + 1, end).map((l) => l + "\n").join("");
}

/** message_size's data offset and queue manager flags describe Postfix's file layout: blank them. */
function comparable(text: string): string {
  return text.replace(/^message_size: +(\d+) +\d+ +(\d+) +\d+ +(\d+) +(\d+)$/m, "message_size: $1 * $2 * $3 $4");
}

const A: FixtureMessage = {
  queue: "deferred",
  id: "4CAF620C78F",
  arrival: 1_795_242_239,
  sender: "alice@example.com",
  attributes: { create_time: "1795242239", rewrite_context: "local", full_name: "root" },
  recipients: ["ok1", "long1", "short1"].map((l, i) => ({ address: `${l}@remote.test`, original: `${l}@remote.test`, orcpt: `rfc822;${l}@remote.test`, done: i === 0 })),
  content: contentOf("A.txt"),
};

const B: FixtureMessage = {
  queue: "deferred",
  id: "4E0E220C552",
  arrival: 1_795_242_241,
  sender: "",
  attributes: { create_time: "1795242241", rewrite_context: "local", full_name: "root" },
  recipients: ["same1", "same2"].map((l) => ({ address: `${l}@remote.test`, original: `${l}@remote.test`, orcpt: `rfc822;${l}@remote.test` })),
  content: golden("B-bh.txt"), // -bh prints the whole message
};

const DSN: FixtureMessage = {
  queue: "deferred",
  id: "5B3B120CD0B",
  arrival: 1_795_242_434,
  sender: "dsn@example.com",
  attributes: { create_time: "1795242434", envid: "envid123", ret: "HDRS", rewrite_context: "local", full_name: "Full Name" },
  recipients: [{ address: "rcpt1@remote.test", original: "rcpt1@remote.test", orcpt: "rfc822;rcpt1@remote.test", notify: ["SUCCESS", "DELAY"] }],
  content: contentOf("dsn.txt"),
};

const MAILDROP: FixtureMessage = {
  queue: "maildrop",
  id: "3009D20C4B3",
  arrival: 1_795_242_269,
  sender: "erin@example.com",
  attributes: { rewrite_context: "local", full_name: "root" },
  recipients: [{ address: "erin@remote.test" }, { address: "other@remote.test" }],
  content: contentOf("maildrop.txt"),
};

let q: TestQueue;
beforeAll(async () => {
  q = await makeQueue();
  for (const m of [A, B, DSN, MAILDROP]) putMessage(q, m);
});

async function postcat(args: string[], stdin?: string | Uint8Array) {
  return run("postcat", ["-c", q.configDir, ...args], { stdin });
}

describe("against Postfix's postcat", () => {
  for (const [name, args] of [
    ["A.txt", ["-q", "4CAF620C78F"]],
    ["A-e.txt", ["-q", "-e", "4CAF620C78F"]],
    ["A-h.txt", ["-q", "-h", "4CAF620C78F"]],
    ["A-b.txt", ["-q", "-b", "4CAF620C78F"]],
    ["B-bh.txt", ["-q", "-bh", "4E0E220C552"]],
    ["B-he.txt", ["-q", "-he", "4E0E220C552"]],
    ["dsn.txt", ["-q", "5B3B120CD0B"]],
  ] as const) {
    test(`postcat ${args.join(" ")} prints what ${name} holds`, async () => {
      const r = await postcat([...args]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(comparable(r.stdout)).toBe(comparable(golden(name)));
    });
  }

  test("a maildrop file: the same, plus postern's size record", async () => {
    const r = await postcat(["-q", "3009D20C4B3"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    const content = MAILDROP.content as string;
    const size = Buffer.byteLength(content) + content.split("\n").length - 1; // CRLF line ends
    expect(lines[1]).toMatch(new RegExp(`^message_size: +${size} +\\d+ +2 +0 +${size} +0$`));
    expect(lines.filter((_, i) => i !== 1).join("\n")).toBe(golden("maildrop.txt"));
  });

  test("-o: Postfix's layout (offset in 9 columns, none on the first marker), offsets of postern's own records", async () => {
    const r = await postcat(["-q", "-o", "4E0E220C552"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    const goldenLines = golden("B-o.txt").trimEnd().split("\n");
    expect(lines).toHaveLength(goldenLines.length);
    expect(lines[0]).toBe(goldenLines[0]!);
    const strip = (l: string) => l.slice(10);
    for (const l of lines.slice(1)) expect(l).toMatch(/^[ \d]{8}\d /);
    expect(comparable(lines.slice(1).map(strip).join("\n"))).toBe(comparable(goldenLines.slice(1).map(strip).join("\n")));
    // each offset points at the record or line it names
    const file = readFileSync(join(q.queueDirectory, "deferred", "4E0E220C552"));
    const at = (prefix: string) => Number(lines.find((l) => strip(l).startsWith(prefix))!.slice(0, 9));
    expect(file.toString("latin1", at("sender:"), at("sender:") + 2)).toBe("S ");
    expect(file.toString("latin1", at("recipient: same2"), at("recipient: same2") + 7)).toBe("R same2");
    expect(file.toString("latin1", at("message_arrival_time:"), at("message_arrival_time:") + 2)).toBe("T ");
    expect(file.toString("latin1", at("*** MESSAGE CONTENTS"), at("*** MESSAGE CONTENTS") + 2)).toBe("M ");
    expect(file.toString("latin1", at("Subject:"), at("Subject:") + 23)).toBe("Subject: B: null sender");
  });
});

describe("sources and errors", () => {
  test("a file path and standard input are named as Postfix names them", async () => {
    const path = join(q.queueDirectory, "deferred", "4E0E220C552");
    const byPath = await postcat(["-e", path]);
    expect(byPath.stdout.split("\n")[0]).toBe(`*** ENVELOPE RECORDS ${path} ***`);
    const byStdin = await postcat(["-e"], readFileSync(path));
    expect(byStdin.code).toBe(0);
    expect(byStdin.stdout.split("\n")[0]).toBe("*** ENVELOPE RECORDS stdin ***");
    expect(byStdin.stdout.replaceAll(" stdin ***", ` ${path} ***`)).toBe(byPath.stdout);
  });

  test("several IDs print one after the other", async () => {
    const r = await postcat(["-q", "-e", "4E0E220C552", "3009D20C4B3"]);
    expect(r.stdout.match(/^\*\*\* ENVELOPE RECORDS (\S+) \*\*\*$/gm)).toEqual(["*** ENVELOPE RECORDS deferred/4E0E220C552 ***", "*** ENVELOPE RECORDS maildrop/3009D20C4B3 ***"]);
  });

  test("forced expiry shows in the extracted section", async () => {
    const r0 = await run("postsuper", ["-c", q.configDir, "-e", "5B3B120CD0B"]);
    expect(r0.code).toBe(0);
    const r = await postcat(["-q", "-e", "5B3B120CD0B"]);
    expect(r.stdout).toMatch(/\*\*\* HEADER EXTRACTED deferred\/5B3B120CD0B \*\*\*\nforced_expire: \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n\*\*\* MESSAGE FILE END/);
  });

  test("a sent delay notice (W record) shows in the extracted section too", async () => {
    appendFileSync(join(q.queueDirectory, "maildrop", "3009D20C4B3"), "W 1795242300000\n");
    const r = await postcat(["-q", "-e", "3009D20C4B3"]);
    expect(r.stdout).toContain("*** HEADER EXTRACTED maildrop/3009D20C4B3 ***\ndelay_warned: Sat Nov 21 06:25:00 2026\n*** MESSAGE FILE END");
  });

  test("an ID in no queue, or one that is not an ID, cannot be opened (EX_NOINPUT)", async () => {
    for (const id of ["ABCDEF0123", "../../../etc/passwd"]) {
      const r = await postcat(["-q", id]);
      expect(r.code).toBe(66);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe(`postcat: fatal: Cannot open queue file "${id}": no such file in any queue\n`);
    }
    const missing = await postcat([join(q.queueDirectory, "nothing")]);
    expect(missing.code).toBe(66);
  });

  test("a file that is not a valid queue file is an error and prints nothing of it (EX_DATAERR)", async () => {
    putRawFile(q, "hold", "ABCDE99999", "postern-queue 1\nT 1\nS a@b\nR c@d\nM 100\nshort");
    const r = await postcat(["-q", "ABCDE99999"]);
    expect(r.code).toBe(65);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain('postcat: fatal: "hold/ABCDE99999" is not a valid queue file: incomplete');
    const plain = join(q.queueDirectory, "..", "plain.txt");
    writeFileSync(plain, "Subject: x\n\nbody\n");
    expect((await postcat([plain])).code).toBe(65);
  });

  test("Postfix's -d and -s describe its own record layout and are refused (EX_USAGE)", async () => {
    const r = await postcat(["-d", "-q", "4E0E220C552"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain("option -d describes Postfix's record layout and is not supported");
  });
});

describe.skipIf(!IS_ROOT)("privileges", () => {
  let user: TestUser;
  beforeAll(() => {
    user = createTestUser(`pctest${process.pid % 100000}`);
  });
  afterAll(() => removeTestUser(user));

  test("other users are refused (EX_NOPERM), even for a file they could read", async () => {
    const r = await runAs(user, "postcat", ["-c", q.configDir, "-q", "4E0E220C552"]);
    expect(r.code).toBe(77);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe('postcat: fatal: Only root and the owner of the queue ("nobody") may read queue files\n');
  });
});
