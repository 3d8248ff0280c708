/**
 * Reports compared byte for byte with Postfix 3.7's: each directory under
 * test/golden/bounce/ holds a report captured from a private Postfix
 * instance (expected.eml, as delivered minus the local delivery lines), the
 * returned message (original.eml) and the facts Postfix had (case.json:
 * configuration, queue IDs, times, recipients, log entries). The README
 * there says how they were captured.
 */

import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { buildNotices, type NoticeEntry, type NoticeKind } from "../../../src/bounce/notices.ts";
import type { QueueFile, Recipient } from "../../../src/global/queue/format.ts";
import { removeDir, ROOT, tempDir } from "../../helpers/run.ts";
import { configIn } from "../../helpers/config.ts";

const GOLDEN = join(ROOT, "test/golden/bounce");
const root = tempDir("postern-bounce-golden-");
afterAll(() => removeDir(root));

interface GoldenCase {
  kind: NoticeKind;
  audience: "sender" | "postmaster";
  config: string;
  queueId: string;
  noticeId: string;
  now: string;
  original: { arrival: string; sender: string; attributes: Record<string, string>; recipients: Recipient[] };
  entries: NoticeEntry[];
}

const names = readdirSync(GOLDEN, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

describe("reports match Postfix 3.7's byte for byte", () => {
  test("the golden directory holds the cases", () => {
    expect(names.length).toBeGreaterThanOrEqual(20);
  });
  for (const name of names) {
    test(name, () => {
      const c = JSON.parse(readFileSync(join(GOLDEN, name, "case.json"), "utf8")) as GoldenCase;
      const original: QueueFile = {
        arrivalTime: Date.parse(c.original.arrival),
        sender: c.original.sender,
        attributes: c.original.attributes,
        recipients: c.original.recipients,
        content: readFileSync(join(GOLDEN, name, "original.eml")),
      };
      const config = configIn(root, c.config, name);
      const result = buildNotices(c.kind, { config, queueId: c.queueId, original, entries: c.entries, now: new Date(c.now) });
      const notice = result.notices.find((n) => n.audience === c.audience);
      expect(notice).toBeDefined();
      const expected = readFileSync(join(GOLDEN, name, "expected.eml"), "latin1");
      expect(Buffer.from(notice!.content(c.noticeId)).toString("latin1")).toBe(expected);
    });
  }
});
