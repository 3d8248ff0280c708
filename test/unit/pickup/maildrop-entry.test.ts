/**
 * The bounds of reading a maildrop file: never more than the limit, whatever
 * the size fstat reported, and the limit pickup derives from
 * message_size_limit.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ENVELOPE_ALLOWANCE, isTemporaryName, maildropReadLimit, readMaildropFile, UNLIMITED_CEILING } from "../../../src/pickup/maildrop-entry.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const dir = tempDir("postern-maildrop-");
afterAll(() => removeDir(dir));

function readWith(bytes: number, limit: number): Buffer | undefined {
  const path = join(dir, `f${bytes}`);
  writeFileSync(path, Buffer.alloc(bytes, 0x61));
  const fd = openSync(path, "r");
  try {
    return readMaildropFile(fd, limit);
  } finally {
    closeSync(fd);
  }
}

describe("readMaildropFile", () => {
  test("reads a file up to the limit, and refuses one byte more", () => {
    expect(readWith(0, 10)?.length).toBe(0);
    expect(readWith(10, 10)?.length).toBe(10);
    expect(readWith(11, 10)).toBeUndefined();
    expect(readWith(3 * 1024 * 1024 + 5, 3 * 1024 * 1024 + 5)?.length).toBe(3 * 1024 * 1024 + 5);
    expect(readWith(3 * 1024 * 1024 + 6, 3 * 1024 * 1024 + 5)).toBeUndefined();
  });
});

describe("maildropReadLimit", () => {
  test("message_size_limit plus the header and envelope allowance; a ceiling when there is no limit", () => {
    expect(maildropReadLimit(10240000, 102400)).toBe(10240000 + 102400 + ENVELOPE_ALLOWANCE);
    expect(maildropReadLimit(0, 102400)).toBe(UNLIMITED_CEILING);
  });
});

describe("isTemporaryName", () => {
  test("sendmail's temporary names are left alone, nothing else", () => {
    expect(isTemporaryName("t.1234.k3j4h5g6")).toBe(true);
    for (const n of ["t.", "t.x.y", "T.1.a", "t.1.a/b", "tmp", "t.1.A"]) expect(isTemporaryName(n)).toBe(false);
  });
});
