/**
 * The users a benchmark needs, created with useradd and removed with
 * userdel when the run ends: the submitter and recipient (a normal user
 * whose home, and so whose Maildirs, live in the run's temp directory) and
 * postern's mail_owner (a system user without a home).
 *
 * Runs as root. A user left behind by a killed run carries our GECOS mark
 * and is replaced; an unmarked user with the same name is never touched.
 */
import { chownSync, mkdirSync } from "node:fs";
import { onCleanup } from "./cleanup.ts";
import { mustRun } from "./proc.ts";

const GECOS = "postern bench user";

export interface BenchUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Creates `name` (replacing a stale bench user of that name) and registers its removal. */
export function createUser(name: string, opts: { home?: string; system?: boolean }): BenchUser {
  const existing = passwdEntry(name);
  if (existing) {
    if (existing.gecos !== GECOS) throw new Error(`User "${name}" exists and was not made by the benchmark: remove it or pick another name`);
    removeUser(name);
  }
  const args = ["useradd", "--comment", GECOS, "--shell", "/usr/sbin/nologin", "--user-group", "--no-log-init"];
  if (opts.system) args.push("--system");
  args.push("--no-create-home", "--home-dir", opts.home ?? "/nonexistent", name);
  mustRun(args);
  onCleanup(`remove user ${name}`, () => removeUser(name));
  const entry = passwdEntry(name);
  if (!entry) throw new Error(`useradd did not create "${name}"`);
  if (opts.home) {
    mkdirSync(opts.home, { recursive: true, mode: 0o755 });
    chownSync(opts.home, entry.uid, entry.gid);
  }
  return { name, uid: entry.uid, gid: entry.gid, home: entry.home };
}

function removeUser(name: string): void {
  if (!passwdEntry(name)) return;
  mustRun(["userdel", name]);
}

function passwdEntry(name: string): { uid: number; gid: number; gecos: string; home: string } | undefined {
  const r = Bun.spawnSync(["getent", "passwd", name], { stdout: "pipe", stderr: "ignore" });
  if (r.exitCode !== 0) return undefined;
  const [, , uid, gid, gecos, home] = r.stdout.toString().trim().split(":");
  return { uid: Number(uid), gid: Number(gid), gecos: gecos ?? "", home: home ?? "" };
}
