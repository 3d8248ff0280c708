/**
 * The user database, read from /etc/passwd and /etc/group (no NSS modules:
 * postern needs local accounts for mail_owner, default_privs and local
 * delivery; LDAP-only users are a known limit).
 */
import { readFileSync } from "node:fs";

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

function readLines(path: string): string[][] {
  try {
    return readFileSync(path, "utf8")
      .split("\n")
      .filter((l) => l && !l.startsWith("#"))
      .map((l) => l.split(":"));
  } catch {
    return [];
  }
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
