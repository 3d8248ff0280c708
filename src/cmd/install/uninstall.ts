/**
 * `postern uninstall`: removes what `postern install` made, as its manifest
 * records it, and nothing else; puts back what --replace moved aside. The
 * configuration, the aliases, the queue, the data directory and mail_owner
 * stay unless --purge.
 *
 * Runs as root (or the invoker under --root). The manifest is trusted only
 * after readManifest's checks (root's file, writable by nobody else); a
 * link is removed only while it still points at postern, a directory only
 * when empty, except the queue and data directories with --purge, whose
 * contents are postern's and are removed with their owner's ids (see
 * removeTree). Refuses while the mail system runs.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync, type Stats } from "node:fs";
import { dirname } from "node:path";
import { loadConfig } from "../../global/config/config.ts";
import { runningMasterPid } from "../../global/system/master-pid.ts";
import { log } from "../../util/log.ts";
import { writeStdout } from "../../util/stdio.ts";
import { ExitError, EX_NOPERM, EX_TEMPFAIL } from "../../util/sysexits.ts";
import { readManifest, writeManifest, type ManifestEntry } from "./manifest.ts";
import { layoutFor, onDisk, parseInstallArgs } from "./options.ts";
import { deleteGroupCommand, deleteUserCommand, groupExists, lookupUser, runAccountCommand } from "./system-user.ts";

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** The role's main, given the command names the executable answers to (src/roles.ts). */
/**
 * Removes a directory of postern's data (a queue directory, data_directory):
 * its contents with the effective ids of the directory's owner, so root never
 * walks a tree mail_owner can change under it, then the empty directory as
 * root.
 */
function removeTree(path: string, st: Stats): void {
  const asOwner = st.uid !== 0 && process.geteuid?.() === 0;
  const savedGroups = process.getgroups?.() ?? [];
  const savedEgid = process.getegid?.() ?? 0;
  const savedCwd = process.cwd();
  // entered as root, so the owner needs no search right on the directories above (a 0700 --root)
  process.chdir(path);
  try {
    const here = statSync(".");
    if (here.ino !== st.ino || here.dev !== st.dev) throw new Error(`${path} changed while it was being removed`);
    if (asOwner) {
      process.setgroups!([st.gid]);
      process.setegid!(st.gid);
      process.seteuid!(st.uid);
    }
    try {
      for (const name of readdirSync(".")) rmSync(name, { recursive: true, force: true });
    } finally {
      if (asOwner) {
        process.seteuid!(0);
        process.setegid!(savedEgid);
        process.setgroups!(savedGroups);
      }
    }
  } finally {
    process.chdir(savedCwd);
  }
  rmdirSync(path);
}

export function uninstallMain(linkNames: readonly string[]): (args: string[]) => Promise<number> {
  return (args) => uninstall(args, linkNames);
}

async function uninstall(args: string[], linkNames: readonly string[]): Promise<number> {
  const opts = parseInstallArgs(args, true);
  const layout = layoutFor(opts, linkNames);
  if (!opts.root && !opts.dryRun && process.geteuid?.() !== 0) {
    throw new ExitError(EX_NOPERM, "postern uninstall must run as root (or with --root DIR, or --dry-run)");
  }
  const disk = (p: string) => onDisk(layout, p);
  const where = opts.root ? ` under ${opts.root}` : "";
  const manifest = readManifest(disk(layout.manifest));
  if (!manifest) {
    writeStdout(`postern uninstall: nothing to remove${where}: no install manifest at ${layout.manifest}\n`);
    return 0;
  }
  if (!opts.root && existsSync(disk(layout.configFile))) {
    const pid = runningMasterPid(loadConfig(disk(layout.configFile)));
    if (pid !== undefined) throw new ExitError(EX_TEMPFAIL, `the mail system is running (PID ${pid}): stop it first (postern stop, or systemctl stop postern)`);
  }

  const say = (text: string) => writeStdout(`${opts.dryRun ? "would " : ""}${text}\n`);
  const act = (fn: () => void) => {
    if (!opts.dryRun) fn();
  };
  const kept: ManifestEntry[] = [];
  const restore = (e: { path: string; backup?: string }) => {
    if (!e.backup || !lstatOrUndefined(disk(e.backup))) return;
    if (lstatOrUndefined(disk(e.path)) && !opts.dryRun) {
      log.warn(`${e.path} exists again: the backup ${e.backup} stays where it is`);
      return;
    }
    say(`restore ${e.path} from ${e.backup}`);
    act(() => renameSync(disk(e.backup!), disk(e.path)));
  };

  // the manifest sits in the configuration directory, which --purge may remove; what stays is written back at the end
  if (!opts.dryRun && opts.purge) unlinkSync(disk(layout.manifest));
  try {
    for (const e of [...manifest.entries].reverse()) {
      if (e.part !== "program" && !opts.purge) {
        kept.unshift(e);
        continue;
      }
      switch (e.kind) {
        case "file": {
          const st = lstatOrUndefined(disk(e.path));
          if (st && !st.isFile()) {
            log.warn(`${e.path} is no longer a regular file: left alone`);
            break;
          }
          if (st) {
            say(`remove ${e.path}`);
            act(() => unlinkSync(disk(e.path)));
          }
          restore(e);
          break;
        }
        case "link": {
          const st = lstatOrUndefined(disk(e.path));
          if (st?.isSymbolicLink() && readlinkSync(disk(e.path)) === e.target) {
            say(`remove the link ${e.path}`);
            act(() => unlinkSync(disk(e.path)));
          } else if (st) {
            log.warn(`${e.path} no longer links to ${e.target}: left alone`);
            break;
          }
          restore(e);
          break;
        }
        case "directory": {
          const st = lstatOrUndefined(disk(e.path));
          if (!st) break;
          if (!st.isDirectory()) {
            log.warn(`${e.path} is no longer a directory: left alone`);
            break;
          }
          if (e.contents && opts.purge) {
            say(`remove ${e.path} and its contents`);
            act(() => removeTree(disk(e.path), st));
            break;
          }
          say(`remove the directory ${e.path}`);
          if (opts.dryRun) break;
          try {
            rmdirSync(disk(e.path));
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== "ENOTEMPTY" && (err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
            log.warn(`${e.path} is not empty: left in place`);
            kept.unshift(e);
          }
          break;
        }
        case "user":
          if (e.simulated || opts.root) {
            say(`forget the system user ${e.name} recorded for the target system`);
          } else if (lookupUser("", e.name)) {
            const command = deleteUserCommand(e.name);
            say(`remove the system user ${e.name}: ${command.join(" ")}`);
            act(() => runAccountCommand(command));
          }
          break;
        case "group":
          if (e.simulated || opts.root) break;
          if (groupExists("", e.name)) {
            const command = deleteGroupCommand(e.name);
            say(`remove the group ${e.name}: ${command.join(" ")}`);
            act(() => runAccountCommand(command));
          }
          break;
      }
    }
  } finally {
    if (!opts.dryRun && kept.length) {
      mkdirSync(dirname(disk(layout.manifest)), { recursive: true, mode: 0o755 });
      writeManifest(disk(layout.manifest), { version: 1, entries: kept });
    } else if (!opts.dryRun && existsSync(disk(layout.manifest))) {
      unlinkSync(disk(layout.manifest));
    }
  }
  if (opts.dryRun) {
    writeStdout(`postern uninstall${where}: --dry-run: nothing was changed\n`);
    return 0;
  }
  if (kept.length && !opts.purge) {
    writeStdout(`postern uninstall: the configuration and the queue stay${where}; postern uninstall --purge removes them too\n`);
  } else {
    writeStdout(`postern uninstall: done${where}\n`);
  }
  return 0;
}
