/**
 * Fuzz target: the queue-file codec (src/global/queue/format.ts) and the
 * per-message delivery logs (src/global/queue/delivery-log.ts).
 *
 * A maildrop file is written by any local user and read by pickup, so the
 * decoder meets hostile bytes; a queue file the daemons wrote themselves must
 * read back exactly, or accepted mail ends in corrupt/. Properties: encode
 * then decode gives the same envelope and content for any values; appended
 * state records read back; any cut before the end marker is incomplete; any
 * other bytes give a CorruptQueueFileError or a file, never another exception.
 */
import { describe, expect, test } from "bun:test";
import { decodeLogEntries, encodeLogEntry, type DeliveryLogEntry } from "../../src/global/queue/delivery-log.ts";
import {
  CorruptQueueFileError,
  decodeQueueEnvelope,
  decodeQueueFile,
  encodeDelayWarnedRecord,
  encodeDoneRecord,
  encodeExpireRecord,
  encodeQueueFile,
  encodeRecordSentRecord,
  type NotifyKeyword,
  type QueueFile,
  type Recipient,
} from "../../src/global/queue/format.ts";
import { bytesFrom, expectOnly, fc, fuzz, TEST_TIMEOUT_MS } from "./fuzz.ts";
import { awkwardText, textFrom } from "./strings.ts";

const notify = fc.oneof(
  fc.constant(["NEVER"] as NotifyKeyword[]),
  fc.uniqueArray(fc.constantFrom<NotifyKeyword>("SUCCESS", "FAILURE", "DELAY"), { minLength: 1, maxLength: 3 }),
);

const recipient: fc.Arbitrary<Recipient> = fc.record(
  { address: awkwardText(30), original: awkwardText(30), orcpt: awkwardText(30), notify },
  { requiredKeys: ["address"] },
);

/** Attribute names the format allows, the ones that name Object.prototype members included. */
const attributeName = fc.oneof(textFrom([..."abcdefghijklmnopqrstuvwxyz0123456789_"], 12, 1), fc.constantFrom("uid", "full_name", "envid", "constructor", "__proto__", "valueof", "expire"));

const queueFile: fc.Arbitrary<QueueFile> = fc.record({
  arrivalTime: fc.integer({ min: 0, max: 999_999_999_999_999 }),
  sender: awkwardText(40),
  recipients: fc.array(recipient, { minLength: 1, maxLength: 5 }),
  attributes: fc.uniqueArray(fc.tuple(attributeName, awkwardText(40)), { selector: ([name]) => name, maxLength: 6 }).map((pairs) => Object.fromEntries(pairs)),
  content: bytesFrom([10, 13, 46, 69, 32], 200),
});

/** The decoded form of what was encoded: fields as given, a plain object of attributes, no done flags. */
function plain(q: QueueFile) {
  return {
    arrivalTime: q.arrivalTime,
    sender: q.sender,
    recipients: q.recipients.map((r) => ({ ...r })),
    attributes: Object.entries(q.attributes).sort(),
    content: Buffer.from(q.content).toString("hex"),
  };
}

describe("queue file", () => {
  test("encode then decode gives back every field, for any values", () => {
    fuzz(0x51e1, 1500, queueFile, (q) => {
      const back = decodeQueueFile(encodeQueueFile(q));
      expect(plain(back)).toEqual(plain(q));
    });
  }, TEST_TIMEOUT_MS);

  test("appended state records read back; a torn last record is ignored", () => {
    const records = fc.array(fc.oneof(fc.constant("X"), fc.constant("W"), fc.constant("V"), fc.nat(4)), { maxLength: 6 });
    fuzz(0x51e2, 400, fc.tuple(queueFile, records, fc.nat(20)), ([q, appended, tornLength]) => {
      const lines = appended.map((r) => (r === "X" ? encodeExpireRecord(5) : r === "W" ? encodeDelayWarnedRecord(6) : r === "V" ? encodeRecordSentRecord(7) : encodeDoneRecord(r % q.recipients.length, 8)));
      const torn = encodeDoneRecord(0, 9).slice(0, Math.min(tornLength, encodeDoneRecord(0, 9).length - 1));
      const file = Buffer.concat([encodeQueueFile(q), Buffer.from(lines.join("") + torn)]);
      const back = decodeQueueFile(file);
      for (let i = 0; i < q.recipients.length; i++) {
        expect(back.recipients[i]!.done === true).toBe(appended.some((r) => typeof r === "number" && r % q.recipients.length === i));
      }
      expect(back.attributes.expire === "yes").toBe(appended.includes("X") || q.attributes.expire === "yes");
      expect(back.attributes.delay_warned === "yes").toBe(appended.includes("W") || q.attributes.delay_warned === "yes");
      expect(back.attributes.record_sent === "yes").toBe(appended.includes("V") || q.attributes.record_sent === "yes");
    });
  }, TEST_TIMEOUT_MS);

  test("a file cut anywhere before its end marker is incomplete, never a message", () => {
    fuzz(0x51e3, 400, fc.tuple(queueFile, fc.double({ min: 0, max: 1, noNaN: true })), ([q, where]) => {
      const bytes = encodeQueueFile(q);
      const cut = Math.floor(where * (bytes.length - 1));
      const result = expectOnly(() => decodeQueueFile(bytes.subarray(0, cut)), CorruptQueueFileError);
      expect(result).toBeInstanceOf(CorruptQueueFileError);
    });
  }, TEST_TIMEOUT_MS);

  test("mutated and random bytes give a file or a CorruptQueueFileError", () => {
    const mutation = fc.tuple(fc.nat(), fc.oneof(fc.constantFrom(10, 32, 37, 48, 69, 77, 82, 0xc3, 0xa0), fc.integer({ min: 0, max: 255 })), fc.constantFrom("set", "insert", "delete"));
    fuzz(0x51e4, 1500, fc.tuple(queueFile, fc.array(mutation, { minLength: 1, maxLength: 4 })), ([q, mutations]) => {
      const bytes = [...encodeQueueFile(q)];
      for (const [at, value, kind] of mutations) {
        const i = at % (bytes.length + 1);
        if (kind === "set" && i < bytes.length) bytes[i] = value;
        else if (kind === "insert") bytes.splice(i, 0, value);
        else bytes.splice(i, 1);
      }
      const result = expectOnly(() => decodeQueueFile(Uint8Array.from(bytes)), CorruptQueueFileError);
      if (!(result instanceof Error)) expect(result.recipients.length).toBeGreaterThan(0);
      // the queue manager's envelope reader agrees: the same refusal, or the same envelope and the content's size
      const file = Buffer.from(bytes);
      const envelope = expectOnly(() => decodeQueueEnvelope((position, length) => file.subarray(position, position + length), file.length), CorruptQueueFileError);
      if (result instanceof Error) expect(envelope instanceof Error ? envelope.message : "(accepted)").toBe(result.message);
      else {
        const { content, ...rest } = result;
        expect(envelope).toEqual({ ...rest, size: content.length });
      }
    });
    const header = fc.constantFrom("postern-queue 1\n", "postern-queue 1\nT 1\nS a\n", "");
    fuzz(0x51e5, 1000, fc.tuple(header, bytesFrom([10, 32, 37, 48, 49, 65, 68, 69, 77, 82, 83, 84, 61], 120)), ([head, tail]) => {
      expectOnly(() => decodeQueueFile(Buffer.concat([Buffer.from(head), tail])), CorruptQueueFileError);
    });
  }, TEST_TIMEOUT_MS);
});

describe("delivery logs (defer/, bounce/, trace/)", () => {
  const entry: fc.Arbitrary<DeliveryLogEntry> = fc.record(
    {
      recipient: awkwardText(30),
      orcpt: awkwardText(20),
      status: textFrom(["2", "4", "5", ".", "0", "1"], 7, 1),
      action: fc.constantFrom("delayed", "failed", "delivered", "relayed", "expanded"),
      time: fc.integer({ min: 0, max: 999_999_999_999_999 }),
      reason: awkwardText(60),
      original: awkwardText(30),
      relay: awkwardText(30),
    },
    { requiredKeys: ["recipient", "status", "action", "time", "reason"] },
  );

  test("entries read back exactly, for any text", () => {
    fuzz(0x51e6, 1000, fc.array(entry, { minLength: 1, maxLength: 4 }), (entries) => {
      expect(decodeLogEntries(entries.map(encodeLogEntry).join(""))).toEqual(entries);
    });
  }, TEST_TIMEOUT_MS);

  test("any text reads as entries or nothing, never an exception", () => {
    fuzz(0x51e7, 500, awkwardText(200), (text) => {
      expectOnly(() => decodeLogEntries(text));
    });
  }, TEST_TIMEOUT_MS);
});
