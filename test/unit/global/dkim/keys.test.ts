/**
 * What root reads as DKIM keys before the privilege drop: only private
 * regular files of its own in a directory only it can write; everything
 * else is skipped with a warning, never read.
 */
import { expect, test } from "bun:test";
import { chmodSync, mkdirSync, symlinkSync, writeFileSync, linkSync } from "node:fs";
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { loadDkimKeys } from "../../../../src/global/dkim/keys.ts";
import { tempDir } from "../../../helpers/run.ts";

const pem = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "pem", type: "pkcs8" }).toString();

test("keys: private files are read; group-readable, linked, symlinked, malformed and short keys are skipped", () => {
  const dir = join(tempDir("postern-dkim-keys-"), "dkim");
  mkdirSync(dir, { mode: 0o700 });
  const put = (name: string, text: string, mode = 0o600) => {
    writeFileSync(join(dir, name), text, { mode });
    chmodSync(join(dir, name), mode);
  };
  put("example.com.good.key", pem);
  put("example.com.readable.key", pem, 0o640);
  put("example.com.garbage.key", "not a key");
  put("example.com.short.key", generateKeyPairSync("rsa", { modulusLength: 512 }).privateKey.export({ format: "pem", type: "pkcs8" }).toString());
  symlinkSync(join(dir, "example.com.good.key"), join(dir, "example.com.link.key"));
  put("other", pem);
  linkSync(join(dir, "other"), join(dir, "example.com.hard.key"));
  const warnings: string[] = [];
  const ring = loadDkimKeys(dir, (t) => warnings.push(t));
  expect(ring.size).toBe(1);
  expect(ring.get("EXAMPLE.com", "good")).toBeDefined();
  expect(warnings.join("\n")).toMatch(/readable\.key" skipped: mode 640/);
  expect(warnings.join("\n")).toMatch(/garbage\.key" skipped/);
  expect(warnings.join("\n")).toMatch(/short\.key" skipped: an RSA key shorter than 1024 bits/);
  expect(warnings.join("\n")).toMatch(/link\.key" skipped/);
  expect(warnings.join("\n")).toMatch(/hard\.key" skipped: not a regular file with one link/);
});

test("a key directory others can write is not read at all; a missing one gives no keys and no warning", () => {
  const base = tempDir("postern-dkim-keys-");
  const dir = join(base, "dkim");
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  writeFileSync(join(dir, "example.com.s.key"), pem, { mode: 0o600 });
  const warnings: string[] = [];
  expect(loadDkimKeys(dir, (t) => warnings.push(t)).size).toBe(0);
  expect(warnings[0]).toContain("writable only by it");
  const none: string[] = [];
  expect(loadDkimKeys(join(base, "missing"), (t) => none.push(t)).size).toBe(0);
  expect(none).toEqual([]);
});
