/**
 * The queue-file decoder refuses every file that is not exactly version 1
 * (docs/queue-file.md): one input/expected case per refusal, and a valid file
 * cut at every byte. Readers (the queue manager, postcat, postsuper, showq)
 * move a refused file to corrupt/, so a refusal must be an
 * CorruptQueueFileError with its reason, never another exception. The queue
 * manager's envelope reader (decodeQueueEnvelope, which skips the content)
 * refuses the same files with the same reasons.
 */
import { describe, expect, test } from "bun:test";
import { CorruptQueueFileError, decodeQueueEnvelope, decodeQueueFile, encodeDoneRecord, encodeQueueFile, QUEUE_HEAD_READ, type QueueFile } from "../../../../src/global/queue/format.ts";

const HEAD = "postern-queue 1\nT 1795242239000\nS alice@example.org\n";
const BODY = "M 8\nSubject\n\nE\n";
const bytes = (s: string) => Buffer.from(s, "utf8");

/** decodeQueueEnvelope over a buffer: reads as the queue manager's do, at positions of a file of that size. */
const envelopeOf = (b: Uint8Array) => decodeQueueEnvelope((position, length) => Buffer.from(b.subarray(position, position + length)), b.length);

function refusal(text: string, decode: (b: Uint8Array) => unknown = decodeQueueFile): string {
  try {
    decode(bytes(text));
  } catch (e) {
    if (e instanceof CorruptQueueFileError) return e.message;
    throw e;
  }
  return "(accepted)";
}

describe("each refusal, input and expected reason", () => {
  test.each([
    ["no newline at all", "postern-queue 1", "truncated envelope"],
    ["another magic", "postfix-queue 1\n", 'not a version 1 queue file: "postfix-queue 1"'],
    ["another version", "postern-queue 2\nT 1\n", 'not a version 1 queue file: "postern-queue 2"'],
    ["a record without its space", `${HEAD}Rbob@example.org\n${BODY}`, 'malformed record "Rbob@example.org"'],
    ["an empty line among the records", `${HEAD}\n${BODY}`, 'malformed record ""'],
    ["arrival time not a number", "postern-queue 1\nT yesterday\n", "bad arrival time record"],
    ["arrival time too long", `postern-queue 1\nT ${"9".repeat(16)}\n`, "bad arrival time record"],
    ["two arrival times", `${HEAD}T 1\n`, "bad arrival time record"],
    ["two senders", `${HEAD}S bob@example.org\n`, "bad sender record"],
    ["a sender with a space", "postern-queue 1\nT 1\nS a b\n", "bad sender record"],
    ["an attribute name in capitals", `${HEAD}A UID 0\n`, "bad attribute record"],
    ["an attribute value with a space", `${HEAD}A uid 0 0\n`, "bad attribute record"],
    ["a recipient parameter without =", `${HEAD}R bob@example.org notify\n`, "bad recipient parameter"],
    ["a NOTIFY word DSN does not have", `${HEAD}R bob@example.org notify=SUCCESS,ALWAYS\n`, "bad NOTIFY value"],
    ["an unknown recipient parameter", `${HEAD}R bob@example.org size=10\n`, 'unknown recipient parameter "size"'],
    ["a content length that is not a number", `${HEAD}R bob@example.org\nM -1\n`, "bad content length"],
    ["a content length longer than the file", `${HEAD}R bob@example.org\nM 9999\nSubject\n\nE\n`, "incomplete: content or end marker missing"],
    ["something else where the end marker belongs", `${HEAD}R bob@example.org\nM 8\nSubject\n\nX\n`, "incomplete: no end marker after the content"],
    ["an unknown record type", `${HEAD}Q x\n`, 'unknown record type "Q"'],
    ["no arrival time", "postern-queue 1\nS a@b\nR bob@example.org\nM 0\n\nE\n", "no arrival time record"],
    ["no sender", "postern-queue 1\nT 1\nR bob@example.org\nM 0\n\nE\n", "no sender record"],
    ["no recipient", `${HEAD}${BODY}`, "no recipient records"],
    ["garbage after the end marker", `${HEAD}R bob@example.org\n${BODY}D one 1\n`, 'bad state record "D one 1"'],
    ["a done record for a recipient that is not there", `${HEAD}R bob@example.org\n${BODY}D 1 1795242240000\n`, "state record for a recipient that does not exist"],
  ])("%s", (_name, input, reason) => {
    expect(refusal(input)).toBe(reason);
    expect(refusal(input, envelopeOf)).toBe(reason);
  });

  test("the valid file the cases are cut from is accepted", () => {
    const q = decodeQueueFile(bytes(`${HEAD}R bob@example.org notify=SUCCESS,FAILURE\n${BODY}D 0 1795242240000\nX 1\n`));
    expect(q).toMatchObject({ arrivalTime: 1795242239000, sender: "alice@example.org", attributes: { expire: "yes" } });
    expect(q.recipients).toEqual([{ address: "bob@example.org", notify: ["SUCCESS", "FAILURE"], done: true }]);
    expect(Buffer.from(q.content).toString()).toBe("Subject\n");
  });
});

describe("a valid file cut at every byte", () => {
  const file: QueueFile = {
    arrivalTime: 1795242239000,
    sender: "alice@example.org",
    attributes: { uid: "1000", envid: "a b%c" },
    recipients: [{ address: "bob@example.org", original: "Bob@Example.org", orcpt: "rfc822;bob@example.org", notify: ["DELAY"] }, { address: "carol@example.org" }],
    content: bytes("Subject: cut\n\nline one\nline two\n"),
  };
  const whole = encodeQueueFile(file);

  test("every prefix before the end marker is refused as corrupt", () => {
    expect(decodeQueueFile(whole)).toMatchObject({ sender: "alice@example.org", attributes: { uid: "1000", envid: "a b%c" } });
    for (let n = 0; n < whole.length; n++) {
      expect(() => decodeQueueFile(whole.subarray(0, n))).toThrow(CorruptQueueFileError);
      expect(() => envelopeOf(whole.subarray(0, n))).toThrow(CorruptQueueFileError);
    }
  });

  test("a torn state record after the end marker is ignored; a whole one counts", () => {
    const done = bytes(encodeDoneRecord(1, 1795242240000));
    const withDone = Buffer.concat([whole, done]);
    for (let n = whole.length; n < withDone.length; n++) {
      const q = decodeQueueFile(withDone.subarray(0, n));
      expect(q.recipients.map((r) => r.done ?? false)).toEqual([false, false]);
    }
    expect(decodeQueueFile(withDone).recipients.map((r) => r.done ?? false)).toEqual([false, true]);
    for (let n = whole.length; n < withDone.length; n++) expect(envelopeOf(withDone.subarray(0, n)).recipients.map((r) => r.done ?? false)).toEqual([false, false]);
    expect(envelopeOf(withDone).recipients.map((r) => r.done ?? false)).toEqual([false, true]);
  });
});

describe("the envelope without the content (the queue manager's activation)", () => {
  /** A file with `recipients` recipients, `contentBytes` of content and every kind of state record. */
  function fileWith(recipients: number, contentBytes: number): Uint8Array {
    const file: QueueFile = {
      arrivalTime: 1795242239000,
      sender: "alice@example.org",
      attributes: { uid: "1000", envid: "x" },
      recipients: Array.from({ length: recipients }, (_, i) => ({ address: `r${i}@example.org`, orcpt: `rfc822;r${i}@example.org` })),
      content: bytes(`Subject: big\n\n${"x".repeat(contentBytes)}\n`),
    };
    return Buffer.concat([encodeQueueFile(file), bytes(`${encodeDoneRecord(recipients - 1, 1)}X 2\nW 3\nV 4\n`)]);
  }

  test("the same envelope as the whole decoder, and the content's size; of a 1 MB content only what the first read (16 KiB) holds is read", () => {
    const whole = fileWith(3, 1_000_000);
    const { content, ...envelope } = decodeQueueFile(whole);
    const reads: [number, number][] = [];
    const got = decodeQueueEnvelope((position, length) => {
      reads.push([position, position + length]);
      return Buffer.from(whole.subarray(position, position + length));
    }, whole.length);
    expect(got).toEqual({ ...envelope, size: content.length });
    expect(got.attributes).toMatchObject({ expire: "yes", delay_warned: "yes", record_sent: "yes" });
    expect(got.recipients.map((r) => r.done ?? false)).toEqual([false, false, true]);
    const contentEnd = Buffer.from(whole).indexOf("Subject: big") + content.length;
    // the reads: the head (the first QUEUE_HEAD_READ bytes), then only the end marker and the state records after the content
    expect(reads[0]).toEqual([0, QUEUE_HEAD_READ]);
    for (const [from] of reads.slice(1)) expect(from).toBeGreaterThanOrEqual(contentEnd);
    expect(reads.reduce((sum, [from, to]) => sum + Math.min(to, whole.length) - from, 0)).toBeLessThan(QUEUE_HEAD_READ + 1024);
  });

  test("a head longer than the first read (thousands of recipients) is read again, larger", () => {
    const whole = fileWith(3000, 100);
    expect(Buffer.from(whole).indexOf("\nM ")).toBeGreaterThan(4 * QUEUE_HEAD_READ);
    const { content, ...envelope } = decodeQueueFile(whole);
    expect(envelopeOf(whole)).toEqual({ ...envelope, size: content.length });
  });
});
