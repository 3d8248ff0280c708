/**
 * IdleExit (src/daemon/idle-exit.ts): a service started on demand leaves
 * once nothing kept it busy and no work was done for max_idle; a
 * connection or request in progress holds it, a pass that found nothing
 * does not restart the countdown, cancel() ends it for good.
 */
import { describe, expect, test } from "bun:test";
import { IdleExit } from "../../../src/daemon/idle-exit.ts";
import { waitFor } from "../../helpers/wait.ts";

describe("IdleExit", () => {
  test("fires once, max_idle after the start when nothing happens", async () => {
    let fired = 0;
    const started = Date.now();
    new IdleExit(() => 30, () => fired++);
    await waitFor("the idle exit", () => fired === 1, 5000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(29);
    await Bun.sleep(60);
    expect(fired).toBe(1);
  });

  test("never fires while something is busy; counts from the end of the work", async () => {
    let fired = 0;
    const idle = new IdleExit(() => 30, () => fired++);
    idle.begin();
    idle.begin();
    await Bun.sleep(80);
    idle.end();
    await Bun.sleep(80);
    expect(fired).toBe(0);
    const ended = Date.now();
    idle.end();
    await waitFor("the idle exit", () => fired === 1, 5000);
    expect(Date.now() - ended).toBeGreaterThanOrEqual(29);
  });

  test("work that found nothing does not hold it off", async () => {
    let fired = 0;
    const idle = new IdleExit(() => 60, () => fired++);
    const started = Date.now();
    // an empty pass every 10 ms, as pickup's poll would do
    const timer = setInterval(() => {
      idle.begin();
      idle.end(false);
    }, 10);
    try {
      await waitFor("the idle exit", () => fired === 1, 5000);
    } finally {
      clearInterval(timer);
    }
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test("cancel() stops it for good; end() without begin() is a bug", async () => {
    let fired = 0;
    const idle = new IdleExit(() => 10, () => fired++);
    idle.cancel();
    await Bun.sleep(40);
    expect(fired).toBe(0);
    expect(() => idle.end()).toThrow("without begin");
  });
});
