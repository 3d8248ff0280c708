/** The one full collection a daemon runs after its start (src/util/start-gc.ts, issue 16: idle memory). */
import { afterEach, expect, spyOn, test } from "bun:test";
import { collectStartGarbageLater, START_GC_DELAY_MS } from "../../../src/util/start-gc.ts";

const spies: { mockRestore(): void }[] = [];
afterEach(() => {
  for (const s of spies.splice(0)) s.mockRestore();
});

test("a full (synchronous) collection runs once, after the delay, from a timer that keeps nothing alive", async () => {
  const gc = spyOn(Bun, "gc");
  spies.push(gc);
  const unref = spyOn(Object.getPrototypeOf(setTimeout(() => {}, 0)), "unref");
  spies.push(unref);
  collectStartGarbageLater(5);
  expect(gc).not.toHaveBeenCalled();
  expect(unref).toHaveBeenCalledTimes(1);
  for (let i = 0; i < 200 && gc.mock.calls.length === 0; i++) await Bun.sleep(5);
  expect(gc.mock.calls).toEqual([[true]]);
  await Bun.sleep(20);
  expect(gc).toHaveBeenCalledTimes(1);
  expect(START_GC_DELAY_MS).toBeGreaterThan(0);
});
