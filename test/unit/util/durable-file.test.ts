/**
 * The write helpers every file write goes through: a writer that returns
 * fewer bytes than asked (what write(2) and Bun do on a full file system)
 * is called again for the rest; one that makes no progress or fails is an
 * error, never an endless loop or a silently short file; a torn append is
 * cut off again.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, writeSync, constants as fsc } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { appendFully, writeFully, writeFullyAsync, type AsyncWriter, type SyncWriter } from "../../../src/util/durable-file.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const dir = tempDir("postern-durable-file-");
afterAll(() => removeDir(dir));

/** Writes at most `chunk` bytes a call, then throws ENOSPC once `budget` bytes are used up (0 bytes on `zeroAt`). */
function shortWriter(chunk: number, budget = Infinity, calls: number[] = []): SyncWriter {
  let used = 0;
  return (fd, data, offset, length, position) => {
    calls.push(length);
    if (used >= budget) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write" });
    const n = writeSync(fd, data, offset, Math.min(chunk, length, budget - used), position);
    used += n;
    return n;
  };
}

describe("writeFully", () => {
  test("short writes are continued until every byte is written", () => {
    const path = join(dir, "short");
    const fd = openSync(path, "w");
    const calls: number[] = [];
    writeFully(fd, "0123456789abcdef", null, shortWriter(5, Infinity, calls));
    closeSync(fd);
    expect(readFileSync(path, "utf8")).toBe("0123456789abcdef");
    expect(calls).toEqual([16, 11, 6, 1]);
  });

  test("a short write followed by ENOSPC throws ENOSPC", () => {
    const fd = openSync(join(dir, "full"), "w");
    expect(() => writeFully(fd, Buffer.alloc(100, 65), null, shortWriter(64, 64))).toThrow(expect.objectContaining({ code: "ENOSPC" }));
    closeSync(fd);
  });

  test("a writer that returns 0 is an error, not an endless loop", () => {
    const fd = openSync(join(dir, "zero"), "w");
    expect(() => writeFully(fd, "abc", null, () => 0)).toThrow(expect.objectContaining({ code: "EIO", message: "EIO: short write, 0 of 3 bytes written" }));
    closeSync(fd);
  });

  test("a position is advanced with the bytes written", () => {
    const path = join(dir, "positioned");
    const fd = openSync(path, "w+");
    writeFully(fd, "xxxxxxxxxx");
    writeFully(fd, "ABCDE", 3, shortWriter(2));
    closeSync(fd);
    expect(readFileSync(path, "utf8")).toBe("xxxABCDExx");
  });
});

describe("writeFullyAsync", () => {
  const asyncShort = (chunk: number, budget: number): AsyncWriter => {
    let used = 0;
    return async (handle, data, offset, length, position) => {
      if (used >= budget) throw Object.assign(new Error("EFBIG: file too large, write"), { code: "EFBIG" });
      const { bytesWritten } = await handle.write(data, offset, Math.min(chunk, length, budget - used), position);
      used += bytesWritten;
      return bytesWritten;
    };
  };

  test("short writes are continued", async () => {
    const path = join(dir, "async-short");
    const fh = await open(path, "w");
    await writeFullyAsync(fh, Buffer.from("hello, world"), null, asyncShort(3, Infinity));
    await fh.close();
    expect(readFileSync(path, "utf8")).toBe("hello, world");
  });

  test("a short write that cannot be continued throws", async () => {
    const fh = await open(join(dir, "async-full"), "w");
    await expect(writeFullyAsync(fh, Buffer.alloc(10), null, asyncShort(4, 8))).rejects.toMatchObject({ code: "EFBIG" });
    await expect(writeFullyAsync(fh, Buffer.alloc(10), null, async () => 0)).rejects.toMatchObject({ code: "EIO" });
    await fh.close();
  });
});

describe("appendFully", () => {
  test("a torn append is cut off, so the file ends with the last complete record", () => {
    const path = join(dir, "append");
    const fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_APPEND, 0o600);
    appendFully(fd, "D 0 1\n");
    expect(() => appendFully(fd, "D 1 2\n", shortWriter(3, 3))).toThrow(expect.objectContaining({ code: "ENOSPC" }));
    expect(readFileSync(path, "utf8")).toBe("D 0 1\n");
    appendFully(fd, "D 2 3\n", shortWriter(4));
    closeSync(fd);
    expect(readFileSync(path, "utf8")).toBe("D 0 1\nD 2 3\n");
  });
});
