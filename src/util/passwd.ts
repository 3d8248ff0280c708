/**
 * The user database, read from /etc/passwd and /etc/group (no NSS modules:
 * postern needs local accounts for mail_owner, default_privs and local
 * delivery; LDAP-only users are a known limit).
 *
 * A file's parsed lines are kept and reused while a stat(2) of the path
 * shows the same file (device, inode, size, mtime and ctime): the local
 * delivery agent looks users up several times per message, and a read and
 * parse of the file each time was a tenth of its work (issue 16). useradd,
 * vipw and friends replace the file by rename (a new inode) or write it in
 * place (a new mtime), so a change is seen at the next lookup.
 */
import { readFileSync, statSync } from "node:fs";

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

interface CachedFile {
  /** dev:ino:size:mtime:ctime of the file the lines came from. */
  version: string;
  lines: string[][];
}

const cache = new Map<string, CachedFile>();

/** The file's identity as stat(2) sees it; undefined when it cannot be stat-ed. */
function fileVersion(path: string): string | undefined {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch {
    return undefined;
  }
}

function readLines(path: string): string[][] {
  const version = fileVersion(path);
  if (version === undefined) {
    cache.delete(path);
    return [];
  }
  const cached = cache.get(path);
  if (cached?.version === version) return cached.lines;
  let lines: string[][];
  try {
    lines = readFileSync(path, "utf8")
      .split("\n")
      .filter((l) => l && !l.startsWith("#"))
      .map((l) => l.split(":"));
  } catch {
    cache.delete(path);
    return [];
  }
  // a file changed between the stat and the read gets another version at the next stat
  cache.set(path, { version, lines });
  return lines;
}

function toEntry(f: string[]): PasswdEntry | undefined {
  if (f.length < 7) return undefined;
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return undefined;
  return { name: f[0]!, uid, gid, gecos: f[4]!, home: f[5]!, shell: f[6]! };
}

export function getpwnam(name: string, file = "/etc/passwd"): PasswdEntry | undefined {
  for (const f of readLines(file)) if (f[0] === name) return toEntry(f);
  return undefined;
}

export function getpwuid(uid: number, file = "/etc/passwd"): PasswdEntry | undefined {
  for (const f of readLines(file)) if (Number(f[2]) === uid) return toEntry(f);
  return undefined;
}

/** Supplementary group ids of `user` (from /etc/group), plus its primary group. */
export function groupsOf(user: string, primaryGid: number, file = "/etc/group"): number[] {
  const out = new Set([primaryGid]);
  for (const f of readLines(file)) {
    if (f.length >= 4 && f[3]!.split(",").includes(user)) out.add(Number(f[2]));
  }
  return [...out];
}

/** The gid of group `name` (from /etc/group), or undefined. */
export function getgrnam(name: string, file = "/etc/group"): number | undefined {
  for (const f of readLines(file)) if (f[0] === name && f.length >= 3 && /^\d+$/.test(f[2]!)) return Number(f[2]);
  return undefined;
}
