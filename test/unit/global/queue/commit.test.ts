/**
 * commitQueueFile and commitQueueFileSync on a write that comes back short:
 * the commit fails (it never returns a queue ID for a truncated file), no
 * temporary file is left, and no queue file appears. Once with an injected
 * writer, once for real on a full tmpfs (root only).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeSync } from "node:fs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { commitQueueFile, commitQueueFileSync, DirectorySync } from "../../../../src/global/queue/commit.ts";
import { decodeQueueFile, encodeQueueFile } from "../../../../src/global/queue/format.ts";
import type { SyncWriter } from "../../../../src/util/durable-file.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";
import { CANNOT_MOUNT, mountSmallFs, type SmallFs } from "../../../helpers/small-fs.ts";

const message = (size: number) =>
  encodeQueueFile({ arrivalTime: 1_800_000_000_000, sender: "a@example.org", recipients: [{ address: "b@example.org" }], attributes: {}, content: Buffer.alloc(size, "x") });

/** Writes half of what it is asked, then fails with ENOSPC, as write(2) does on a full disk. */
function halfThenFull(): SyncWriter {
  let calls = 0;
  const full = () => Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write" });
  return (fd, data, offset, length) => {
    if (calls++ > 0) throw full();
    return writeSync(fd, data, offset, Math.ceil(length / 2));
  };
}

describe("a short write fails the commit", () => {
  const dir = tempDir("postern-commit-");
  afterAll(() => removeDir(dir));

  test("async: rejects with ENOSPC, no temporary file, no queue file", async () => {
    await expect(commitQueueFile(dir, () => message(10_000), 0o600, halfThenFull())).rejects.toMatchObject({ code: "ENOSPC" });
    expect(readdirSync(dir)).toEqual([]);
  });

  test("sync: throws ENOSPC, no temporary file, no queue file", () => {
    expect(() => commitQueueFileSync(dir, () => message(10_000), 0o600, halfThenFull())).toThrow(expect.objectContaining({ code: "ENOSPC" }));
    expect(readdirSync(dir)).toEqual([]);
  });

  test("a writer that makes no progress fails with EIO instead of looping", async () => {
    await expect(commitQueueFile(dir, () => message(10), 0o600, () => 0)).rejects.toMatchObject({ code: "EIO" });
    expect(() => commitQueueFileSync(dir, () => message(10), 0o600, () => 0)).toThrow(expect.objectContaining({ code: "EIO" }));
    expect(readdirSync(dir)).toEqual([]);
  });

  test("short writes that go on are completed: the file decodes whole", async () => {
    let n = 0;
    const slow: SyncWriter = (fd, data, offset, length) => writeSync(fd, data, offset, Math.min(length, 1000 + (n++ % 7)));
    const id = await commitQueueFile(dir, () => message(20_000), 0o600, slow);
    expect(decodeQueueFile(await Bun.file(join(dir, id)).bytes()).content.length).toBe(20_000);
  });
});

describe.skipIf(CANNOT_MOUNT !== undefined)(`on a full tmpfs${CANNOT_MOUNT ? ` (skipped: ${CANNOT_MOUNT})` : ""}`, () => {
  let fs: SmallFs;
  beforeAll(() => {
    fs = mountSmallFs("256k");
    mkdirSync(join(fs.dir, "incoming"));
  });
  afterAll(() => fs?.release());

  test("a message bigger than the free space is refused by both forms; what was acknowledged decodes", async () => {
    const dir = join(fs.dir, "incoming");
    const id = await commitQueueFile(dir, () => message(150_000));
    await expect(commitQueueFile(dir, () => message(150_000))).rejects.toMatchObject({ code: "ENOSPC" });
    expect(() => commitQueueFileSync(dir, () => message(150_000))).toThrow(expect.objectContaining({ code: "ENOSPC" }));
    expect(readdirSync(dir)).toEqual([id]);
    expect(decodeQueueFile(await Bun.file(join(dir, id)).bytes()).content.length).toBe(150_000);
  });
});

describe("the directory fsync is a group commit (DirectorySync)", () => {
  /** A fake fsync per call, finished by the test: the order of events is the test's. */
  function fakeSyncs() {
    const calls: { finish: (ok?: boolean) => void; fail: (err: Error) => void }[] = [];
    const group = new DirectorySync(
      () =>
        new Promise<boolean>((resolve, reject) => {
          calls.push({ finish: (ok = true) => resolve(ok), fail: reject });
        }),
    );
    return { group, calls };
  }
  const settled = async (p: Promise<boolean>) => {
    let state = "pending";
    p.then(
      (v) => (state = `resolved ${v}`),
      (e) => (state = `rejected ${(e as Error).message}`),
    );
    for (let i = 0; i < 5; i++) await Promise.resolve();
    return state;
  };

  test("commits that arrive while an fsync runs share the next one, never the running one", async () => {
    const { group, calls } = fakeSyncs();
    const first = group.after();
    expect(calls).toHaveLength(1);
    // renamed while the first fsync ran: it may have missed them, so they wait for a second
    const second = group.after();
    const third = group.after();
    expect(calls).toHaveLength(1);
    calls[0]!.finish();
    expect(await settled(first)).toBe("resolved true");
    expect(await settled(second)).toBe("pending");
    expect(calls).toHaveLength(2);
    // one arriving now, while the shared second fsync runs, waits for a third
    const fourth = group.after();
    calls[1]!.finish();
    expect(await settled(second)).toBe("resolved true");
    expect(await settled(third)).toBe("resolved true");
    expect(await settled(fourth)).toBe("pending");
    expect(calls).toHaveLength(3);
    calls[2]!.finish();
    expect(await settled(fourth)).toBe("resolved true");
    // idle again: the next commit starts an fsync of its own at once
    const fifth = group.after();
    expect(calls).toHaveLength(4);
    calls[3]!.finish(false);
    expect(await settled(fifth)).toBe("resolved false");
  });

  test("a failed fsync fails every commit that waited for it, and the next one still runs", async () => {
    const { group, calls } = fakeSyncs();
    const first = group.after();
    const second = group.after();
    calls[0]!.fail(new Error("EIO"));
    expect(await settled(first)).toBe("rejected EIO");
    expect(calls).toHaveLength(2);
    calls[1]!.fail(new Error("EIO again"));
    expect(await settled(second)).toBe("rejected EIO again");
    const third = group.after();
    calls[2]!.finish();
    expect(await settled(third)).toBe("resolved true");
  });

  test("concurrent commits into one directory all land, each decodable", async () => {
    const dir = tempDir("commit-group");
    try {
      const ids = await Promise.all(Array.from({ length: 40 }, () => commitQueueFile(dir, () => message(100 + Math.floor(Math.random() * 4000)))));
      expect(new Set(ids).size).toBe(40);
      expect(readdirSync(dir).sort()).toEqual([...ids].sort());
      for (const id of ids) expect(decodeQueueFile(readFileSync(join(dir, id))).recipients).toEqual([{ address: "b@example.org" }]);
    } finally {
      removeDir(dir);
    }
  });
});
