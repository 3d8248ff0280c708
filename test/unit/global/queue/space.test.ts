/**
 * The queue space rule, as Postfix's smtpd_check_queue counts it: in
 * blocks, refusing when the free blocks do not exceed queue_minfree or
 * 1.5 x message_size_limit (the message's own size when there is no limit).
 */
import { describe, expect, test } from "bun:test";
import { spaceShortage } from "../../../../src/global/queue/space.ts";

const fs = (freeBlocks: number, bsize = 4096) => ({ bsize, bavail: freeBlocks });

describe("spaceShortage", () => {
  test("message_size_limit: free blocks must exceed 1.5 times the limit's blocks", () => {
    const rule = { minfree: 0, sizeLimit: 10_240_000 };
    // 10240000 bytes = 2500 blocks of 4096; 1.5 x 2500 = 3750
    expect(spaceShortage(fs(3750), rule)).toMatchObject({ free: 3750 * 4096, warning: "not enough free space in mail queue: 15360000 bytes < 1.5*message size limit (10240000)" });
    expect(spaceShortage(fs(3751), rule)).toBeUndefined();
  });

  test("queue_minfree: free blocks must exceed its blocks", () => {
    const rule = { minfree: 4096 * 100, sizeLimit: 0 };
    expect(spaceShortage(fs(100), rule)?.warning).toBe("not enough free space in mail queue: 409600 bytes < queue_minfree 409600");
    expect(spaceShortage(fs(101), rule)).toBeUndefined();
  });

  test("no limit: the message's size stands in; with no size, only an empty file system is short", () => {
    const rule = { minfree: 0, sizeLimit: 0 };
    expect(spaceShortage(fs(0), rule)).toBeDefined();
    expect(spaceShortage(fs(1), rule)).toBeUndefined();
    expect(spaceShortage(fs(15), rule, 40_960)).toBeDefined();
    expect(spaceShortage(fs(16), rule, 40_960)).toBeUndefined();
  });

  test("bigint counts (statfs with bigint) are accepted", () => {
    expect(spaceShortage({ bsize: 4096n, bavail: 10n }, { minfree: 0, sizeLimit: 1_000_000 })).toBeDefined();
  });
});
