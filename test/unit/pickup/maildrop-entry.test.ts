/**
 * The bounds of reading a maildrop file: never more than the limit, whatever
 * the size fstat reported, and the limit pickup derives from
 * message_size_limit.
 */
import { afterAll, describe, expect, spyOn, test } from "bun:test";
import { closeSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ENVELOPE_ALLOWANCE, isTemporaryName, maildropReadLimit, readMaildropFile, UNLIMITED_CEILING } from "../../../src/pickup/maildrop-entry.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const dir = tempDir("postern-maildrop-");
afterAll(() => removeDir(dir));

function readWith(bytes: number, limit: number, sizeHint?: number): Buffer | undefined {
  const path = join(dir, `f${bytes}`);
  writeFileSync(path, Buffer.alloc(bytes, 0x61));
  const fd = openSync(path, "r");
  try {
    return readMaildropFile(fd, limit, sizeHint);
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

  test("the size fstat gave is only a hint: a file larger or smaller than it is read whole, within the limit", () => {
    for (const hint of [0, 1, 100, 4096, 10 * 1024 * 1024]) {
      expect([hint, readWith(5000, 6000, hint)?.length]).toEqual([hint, 5000]);
      expect([hint, readWith(6001, 6000, hint)]).toEqual([hint, undefined]);
      expect([hint, readWith(0, 6000, hint)?.length]).toEqual([hint, 0]);
    }
    expect(readWith(3 * 1024 * 1024 + 5, 3 * 1024 * 1024 + 5, 10)?.equals(Buffer.alloc(3 * 1024 * 1024 + 5, 0x61))).toBe(true);
  });

  test("a small file with a large limit is read into a buffer of about its size, not megabytes", () => {
    const spy = spyOn(Buffer, "allocUnsafe");
    try {
      expect(readWith(2500, 11 * 1024 * 1024, 2500)?.length).toBe(2500);
      const sizes = spy.mock.calls.map((c) => c[0] as number);
      expect(Math.max(0, ...sizes)).toBeLessThanOrEqual(16 * 1024);
    } finally {
      spy.mockRestore();
    }
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
