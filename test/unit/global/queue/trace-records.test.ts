/**
 * What sendmail -bv and -v leave in the queue: trace/ID log entries with the
 * address as first received and the relay (read back exactly, escaped like
 * every log value; older entries without them still read), and the V state
 * record that says the -v report went out.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { appendDeliveryLog, decodeLogEntries, encodeLogEntry, readDeliveryLog, type DeliveryLogEntry } from "../../../../src/global/queue/delivery-log.ts";
import { decodeQueueFile, encodeQueueFile, encodeRecordSentRecord } from "../../../../src/global/queue/format.ts";
import { QUEUE_DIRECTORIES } from "../../../../src/global/queue/names.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";

const dir = tempDir("postern-trace-");
afterAll(() => removeDir(dir));

test("trace/ is a queue directory, private like defer/ and bounce/", () => {
  expect(QUEUE_DIRECTORIES.find((d) => d.name === "trace")).toEqual({ name: "trace", mode: 0o700 });
});

test("original= and relay= round-trip, spaces and control characters escaped", () => {
  const e: DeliveryLogEntry = {
    recipient: "bob@example.test",
    orcpt: "rfc822;staff@example.test",
    status: "2.0.0",
    action: "deliverable",
    time: 1795245000123,
    reason: "delivers to command: cat > /dev/null",
    original: "staff list",
    relay: "mx.example.org[192.0.2.1]:25",
  };
  const line = encodeLogEntry(e);
  expect(line).toBe(
    "recipient=bob@example.test orcpt=rfc822;staff@example.test status=2.0.0 action=deliverable time=1795245000123 reason=delivers%20to%20command:%20cat%20>%20/dev/null original=staff%20list relay=mx.example.org[192.0.2.1]:25\n",
  );
  expect(decodeLogEntries(line)).toEqual([e]);
  // a line written before these fields existed reads as before
  expect(decodeLogEntries("recipient=a@b status=5.1.1 action=failed time=1 reason=x\n")).toEqual([{ recipient: "a@b", status: "5.1.1", action: "failed", time: 1, reason: "x" }]);
});

test("appendDeliveryLog and readDeliveryLog work on trace/ID", () => {
  const q = join(dir, "queue");
  mkdirSync(join(q, "trace"), { recursive: true });
  const e: DeliveryLogEntry = { recipient: "a@b", status: "2.1.5", action: "deliverable", time: 5, reason: "250 2.1.5 Ok", relay: "x[127.0.0.1]:25" };
  appendDeliveryLog(q, "trace", "3A1F2C0B5E", [e]);
  appendDeliveryLog(q, "trace", "3A1F2C0B5E", [{ ...e, recipient: "c@d" }]);
  expect(readDeliveryLog(q, "trace", "3A1F2C0B5E").map((x) => x.recipient)).toEqual(["a@b", "c@d"]);
});

test("a V record reads as record_sent=yes; a file without one does not", () => {
  const file = encodeQueueFile({ arrivalTime: 1, sender: "a@b", recipients: [{ address: "c@d" }], attributes: { record: "yes" }, content: Buffer.from("S: x\n\nb\n") });
  expect(decodeQueueFile(file).attributes.record_sent).toBeUndefined();
  const withV = Buffer.concat([file, Buffer.from(encodeRecordSentRecord(1795245000000))]);
  expect(encodeRecordSentRecord(1795245000000)).toBe("V 1795245000000\n");
  expect(decodeQueueFile(withV).attributes).toMatchObject({ record: "yes", record_sent: "yes" });
});
