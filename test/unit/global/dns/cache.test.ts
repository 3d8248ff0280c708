import { describe, expect, test } from "bun:test";
import { TtlCache } from "../../../../src/global/dns/cache.ts";

describe("the answer cache", () => {
  test("an entry lives for its TTL on the cache's clock", () => {
    let now = 1_000_000;
    const cache = new TtlCache<string>(10, () => now);
    cache.set("a", "x", 30);
    expect(cache.get("a")?.value).toBe("x");
    now += 29_999;
    expect(cache.get("a")?.value).toBe("x");
    now += 1;
    expect(cache.get("a")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  test("a TTL of zero stores nothing; size 0 turns the cache off", () => {
    const cache = new TtlCache<string>(10);
    cache.set("a", "x", 0);
    expect(cache.get("a")).toBeUndefined();
    const off = new TtlCache<string>(0);
    off.set("a", "x", 100);
    expect(off.get("a")).toBeUndefined();
  });

  test("bounded: the least recently used entry goes first", () => {
    const cache = new TtlCache<number>(2);
    cache.set("a", 1, 100);
    cache.set("b", 2, 100);
    cache.get("a"); // a is now more recent than b
    cache.set("c", 3, 100);
    expect(cache.size).toBe(2);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")?.value).toBe(1);
    expect(cache.get("c")?.value).toBe(3);
  });
});
