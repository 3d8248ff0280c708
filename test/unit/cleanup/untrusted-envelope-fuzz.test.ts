/**
 * Mutated maildrop files through what pickup does with them: decode, then
 * screen. A bounded number of cases from a fixed seed: only
 * CorruptQueueFileError may come out of the decoder, the screening never
 * throws, and whatever it accepts has addresses without control characters
 * and within line_length_limit.
 */
import { describe, expect, test } from "bun:test";
import { screenUntrustedFile, validOrcpt } from "../../../src/cleanup/untrusted-envelope.ts";
import type { CleanupSettings } from "../../../src/cleanup/settings.ts";
import { CorruptQueueFileError, decodeQueueFile, encodeQueueFile } from "../../../src/global/queue/format.ts";

const SETTINGS = { lineLengthLimit: 64, verpFilter: "-=+" } as CleanupSettings;
const CASES = 3000;

/** xorshift32: the same cases on every run. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const BASE = Buffer.from(
  encodeQueueFile({
    arrivalTime: 1_700_000_000_000,
    sender: "me@example.org",
    recipients: [
      { address: "bob", original: "bob", orcpt: "rfc822;bob@example.org", notify: ["SUCCESS", "DELAY"] },
      { address: "carol@example.org" },
    ],
    attributes: { envid: "abc", ret: "HDRS", full_name: "Me", origin: "sendmail", rewrite_context: "local" },
    content: Buffer.from("Subject: x\n\nbody\n"),
  }),
);
const PIECES = ["%0D%0A", "%00", "%1B", "%7F", " ", "=", ";", ",", "NEVER", "R x\n", "A constructor x\n", "A __proto__ x\n", "D 0 1\n", "X 1\n", "%", "%ZZ", "€", "y".repeat(80), "\n"];

function mutate(rnd: () => number): Buffer {
  let text = BASE.toString("latin1");
  const edits = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(rnd() * text.length);
    const r = rnd();
    if (r < 0.4) text = text.slice(0, at) + PIECES[Math.floor(rnd() * PIECES.length)]! + text.slice(at);
    else if (r < 0.7) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(rnd() * 8));
    else text = text.slice(0, at) + String.fromCharCode(Math.floor(rnd() * 256)) + text.slice(at + 1);
  }
  return Buffer.from(text, "latin1");
}

describe("decode and screen mutated maildrop files", () => {
  test(`${CASES} cases: no exception escapes, nothing bad is accepted`, () => {
    const rnd = random(0x9e3779b9);
    let accepted = 0;
    for (let n = 0; n < CASES; n++) {
      const bytes = mutate(rnd);
      let file;
      try {
        file = decodeQueueFile(bytes);
      } catch (err) {
        if (!(err instanceof CorruptQueueFileError)) throw new Error(`case ${n}: ${(err as Error).message}: ${JSON.stringify(bytes.toString("latin1"))}`);
        continue;
      }
      const s = screenUntrustedFile(file, SETTINGS);
      if ("refused" in s) continue;
      accepted++;
      const addresses = [s.file.sender, ...s.file.recipients.flatMap((r) => [r.address, r.original ?? ""])];
      for (const a of addresses) {
        expect(/[\x00-\x1f\x7f]/.test(a)).toBe(false);
        expect(Buffer.byteLength(a)).toBeLessThanOrEqual(SETTINGS.lineLengthLimit);
      }
      for (const r of s.file.recipients) if (r.orcpt !== undefined) expect(validOrcpt(r.orcpt, SETTINGS)).toBe(true);
      for (const name of Object.keys(s.file.attributes)) expect(["full_name", "rewrite_context", "envid", "ret", "encoding", "verp", "verify", "record"]).toContain(name);
    }
    // the mutations leave some files intact enough to be accepted
    expect(accepted).toBeGreaterThan(0);
  });
});
