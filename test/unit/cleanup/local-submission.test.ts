/**
 * Cleanup for local submissions against golden cases (test/golden/cleanup/NAME/):
 * meta.json (envelope, attributes, who submitted, setting overrides, what the
 * case is about) and input.eml (the message as sendmail stored it) produce
 * expected.queue (the incoming queue file) and expected.log (log lines, the
 * rejection, finished recipients). Fixed queue ID, times and TZ=UTC.
 * UPDATE_GOLDEN=1 rewrites the expected files; review the diff before committing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupLocalSubmission, NoRecipientsError } from "../../../src/cleanup/local-submission.ts";
import type { CleanupSettings } from "../../../src/cleanup/settings.ts";
import type { CanonicalOptions } from "../../../src/global/address/canonical.ts";
import { encodeQueueFile, type QueueFile } from "../../../src/global/queue/format.ts";
import { ROOT } from "../../helpers/run.ts";

const GOLDEN = join(ROOT, "test/golden/cleanup");
const QUEUE_ID = "4A1B2C3D4E";
const ARRIVAL = Date.UTC(2026, 10, 21, 6, 23, 7);
const NOW = new Date(ARRIVAL + 1000);

const canon: CanonicalOptions = {
  context: "local",
  myorigin: "origin.example",
  mydomain: "example.org",
  appendAtMyorigin: true,
  appendDotMydomain: false,
  swapBangpath: true,
  allowPercentHack: true,
  remoteDomain: "",
};

/** Postfix's defaults, with myhostname and myorigin of the Postfix instance the cases were compared with. */
export const SETTINGS: CleanupSettings = {
  myhostname: "host.example.org",
  mailName: "postern",
  envelope: canon,
  local: canon,
  remote: { ...canon, context: "remote" },
  alwaysAddMissingHeaders: false,
  undisclosedRecipientsHeader: "",
  dropHeaders: new Set(["bcc", "content-length", "resent-bcc", "return-path"]),
  emptyAddressRecipient: "MAILER-DAEMON",
  enableOriginalRecipient: true,
  hopcountLimit: 50,
  messageSizeLimit: 10240000,
  lineLengthLimit: 2048,
  headerSizeLimit: 102400,
  headerAddressTokenLimit: 10240,
  verpFilter: "-=+",
  replaceStrayCrLf: true,
};

interface Meta {
  about: string;
  sender: string;
  recipients: QueueFile["recipients"];
  attributes: Record<string, string>;
  submitter: { uid: number; login?: string; trusted: boolean };
  settings?: Partial<CleanupSettings>;
}

let savedTz: string | undefined;
beforeAll(() => {
  savedTz = process.env.TZ;
  process.env.TZ = "UTC";
});
afterAll(() => {
  process.env.TZ = savedTz;
});

function run(name: string): { queue: string; log: string } {
  const dir = join(GOLDEN, name);
  const meta = JSON.parse(readFileSync(join(dir, "meta.json"), "utf8")) as Meta;
  const file: QueueFile = { arrivalTime: ARRIVAL, sender: meta.sender, recipients: meta.recipients, attributes: meta.attributes, content: readFileSync(join(dir, "input.eml")) };
  const settings = { ...SETTINGS, ...meta.settings };
  const r = cleanupLocalSubmission({ file, submitter: meta.submitter, submittedAt: new Date(ARRIVAL) }, settings, QUEUE_ID, NOW);
  const log = [
    ...r.logs.map((l) => `info: ${l}`),
    ...r.warnings.map((w) => `warning: ${w}`),
    ...(r.rejection ? [`rejection: ${r.rejection.status} ${r.rejection.reason} (${r.rejection.warning})`] : []),
    `done: ${r.file.recipients.flatMap((x, i) => (x.done ? [i] : [])).join(",") || "none"}`,
  ];
  return { queue: Buffer.from(encodeQueueFile(r.file)).toString("latin1"), log: log.join("\n") + "\n" };
}

describe("cleanupLocalSubmission (golden)", () => {
  const cases = readdirSync(GOLDEN).filter((n) => existsSync(join(GOLDEN, n, "meta.json")));
  test("the golden directory has cases", () => expect(cases.length).toBeGreaterThanOrEqual(10));
  for (const name of cases) {
    test(name, () => {
      const out = run(name);
      const qPath = join(GOLDEN, name, "expected.queue");
      const lPath = join(GOLDEN, name, "expected.log");
      if (process.env.UPDATE_GOLDEN) {
        writeFileSync(qPath, Buffer.from(out.queue, "latin1"));
        writeFileSync(lPath, out.log);
      }
      expect(out.queue).toBe(readFileSync(qPath).toString("latin1"));
      expect(out.log).toBe(readFileSync(lPath, "utf8"));
    });
  }
});

describe("cleanupLocalSubmission", () => {
  test("a message whose recipients are all finished has nothing to deliver", () => {
    const file: QueueFile = { arrivalTime: ARRIVAL, sender: "a", recipients: [{ address: "b", done: true }], attributes: {}, content: Buffer.from("") };
    expect(() => cleanupLocalSubmission({ file, submitter: { uid: 1, trusted: true }, submittedAt: NOW }, SETTINGS, QUEUE_ID, NOW)).toThrow(NoRecipientsError);
  });

  test("enable_original_recipient = no records no original recipient", () => {
    const file: QueueFile = { arrivalTime: ARRIVAL, sender: "a", recipients: [{ address: "b" }], attributes: {}, content: Buffer.from("") };
    const r = cleanupLocalSubmission({ file, submitter: { uid: 1, trusted: false }, submittedAt: NOW }, { ...SETTINGS, enableOriginalRecipient: false }, QUEUE_ID, NOW);
    expect(r.file.recipients).toEqual([{ address: "b@origin.example", orcpt: "rfc822;b@origin.example" }]);
  });

  test("a bad undisclosed_recipients_header is warned about, not added", () => {
    const file: QueueFile = { arrivalTime: ARRIVAL, sender: "a", recipients: [{ address: "b" }], attributes: {}, content: Buffer.from("Subject: x\n\n") };
    const r = cleanupLocalSubmission({ file, submitter: { uid: 1, trusted: false }, submittedAt: NOW }, { ...SETTINGS, undisclosedRecipientsHeader: "no colon here" }, QUEUE_ID, NOW);
    expect(r.warnings).toEqual(['bad undisclosed_recipients_header header text "no colon here" -- need "headername: headervalue"']);
    expect(Buffer.from(r.file.content).toString()).not.toContain("no colon here");
  });

  test("a forged line break in the full name cannot add a header", () => {
    const file: QueueFile = { arrivalTime: ARRIVAL, sender: "a", recipients: [{ address: "b" }], attributes: { full_name: "X\nBcc: victim@example.com" }, content: Buffer.from("") };
    const r = cleanupLocalSubmission({ file, submitter: { uid: 1, trusted: false }, submittedAt: NOW }, SETTINGS, QUEUE_ID, NOW);
    const text = Buffer.from(r.file.content).toString();
    expect(text).toContain('From: "X Bcc: victim@example.com" <a@origin.example>\n');
    expect(text).not.toMatch(/^Bcc:/m);
  });
});
