import { afterAll, describe, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodeQueueFile, encodeExpireRecord, encodeQueueFile, type QueueFile } from "../../../../src/global/queue/format.ts";
import { openRecipients, scanQueue, smtpMessageSize, type ListingProblem } from "../../../../src/global/queue/listing.ts";
import { forceExpire } from "../../../../src/global/queue/expire.ts";
import { appendDeliveryLog } from "../../../../src/global/queue/delivery-log.ts";
import { QUEUE_DIRECTORIES } from "../../../../src/global/queue/names.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";

const root = tempDir("postern-listing-unit-");
afterAll(() => removeDir(root));

function file(over: Partial<QueueFile> = {}): QueueFile {
  return { arrivalTime: 1_700_000_000_123, sender: "s@x.test", recipients: [{ address: "a@x.test" }], attributes: {}, content: Buffer.from("Subject: t\n\nbody\n"), ...over };
}

let n = 0;
function queueDir(): string {
  const dir = join(root, `q${++n}`);
  for (const { name } of QUEUE_DIRECTORIES) mkdirSync(join(dir, name), { recursive: true });
  return dir;
}

describe("message size", () => {
  test("every line counts with a CRLF ending, as Postfix's message_size does", () => {
    expect(smtpMessageSize(Buffer.from(""))).toBe(0);
    expect(smtpMessageSize(Buffer.from("a\n"))).toBe(3);
    expect(smtpMessageSize(Buffer.from("a\n\nb\n"))).toBe(8);
    expect(smtpMessageSize(Buffer.from("no newline"))).toBe(12);
  });
});

describe("open recipients and their reasons", () => {
  const f = file({
    recipients: [{ address: "done@x.test", done: true }, { address: "b@x.test" }, { address: "a@x.test" }, { address: "c@x.test" }],
  });

  test("recipients named in the defer log come first, in log order, each with its latest reason; the rest follow without one", () => {
    const log = [
      { recipient: "a@x.test", reason: "first a" },
      { recipient: "b@x.test", reason: "first b" },
      { recipient: "a@x.test", reason: "latest a" },
    ];
    expect(openRecipients(f, log)).toEqual([
      { address: "a@x.test", reason: "latest a" },
      { address: "b@x.test", reason: "first b" },
      { address: "c@x.test", reason: "" },
    ]);
  });

  test("a finished recipient is not shown, even with an old reason in the log", () => {
    expect(openRecipients(f, [{ recipient: "done@x.test", reason: "old" }]).map((r) => r.address)).toEqual(["b@x.test", "a@x.test", "c@x.test"]);
  });
});

describe("forced expiry records", () => {
  test("an appended X record reads as the attribute expire=yes", () => {
    const bytes = Buffer.concat([Buffer.from(encodeQueueFile(file())), Buffer.from("D 0 1700000000000\n"), Buffer.from(encodeExpireRecord(1))]);
    const decoded = decodeQueueFile(bytes);
    expect(decoded.attributes.expire).toBe("yes");
    expect(decoded.recipients[0]!.done).toBe(true);
  });

  test("a torn X record (no newline) is ignored", () => {
    const bytes = Buffer.concat([Buffer.from(encodeQueueFile(file())), Buffer.from("X 12")]);
    expect(decodeQueueFile(bytes).attributes.expire).toBeUndefined();
  });

  test("forceExpire marks once, then reports that the file already is marked", () => {
    const path = join(root, "expire-me");
    writeFileSync(path, encodeQueueFile(file()));
    expect(forceExpire(path)).toBe("expired");
    expect(forceExpire(path)).toBe("already");
    expect(forceExpire(join(root, "missing"))).toBe("gone");
    expect(decodeQueueFile(readFileSync(path)).attributes.expire).toBe("yes");
  });

  test("forceExpire never writes through a symbolic link", () => {
    const target = join(root, "outside");
    writeFileSync(target, encodeQueueFile(file()));
    const link = join(root, "link-to-outside");
    symlinkSync(target, link);
    expect(() => forceExpire(link)).toThrow("symbolic link");
    expect(decodeQueueFile(readFileSync(target)).attributes.expire).toBeUndefined();
  });
});

describe("scanning the queue", () => {
  test("Postfix's queue order, IDs sorted within a queue, problems reported and skipped", () => {
    const dir = queueDir();
    const put = (queue: string, id: string, f: QueueFile) => writeFileSync(join(dir, queue, id), encodeQueueFile(f));
    put("hold", "AAAAA1", file());
    put("deferred", "BBBBB2", file());
    put("deferred", "AAAAA2", file({ sender: "" }));
    put("maildrop", "CCCCC3", file());
    put("active", "DDDDD4", file());
    put("incoming", "EEEEE5", file());
    writeFileSync(join(dir, "deferred", "FFFFF6"), "garbage");
    writeFileSync(join(dir, "deferred", "t.123.abc"), "being written");
    appendFileSync(join(dir, "hold", "AAAAA1"), encodeExpireRecord());
    appendDeliveryLog(dir, "defer", "BBBBB2", [{ recipient: "a@x.test", status: "4.0.0", action: "delayed", time: 1, reason: "try later" }]);
    const problems: ListingProblem[] = [];
    const listed = [...scanQueue(dir, (p) => problems.push(p))];
    expect(listed.map((m) => `${m.queueName}/${m.queueId}`)).toEqual([
      "maildrop/CCCCC3",
      "active/DDDDD4",
      "incoming/EEEEE5",
      "deferred/AAAAA2",
      "deferred/BBBBB2",
      "hold/AAAAA1",
    ]);
    expect(problems.map((p) => `${p.queueName}/${p.queueId}`)).toEqual(["deferred/FFFFF6"]);
    const byId = Object.fromEntries(listed.map((m) => [m.queueId, m]));
    expect(byId.AAAAA1!.forcedExpire).toBe(true);
    expect(byId.AAAAA2!.sender).toBe("");
    expect(byId.BBBBB2!.recipients).toEqual([{ address: "a@x.test", reason: "try later" }]);
    expect(byId.CCCCC3!.arrivalTime).toBe(1_700_000_000);
    expect(byId.CCCCC3!.messageSize).toBe(smtpMessageSize(Buffer.from("Subject: t\n\nbody\n")));
  });

  test("a symbolic link in a queue is reported, not followed", () => {
    const dir = queueDir();
    const outside = join(root, `secret${n}`);
    writeFileSync(outside, encodeQueueFile(file({ sender: "secret@x.test" })));
    symlinkSync(outside, join(dir, "deferred", "ABCDEF1"));
    const problems: ListingProblem[] = [];
    expect([...scanQueue(dir, (p) => problems.push(p))]).toEqual([]);
    expect(problems[0]!.message).toContain("symbolic link");
  });
});
