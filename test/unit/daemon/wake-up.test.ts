/**
 * The daemon wake-up loop (src/daemon/wake-up.ts) that pickup uses and the
 * queue manager can: triggers coalesce, passes never overlap, a trigger
 * during a pass makes exactly one more, the timer and the watched directory
 * wake it, a failing pass does not end it, and stop() waits for the pass in
 * progress and allows no other. Passes are held open by the test, so nothing
 * depends on timing.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { WakeUp } from "../../../src/daemon/wake-up.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";
import { waitFor } from "../../helpers/wait.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

/** Lets the event loop turn `n` times (pending setImmediate callbacks run). */
async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** A pass that records how many run at once and waits until the test releases it. */
function heldPasses() {
  let active = 0;
  const state = { calls: 0, maxActive: 0, release: [] as Array<() => void> };
  const pass = () => {
    state.calls++;
    active++;
    state.maxActive = Math.max(state.maxActive, active);
    return new Promise<void>((resolve) =>
      state.release.push(() => {
        active--;
        resolve();
      }),
    );
  };
  const releaseNext = async (call: number) => {
    await waitFor(`pass ${call}`, () => state.release.length >= call);
    state.release[call - 1]!();
    await turns();
  };
  return { state, pass, releaseNext };
}

describe("WakeUp", () => {
  test("triggers before a pass starts make one pass", async () => {
    let calls = 0;
    const w = new WakeUp({ pass: () => void calls++, pollMs: 3_600_000 });
    w.start(false);
    for (let i = 0; i < 10; i++) w.trigger();
    await turns();
    expect(calls).toBe(1);
    await w.stop();
  });

  test("triggers during a pass make exactly one more pass, never two at once", async () => {
    const { state, pass, releaseNext } = heldPasses();
    const w = new WakeUp({ pass, pollMs: 3_600_000 });
    w.start();
    await waitFor("the first pass", () => state.calls === 1);
    for (let i = 0; i < 10; i++) w.trigger();
    await turns();
    expect(state.calls).toBe(1);
    await releaseNext(1);
    await waitFor("the second pass", () => state.calls === 2);
    await releaseNext(2);
    expect(state.calls).toBe(2);
    expect(state.maxActive).toBe(1);
    await w.stop();
  });

  test("a pass that triggers again before its first await gets one more pass", async () => {
    const { state, pass, releaseNext } = heldPasses();
    const w = new WakeUp({
      pass: () => {
        const p = pass();
        // as the queue manager's scan does when a message finishes inside it
        if (state.calls === 1) w.trigger();
        return p;
      },
      pollMs: 3_600_000,
    });
    w.start();
    await waitFor("the first pass", () => state.calls === 1);
    await turns();
    await releaseNext(1);
    await waitFor("the second pass", () => state.calls === 2);
    await releaseNext(2);
    expect(state.calls).toBe(2);
    await w.stop();
  });

  test("the poll timer wakes it without any other trigger", async () => {
    let calls = 0;
    const w = new WakeUp({ pass: () => void calls++, pollMs: 5 });
    w.start(false);
    await waitFor("three timed passes", () => calls >= 3);
    await w.stop();
  });

  test("a change in the watched directory wakes it", async () => {
    const dir = tempDir("postern-wake-");
    dirs.push(dir);
    let calls = 0;
    const w = new WakeUp({ pass: () => void calls++, pollMs: 3_600_000, watch: dir });
    w.start(false);
    await turns();
    expect(calls).toBe(0);
    writeFileSync(join(dir, "new"), "x");
    await waitFor("a pass after the change", () => calls >= 1);
    await w.stop();
  });

  test("a pass that throws is reported and the next trigger runs again", async () => {
    const errors: string[] = [];
    let calls = 0;
    const w = new WakeUp({
      pass: () => {
        calls++;
        throw new Error(`broken ${calls}`);
      },
      pollMs: 3_600_000,
      failed: (err) => errors.push(err.message),
    });
    w.start();
    await waitFor("the first failure", () => errors.length === 1);
    w.trigger();
    await waitFor("the second failure", () => errors.length === 2);
    expect(errors).toEqual(["broken 1", "broken 2"]);
    await w.stop();
  });

  test("stop() waits for the pass in progress and no pass follows, even when triggered", async () => {
    const { state, pass } = heldPasses();
    const dir = tempDir("postern-wake-");
    dirs.push(dir);
    const w = new WakeUp({ pass, pollMs: 5, watch: dir });
    w.start();
    await waitFor("the first pass", () => state.calls === 1);
    w.trigger();
    let stopped = false;
    const stopping = w.stop().then(() => (stopped = true));
    await turns();
    expect(stopped).toBe(false);
    state.release[0]!();
    await stopping;
    writeFileSync(join(dir, "after-stop"), "x");
    w.trigger();
    w.start();
    await turns(20);
    expect(state.calls).toBe(1);
  });
  test("with named, a change the daemon declines makes no pass, one it accepts a pass that is not full", async () => {
    const dir = tempDir("postern-wake-");
    dirs.push(dir);
    const passes: boolean[] = [];
    const seen: string[] = [];
    const w = new WakeUp({
      pass: (full) => void passes.push(full),
      pollMs: 3_600_000,
      watch: dir,
      named: (name) => {
        seen.push(name);
        return !name.startsWith("t.");
      },
    });
    w.start(false);
    writeFileSync(join(dir, "t.1"), "x");
    await waitFor("the temporary file's change", () => seen.includes("t.1"));
    await turns();
    expect(passes).toEqual([]);
    renameSync(join(dir, "t.1"), join(dir, "ABCDEF1"));
    await waitFor("a pass for the named file", () => passes.length === 1);
    expect(passes).toEqual([false]);
    w.trigger();
    await waitFor("a full pass on trigger()", () => passes.length === 2);
    expect(passes[1]).toBe(true);
    await w.stop();
  });

  test("with arrivals, only an entry renamed in wakes it: not a file made, written or removed there", async () => {
    const dir = tempDir("postern-wake-");
    dirs.push(dir);
    const seen: string[] = [];
    let passes = 0;
    const w = new WakeUp({
      pass: () => void passes++,
      pollMs: 3_600_000,
      watch: dir,
      arrivals: {},
      named: (name) => {
        seen.push(name);
        return true;
      },
    });
    w.start(false);
    writeFileSync(join(dir, "t.1"), "x");
    renameSync(join(dir, "t.1"), join(dir, "ABCDEF1"));
    unlinkSync(join(dir, "ABCDEF1"));
    // the kernel reports in order: once the second rename is seen, nothing else of the first file is on its way
    writeFileSync(join(dir, "t.2"), "x");
    renameSync(join(dir, "t.2"), join(dir, "ABCDEF2"));
    await waitFor("the second rename", () => seen.includes("ABCDEF2"));
    await turns();
    expect(seen).toEqual(["ABCDEF1", "ABCDEF2"]);
    expect(passes).toBeGreaterThanOrEqual(1);
    await w.stop();
  });

  test("with arrivals and closeWrite, a file written in place wakes it too; stop() ends the watch", async () => {
    const dir = tempDir("postern-wake-");
    dirs.push(dir);
    const seen: string[] = [];
    const w = new WakeUp({ pass: () => undefined, pollMs: 3_600_000, watch: dir, arrivals: { closeWrite: true }, named: (name) => {
        seen.push(name);
        return true;
      },
    });
    w.start(false);
    writeFileSync(join(dir, "ABCDEF3"), "x");
    await waitFor("the file written in place", () => seen.includes("ABCDEF3"));
    expect(seen).toEqual(["ABCDEF3"]);
    await w.stop();
    writeFileSync(join(dir, "ABCDEF4"), "x");
    await turns(20);
    expect(seen).toEqual(["ABCDEF3"]);
  });

  test("a full request during a pass makes the next pass full", async () => {
    const { state, pass, releaseNext } = heldPasses();
    const fulls: boolean[] = [];
    const recordFull = (full: boolean) => {
      fulls.push(full);
      return pass();
    };
    const w = new WakeUp({ pass: recordFull, pollMs: 3_600_000, named: () => true });
    w.start();
    await waitFor("the first pass", () => state.calls === 1);
    w.trigger();
    await releaseNext(1);
    await waitFor("the second pass", () => state.calls === 2);
    await releaseNext(2);
    expect(fulls).toEqual([true, true]);
    await w.stop();
  });
});
