/**
 * The mail_owner account: looked up in the passwd and group files of the
 * target root, created with Debian's conventions when missing (a system
 * user and a group of the same name, no password, no login shell, the queue
 * directory as home, which is not created), and removed again by
 * `uninstall --purge` when install created it.
 *
 * Runs as root; the account name comes from the configuration and has been
 * checked to be a plain user name. adduser is used where it exists (Debian),
 * useradd otherwise.
 */
import { existsSync, readFileSync } from "node:fs";
import { getpwnam } from "../../util/passwd.ts";
import { ExitError, EX_CANTCREAT, EX_CONFIG } from "../../util/sysexits.ts";

export interface Account {
  uid: number;
  gid: number;
}

export function checkAccountName(name: string): void {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(name)) throw new ExitError(EX_CONFIG, `mail_owner "${name}" is not a valid user name`);
}

/** The user's ids from ROOT/etc/passwd, or undefined. */
export function lookupUser(root: string, name: string): Account | undefined {
  const pw = getpwnam(name, `${root}/etc/passwd`);
  return pw ? { uid: pw.uid, gid: pw.gid } : undefined;
}

export function groupExists(root: string, name: string): boolean {
  try {
    return readFileSync(`${root}/etc/group`, "utf8")
      .split("\n")
      .some((l) => l.split(":")[0] === name);
  } catch {
    return false;
  }
}

const hasAdduser = () => existsSync("/usr/sbin/adduser");

/** The command that creates the user (and its group when `withGroup`). */
export function createUserCommand(name: string, home: string, withGroup: boolean): string[] {
  if (hasAdduser()) {
    return [
      "adduser", "--system", ...(withGroup ? ["--group"] : ["--ingroup", name]),
      "--home", home, "--no-create-home", "--disabled-password", "--shell", "/usr/sbin/nologin",
      "--gecos", "postern mail system", name,
    ];
  }
  return [
    "useradd", "--system", ...(withGroup ? ["--user-group"] : ["--gid", name]),
    "--home-dir", home, "--no-create-home", "--shell", "/usr/sbin/nologin", "--comment", "postern mail system", name,
  ];
}

export function deleteUserCommand(name: string): string[] {
  return hasAdduser() ? ["deluser", "--system", name] : ["userdel", name];
}

export function deleteGroupCommand(name: string): string[] {
  return hasAdduser() ? ["delgroup", "--system", name] : ["groupdel", name];
}

/** Runs an account command; /etc/passwd may be locked by another process for a moment, so a few tries. */
export function runAccountCommand(argv: string[]): void {
  let last = "";
  for (let attempt = 0; attempt < 20; attempt++) {
    const r = Bun.spawnSync(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C" } });
    if (r.exitCode === 0) return;
    last = `${r.stdout.toString()}${r.stderr.toString()}`.trim();
    Bun.sleepSync(250);
  }
  throw new ExitError(EX_CANTCREAT, `${argv.join(" ")} failed: ${last}`);
}
