/**
 * A small tmpfs for tests that fill a file system: mounted on a fresh
 * temporary directory (root only), unmounted and removed by `release`.
 * `mountSmallFs` returns undefined with the reason when it cannot mount, so
 * a test can skip with a clear message.
 */
import { rmdirSync } from "node:fs";
import { tempDir } from "./run.ts";

export interface SmallFs {
  dir: string;
  release(): void;
}

export const CANNOT_MOUNT = process.getuid?.() !== 0 ? "needs root to mount a small tmpfs" : undefined;

/** Mounts a tmpfs of `size` (mount's syntax: "2m") on `on` (an empty directory), or on a new temporary directory. */
export function mountSmallFs(size: string, on?: string): SmallFs {
  if (CANNOT_MOUNT) throw new Error(CANNOT_MOUNT);
  const dir = on ?? tempDir("postern-smallfs-");
  const r = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", `size=${size},mode=0755`, "tmpfs", dir], { stderr: "pipe" });
  if (r.exitCode !== 0) {
    if (!on) rmdirSync(dir);
    throw new Error(`cannot mount a tmpfs on ${dir}: ${r.stderr.toString().trim()}`);
  }
  let mounted = true;
  return {
    dir,
    release() {
      if (!mounted) return;
      mounted = false;
      if (Bun.spawnSync(["umount", dir]).exitCode !== 0) Bun.spawnSync(["umount", "-l", dir]);
      if (on) return;
      try {
        rmdirSync(dir);
      } catch {}
    },
  };
}
