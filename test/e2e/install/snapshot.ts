/**
 * A directory tree as a comparable value: every path under it with its type,
 * mode, owner, size, modification time and link target, so a test can say
 * "nothing changed" or "exactly these paths were added".
 */
import { lstatSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";

export type Snapshot = Map<string, string>;

export function snapshot(dir: string): Snapshot {
  const out: Snapshot = new Map();
  const walk = (rel: string) => {
    const abs = join(dir, rel);
    const st = lstatSync(abs);
    const type = st.isSymbolicLink() ? "l" : st.isDirectory() ? "d" : st.isFile() ? "f" : "?";
    const extra = st.isSymbolicLink() ? `-> ${readlinkSync(abs)}` : st.isFile() ? `${st.size} ${st.mtimeMs}` : "";
    out.set(rel || "/", `${type} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${extra}`);
    if (st.isDirectory()) for (const name of readdirSync(abs).sort()) walk(rel ? `${rel}/${name}` : `/${name}`);
  };
  walk("");
  return out;
}

/** Paths in `after` that are not in `before`. */
export function added(before: Snapshot, after: Snapshot): string[] {
  return [...after.keys()].filter((p) => !before.has(p)).sort();
}
