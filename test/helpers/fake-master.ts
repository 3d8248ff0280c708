/**
 * Makes a queue look as if a master runs on it, for tests of the commands
 * that ask: the pid file names this test process and is flock-ed, as the
 * real master keeps it (src/global/system/master-pid.ts).
 */
import { closeSync, openSync, unlinkSync, writeSync, constants as fsc } from "node:fs";
import { join } from "node:path";
import { tryKernelLock } from "../../src/util/kernel-lock.ts";

/** Returns a function that ends the pretence (unlocks and removes the file). */
export function fakeRunningMaster(queueDirectory: string): () => void {
  const path = join(queueDirectory, "pid", "master.pid");
  const fd = openSync(path, fsc.O_RDWR | fsc.O_CREAT | fsc.O_TRUNC, 0o644);
  writeSync(fd, `${process.pid}\n`);
  const lock = tryKernelLock(fd, "flock");
  if (!lock.ok) throw new Error(`cannot lock ${path}: ${lock.message}`);
  return () => {
    try {
      unlinkSync(path);
    } catch {}
    closeSync(fd);
  };
}
