/**
 * The master's on-demand start of pickup (src/master/on-demand.ts) with a
 * stand-in for the pickup child: the master watches maildrop/ only while
 * pickup is down, and the hand-over when pickup goes down misses no file
 * (the watch is set up again before the look, so a file that came while
 * pickup was leaving, or comes after the look, starts it). The same for
 * the queue manager and incoming/, deferred/ and active/: only a queue ID
 * starts it (a writer's temporary file does not), and a file left in
 * active/ when it went down starts it again. Runs as any user, in a
 * temporary directory.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, mkdirSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Child } from "../../../src/master/children.ts";
import { OnDemandStarter } from "../../../src/master/on-demand.ts";
import { listenUnixSocket } from "../../../src/util/unix-socket.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";
import { waitFor } from "../../helpers/wait.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

/** A pickup (or queue manager) child that only counts its starts; the test says when it goes down. */
function fakePickup(role = "pickup", listenFds: number[] = []) {
  const state = { starts: 0, up: false };
  const child = {
    role,
    listenFds,
    onDemand: true,
    onStartable: undefined as (() => void) | undefined,
    get startable() {
      return !state.up;
    },
    start() {
      state.starts++;
      state.up = true;
    },
    /** It idled out: the master hears it as Child tells it. */
    exit() {
      state.up = false;
      child.onStartable?.();
    },
  };
  return { child, state };
}

describe("the master's watch on maildrop/", () => {
  test("watches only while pickup is down; a file that came meanwhile, or comes after, starts it again", async () => {
    const maildrop = tempDir("ondemand");
    dirs.push(maildrop);
    const { child, state } = fakePickup();
    const starter = new OnDemandStarter({ byConnection: [], byMaildrop: [child as unknown as Child], maildrop, maildropPollMs: 3_600_000 });
    try {
      starter.start();
      expect([state.starts, starter.watchingMaildrop]).toEqual([0, true]);
      // a submission: the watch starts pickup, and the master stops watching
      writeFileSync(join(maildrop, "A1"), "x");
      await waitFor("pickup to start", () => state.starts === 1);
      expect(starter.watchingMaildrop).toBe(false);
      // a file while pickup runs (pickup's own watch would take it) and it leaves before taking it:
      // the master's look when pickup goes down starts it at once
      writeFileSync(join(maildrop, "A2"), "x");
      child.exit();
      expect([state.starts, starter.watchingMaildrop]).toEqual([2, false]);
      // pickup goes down with maildrop/ empty: the master watches again, and the next file starts it
      for (const name of ["A1", "A2"]) unlinkSync(join(maildrop, name));
      child.exit();
      expect([state.starts, starter.watchingMaildrop]).toEqual([2, true]);
      writeFileSync(join(maildrop, "A3"), "x");
      await waitFor("pickup to start again", () => state.starts === 3);
      expect(starter.watchingMaildrop).toBe(false);
    } finally {
      starter.stop();
    }
    expect(starter.watchingMaildrop).toBe(false);
  });
});

describe("the master's watch on the queue manager's queues", () => {
  test("a queue file in incoming/ starts it, a temporary file does not; one left in active/ starts it again", async () => {
    const queue = tempDir("ondemand-queue");
    dirs.push(queue);
    for (const q of ["incoming", "active", "deferred", "public"]) mkdirSync(join(queue, q));
    const fd = listenUnixSocket(join(queue, "public", "qmgr"), 0o666);
    const { child, state } = fakePickup("qmgr", [fd]);
    const qmgr = child as unknown as Child;
    const starter = new OnDemandStarter({ byConnection: [qmgr], byMaildrop: [], maildrop: join(queue, "maildrop"), maildropPollMs: 3_600_000, byQueue: [qmgr], queueDirectory: queue });
    try {
      starter.start();
      expect([state.starts, starter.watchingQueue]).toEqual([0, true]);
      // a writer's temporary file is no work
      writeFileSync(join(queue, "incoming", "t.4242.tmp"), "x");
      starter.lookAtQueue();
      expect(state.starts).toBe(0);
      // its rename to a queue ID is
      renameSync(join(queue, "incoming", "t.4242.tmp"), join(queue, "incoming", "ABCDEF123"));
      await waitFor("the queue manager to start", () => state.starts === 1);
      expect(starter.watchingQueue).toBe(false);
      // it took the file into active/ and went down (killed): the look at its exit starts it again
      renameSync(join(queue, "incoming", "ABCDEF123"), join(queue, "active", "ABCDEF123"));
      child.exit();
      expect([state.starts, starter.watchingQueue]).toEqual([2, false]);
      // empty queues: it stays down, watched; a file released into deferred/ starts it
      unlinkSync(join(queue, "active", "ABCDEF123"));
      child.exit();
      expect([state.starts, starter.watchingQueue]).toEqual([2, true]);
      writeFileSync(join(queue, "deferred", "BCDEF1234"), "x");
      await waitFor("the queue manager to start again", () => state.starts === 3);
    } finally {
      starter.stop();
      closeSync(fd);
    }
    expect(starter.watchingQueue).toBe(false);
  });
});
