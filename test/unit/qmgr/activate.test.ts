/**
 * Activation (src/qmgr/activate.ts): what the queue manager keeps of a
 * message in active/. Postfix's qmgr reads only the envelope records; the
 * queue manager keeps up to qmgr_message_active_limit messages there, so
 * holding each one's content for the length of its delivery made its memory
 * grow with the backlog times the message size (issue 16, session 7).
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { activateMessage } from "../../../src/qmgr/activate.ts";
import { makePrivateQueue } from "../../helpers/fake-agents.ts";
import { putMessage } from "../../helpers/queue-fixture.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const root = tempDir("postern-qmgr-activate-");
afterAll(() => removeDir(root));

/** Every Uint8Array or ArrayBuffer reachable from `value` (own enumerable properties). */
function buffersIn(value: unknown, seen = new Set<unknown>()): unknown[] {
  if (value === null || typeof value !== "object" || seen.has(value)) return [];
  seen.add(value);
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return [value];
  return Object.values(value as Record<string, unknown>).flatMap((v) => buffersIn(v, seen));
}

test("an activated message keeps its envelope and size, not its content", () => {
  const { queue, config } = makePrivateQueue(mkdtempSync(join(root, "q-")));
  const body = `Subject: big\n\n${"x".repeat(64 * 1024)}\n`;
  putMessage(queue, { queue: "incoming", id: "C00001", arrival: 1_767_600_000, sender: "s@example.com", recipients: [{ address: "a@example.com" }, { address: "b@example.com" }], content: body, attributes: { envid: "e1" } });
  const msg = activateMessage({ config, queueDir: queue.queueDirectory, now: () => 0 }, "C00001", "incoming");
  expect(msg).toBeDefined();
  expect(msg!.file.size).toBe(Buffer.byteLength(body));
  expect(msg!.file.sender).toBe("s@example.com");
  expect(msg!.file.recipients.map((r) => r.address)).toEqual(["a@example.com", "b@example.com"]);
  expect(msg!.file.attributes.envid).toBe("e1");
  expect("content" in msg!.file).toBe(false);
  expect(buffersIn(msg)).toEqual([]);
});
