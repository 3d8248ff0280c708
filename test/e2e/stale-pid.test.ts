/**
 * A pid file left behind (a reboot, a container restart) never passes for a
 * running system, even when its pid now belongs to another live process:
 * only a master that holds the file's lock runs.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { removeDir, run, tempDir } from "../helpers/run.ts";

const IS_ROOT = process.getuid?.() === 0;
const dir = tempDir("postern-stalepid-");
afterAll(async () => {
  await run("postern", ["stop", "-c", dir]);
  removeDir(dir);
});

test.skipIf(IS_ROOT && Bun.spawnSync(["id", "postern"]).exitCode !== 0)("a stale pid file naming a live process: status says not running, start and stop work", async () => {
  writeFileSync(join(dir, "postern.toml"), `queue_directory = "${dir}/q"\nmaillog_file = "${dir}/maillog"\n[services.smtp]\nenable = false\n`);
  expect((await run("postern", ["check", "-c", dir])).code).toBe(0);
  mkdirSync(join(dir, "q", "pid"), { recursive: true });
  // this test's own pid: alive, but not a master holding the lock
  writeFileSync(join(dir, "q", "pid", "master.pid"), `${process.pid}\n`);
  const status = await run("postern", ["status", "-c", dir]);
  expect(status.code).toBe(1);
  expect(status.stderr).toContain("the mail system is not running");
  expect((await run("postern", ["start", "-c", dir])).code).toBe(0);
  const running = await run("postern", ["status", "-c", dir]);
  expect(running.code).toBe(0);
  expect(running.stderr).not.toContain(`PID: ${process.pid}`);
  expect((await run("postern", ["stop", "-c", dir])).code).toBe(0);
  expect((await run("postern", ["status", "-c", dir])).code).toBe(1);
});
