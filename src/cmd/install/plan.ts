/**
 * What `postern install` would change, worked out before anything changes:
 * a list of actions, each with the line it prints and the manifest entries
 * it leaves, plus the conflicts (another program's files where ours go)
 * that stop the install before its first change. An empty list is a
 * complete installation: a second run does nothing.
 *
 * Runs as root (or the invoker under --root). Root never writes through a
 * path it did not check: every existing directory on the way must be root's
 * (or the invoker's) and not writable by everyone without the sticky bit;
 * existing files are looked at with lstat, links are made only where nothing
 * is or where --replace moved the old file aside.
 */
import { closeSync, constants as fsc, copyFileSync, chmodSync, chownSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync, readSync, renameSync, statSync, symlinkSync, type Stats } from "node:fs";
import { dirname, join } from "node:path";
import { QUEUE_DIRECTORIES } from "../../global/queue/names.ts";
import { ensureQueueDirectories } from "../../global/queue/directories.ts";
import { replaceFileDurably } from "../../util/durable-file.ts";
import { ExitError, EX_CANTCREAT } from "../../util/sysexits.ts";
import type { ManifestEntry, Part } from "./manifest.ts";
import { onDisk, type Layout } from "./options.ts";
import type { Account } from "./system-user.ts";

export interface Action {
  /** What it does, for the output ("create directory /etc/postern"). */
  says: string;
  run: () => void | Promise<void>;
  /** Recorded in the manifest once run. */
  entries: ManifestEntry[];
}

/** Suffix of the copy --replace keeps of another program's file. */
export const BACKUP_SUFFIX = ".postern-backup";

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** Byte-for-byte equality, read in chunks (the executable is large). */
export function sameContent(a: string, b: string): boolean {
  let sa: Stats;
  let sb: Stats;
  try {
    sa = statSync(a);
    sb = statSync(b);
  } catch {
    return false;
  }
  if (sa.size !== sb.size) return false;
  const fa = openSync(a, fsc.O_RDONLY);
  const fb = openSync(b, fsc.O_RDONLY);
  try {
    const ba = Buffer.alloc(1 << 20);
    const bb = Buffer.alloc(1 << 20);
    for (let pos = 0; pos < sa.size; ) {
      const na = readSync(fa, ba, 0, ba.length, pos);
      const nb = readSync(fb, bb, 0, bb.length, pos);
      if (na !== nb || na === 0 || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
      pos += na;
    }
    return true;
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

const octal = (mode: number) => mode.toString(8).padStart(4, "0");

export class Planner {
  readonly actions: Action[] = [];
  readonly conflicts: string[] = [];
  readonly #plannedDirs = new Set<string>();
  /** Paths the manifest says install made: ours to update in place. */
  readonly #ours: Set<string>;

  constructor(
    readonly layout: Layout,
    readonly replace: boolean,
    previous: readonly ManifestEntry[],
    /** The mail_owner's ids when known now or once created (read when an action runs). */
    readonly owner: () => Account | undefined,
  ) {
    this.#ours = new Set(previous.flatMap((e) => ("path" in e ? [e.path] : [])));
  }

  disk(path: string): string {
    return onDisk(this.layout, path);
  }

  /** Will exist once the plan has run. */
  willExist(path: string): boolean {
    return this.#plannedDirs.has(path) || existsSync(this.disk(path));
  }

  #chown(path: string): void {
    const acct = this.owner();
    if (acct && process.geteuid?.() === 0) chownSync(path, acct.uid, acct.gid);
  }

  /**
   * The directory and its missing parents; only the last gets `mode` and,
   * with `ownedByMailOwner`, mail_owner as owner. `contents` marks a
   * directory whose contents are postern's (uninstall --purge empties it).
   */
  directory(path: string, mode: number, part: Part, opts: { ownedByMailOwner?: boolean; contents?: boolean } = {}): void {
    const chain: string[] = [];
    const last = (p: string) => p === path;
    for (let p = path; p !== "/" && p !== "."; p = dirname(p)) chain.unshift(p);
    for (const p of chain) {
      if (this.#plannedDirs.has(p)) continue;
      const st = lstatOrUndefined(this.disk(p));
      if (st) {
        // root's link to a directory is one (/sbin -> usr/sbin on a merged /usr, a spool moved to /srv); another user's is not
        const trusted = st.uid === 0 || st.uid === process.geteuid?.();
        const dir = st.isDirectory() || (st.isSymbolicLink() && trusted && statOrUndefined(this.disk(p))?.isDirectory());
        if (!dir) {
          this.conflicts.push(`${this.disk(p)} exists and is not a directory`);
          continue;
        }
        // root writes below it: nobody else may be able to swap what is there (mail_owner's own directory aside)
        const target = statOrUndefined(this.disk(p));
        const ownedByOther = target && target.uid !== 0 && target.uid !== process.geteuid?.();
        const openToAll = target && target.mode & 0o002 && !(target.mode & 0o1000);
        if ((ownedByOther || openToAll) && !(last(p) && opts.ownedByMailOwner)) {
          this.conflicts.push(`${this.disk(p)} is ${openToAll ? "writable by everyone" : `owned by uid ${target.uid}`}: install does not write below a directory another user controls`);
        }
        continue;
      }
      this.#plannedDirs.add(p);
      const m = last(p) ? mode : 0o755;
      const owned = last(p) && opts.ownedByMailOwner;
      const entry: ManifestEntry = last(p) && opts.contents ? { kind: "directory", path: p, part, contents: true } : { kind: "directory", path: p, part };
      this.actions.push({
        says: `create directory ${p} (mode ${octal(m)}${owned ? ", owner mail_owner" : ""})`,
        run: () => {
          mkdirSync(this.disk(p), { mode: m });
          chmodSync(this.disk(p), m);
          if (owned) this.#chown(this.disk(p));
        },
        entries: [entry],
      });
    }
  }

  /** Moves another program's file aside (with --replace) or records the conflict; returns the backup path. */
  #moveAside(path: string, what: string): string | undefined | false {
    const onDiskPath = this.disk(path);
    if (!this.replace) {
      this.conflicts.push(`${onDiskPath} exists and is not postern's ${what}; run with --replace to move it aside (to ${path}${BACKUP_SUFFIX}) and restore it at uninstall`);
      return false;
    }
    const backup = path + BACKUP_SUFFIX;
    if (lstatOrUndefined(this.disk(backup))) {
      this.conflicts.push(`${onDiskPath} exists and its backup ${this.disk(backup)} exists too; move one of them away by hand`);
      return false;
    }
    return backup;
  }

  /** A regular file with this text; rewritten when install made it and the text changed. */
  file(path: string, text: string, mode: number, part: Part): void {
    const onDiskPath = this.disk(path);
    const st = lstatOrUndefined(onDiskPath);
    let backup: string | undefined;
    if (st) {
      if (st.isFile() && readFileSync(onDiskPath, "utf8") === text && (st.mode & 0o7777) === mode) return;
      if (this.#ours.has(path) && st.isFile()) {
        this.actions.push({ says: `update file ${path}`, run: () => this.#write(onDiskPath, text, mode), entries: [] });
        return;
      }
      const moved = this.#moveAside(path, "file");
      if (moved === false) return;
      backup = moved;
    }
    const entry: ManifestEntry = backup ? { kind: "file", path, part, backup } : { kind: "file", path, part };
    this.actions.push({
      says: backup ? `move ${path} to ${backup}, write ${path} (mode ${octal(mode)})` : `write file ${path} (mode ${octal(mode)})`,
      run: () => {
        if (backup) renameSync(onDiskPath, this.disk(backup));
        this.#write(onDiskPath, text, mode);
      },
      entries: [entry],
    });
  }

  #write(onDiskPath: string, text: string, mode: number): void {
    replaceFileDurably(onDiskPath, text, mode);
    chmodSync(onDiskPath, mode);
  }

  /** The executable: a copy of `source` (the running one), replaced when install made it and it differs. */
  executable(path: string, source: string): void {
    const onDiskPath = this.disk(path);
    const st = lstatOrUndefined(onDiskPath);
    let backup: string | undefined;
    if (st) {
      if (st.isFile() && (st.mode & 0o7777) === 0o755 && sameContent(source, onDiskPath)) return;
      if (!(this.#ours.has(path) && st.isFile())) {
        const moved = this.#moveAside(path, "executable");
        if (moved === false) return;
        backup = moved;
      }
    }
    const copy = () => {
      const tmp = join(dirname(onDiskPath), `.postern.${process.pid}.tmp`);
      copyFileSync(source, tmp, fsc.COPYFILE_EXCL);
      chmodSync(tmp, 0o755);
      if (backup) renameSync(onDiskPath, this.disk(backup));
      renameSync(tmp, onDiskPath);
    };
    if (st && !backup) {
      this.actions.push({ says: `update the executable ${path} from ${source}`, run: copy, entries: [] });
      return;
    }
    const entry: ManifestEntry = backup ? { kind: "file", path, part: "program", backup } : { kind: "file", path, part: "program" };
    this.actions.push({
      says: backup ? `move ${path} to ${backup}, copy ${source} to ${path} (mode 0755)` : `copy ${source} to ${path} (mode 0755)`,
      run: copy,
      entries: [entry],
    });
  }

  /** A symbolic link to `target`; another program's file there is a conflict unless --replace. */
  link(path: string, target: string): void {
    const onDiskPath = this.disk(path);
    const st = lstatOrUndefined(onDiskPath);
    let backup: string | undefined;
    if (st) {
      if (st.isSymbolicLink() && readlinkSync(onDiskPath) === target) return;
      const moved = this.#moveAside(path, "link");
      if (moved === false) return;
      backup = moved;
    }
    const entry: ManifestEntry = backup ? { kind: "link", path, target, part: "program", backup } : { kind: "link", path, target, part: "program" };
    this.actions.push({
      says: backup ? `move ${path} to ${backup}, link ${path} -> ${target}` : `link ${path} -> ${target}`,
      run: () => {
        if (backup) renameSync(onDiskPath, this.disk(backup));
        symlinkSync(target, onDiskPath);
      },
      entries: [entry],
    });
  }

  /**
   * The queue directories with Postfix's owners and modes (the code postern
   * check runs); each one missing now is recorded as install's.
   */
  queue(queueDirectory: string, userPlanned: boolean): void {
    const acct = this.owner();
    const missing: string[] = [];
    let repair = false;
    for (const { name, mode, owner } of QUEUE_DIRECTORIES) {
      const path = join(queueDirectory, name);
      const st = this.willExist(queueDirectory) ? lstatOrUndefined(this.disk(path)) : undefined;
      if (!st) {
        missing.push(path);
        continue;
      }
      if ((st.mode & 0o7777) !== mode) repair = true;
      // pid/ is root's (as in Postfix), the others mail_owner's
      if (owner === "root") {
        if (process.geteuid?.() === 0 && (st.uid !== 0 || st.gid !== 0)) repair = true;
      } else if (acct ? st.uid !== acct.uid || st.gid !== acct.gid : userPlanned) repair = true;
    }
    if (!missing.length && !repair) return;
    const privileged = process.geteuid?.() === 0;
    this.actions.push({
      says: `${missing.length ? `create ${missing.length} queue directories in` : "repair owners and modes in"} ${queueDirectory} (owner mail_owner)`,
      run: () => {
        try {
          ensureQueueDirectories(this.disk(queueDirectory), privileged ? this.owner() : undefined);
        } catch (err) {
          throw new ExitError(EX_CANTCREAT, `cannot prepare the queue directory ${queueDirectory}: ${(err as Error).message}`);
        }
      },
      entries: missing.map((path) => ({ kind: "directory", path, part: "queue", contents: true }) as ManifestEntry),
    });
  }
}
