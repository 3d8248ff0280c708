/**
 * Writing hash: indexes for postmap and postalias: a full build from a
 * source file (atomic replace), an incremental add (postmap -i) and deletes
 * (postmap -d) on the live index, with Postfix's rules for who writes and
 * with which mode:
 *
 * - as root, without -o, the work runs with the source file's owner and
 *   group as effective ids (so root never writes where only the file's owner
 *   should, and the index gets that owner and group);
 * - a new index gets mode 0644 restricted to the source's group and other
 *   read bits (0644 with -p); a rebuilt index keeps its old mode.
 *
 * Runs as the invoking user (root or the table's owner); the source is
 * untrusted text.
 */
import { closeSync, existsSync, openSync, readFileSync, statSync, type Stats } from "node:fs";
import { IndexFile, indexPathOf, writeIndexFile } from "../../global/tables/hash-index.ts";
import { describeFsError } from "../../global/tables/reloading-file.ts";
import type { SourceEntry } from "../../global/tables/postmap-format.ts";
import { log } from "../../util/log.ts";
import { ExitError } from "../../util/sysexits.ts";

export type DuplicatePolicy = "warn" | "replace" | "ignore";

export interface BuildOptions {
  /** -o: stay root instead of taking the source owner's ids. */
  keepRoot: boolean;
  /** -p: mode 0644 for new files instead of following the source. */
  defaultMode: boolean;
  /** -f off: keys fold to lower case. */
  fold: boolean;
  /** -r replace, -w ignore, else warn and keep the first. */
  duplicates: DuplicatePolicy;
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** Runs `fn` with the effective ids of `source`'s owner when root and not -o (Postfix's set_eugid). */
export function asSourceOwner<T>(source: string, opts: BuildOptions, fn: () => T): T {
  const st = statOrUndefined(source);
  if (opts.keepRoot || !st || process.geteuid?.() !== 0) return fn();
  const savedGroups = process.getgroups?.() ?? [];
  const savedEgid = process.getegid!();
  process.setgroups!([st.gid]);
  process.setegid!(st.gid);
  process.seteuid!(st.uid);
  try {
    return fn();
  } finally {
    process.seteuid!(0);
    process.setegid!(savedEgid);
    process.setgroups!(savedGroups);
  }
}

/** The mode a new or rebuilt index gets. */
export function indexMode(source: Stats | undefined, existing: Stats | undefined, defaultMode: boolean): number {
  if (existing && !defaultMode) return existing.mode & 0o7777;
  if (defaultMode || !source) return 0o644;
  return 0o600 | (source.mode & 0o044);
}

export function readSource(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new ExitError(1, `open ${path}: ${describeFsError(err)}`);
  }
}

/**
 * Applies folding and the duplicate policy to parsed entries, in order;
 * `where` names the source in warnings.
 */
export function uniqueEntries(entries: readonly SourceEntry[], opts: BuildOptions, where: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const e of entries) {
    const key = opts.fold ? e.key.toLowerCase() : e.key;
    if (map.has(key)) {
      if (opts.duplicates === "replace") map.set(key, e.value);
      else if (opts.duplicates === "warn") log.warn(`${where}, line ${e.line}: duplicate entry: "${key}"`);
      continue;
    }
    map.set(key, e.value);
  }
  return map;
}

/** Builds SOURCE.sqlite from `entries`, replacing any old index atomically. */
export function buildIndex(source: string, entries: Map<string, string>, opts: BuildOptions): void {
  const path = indexPathOf(source);
  const existing = statOrUndefined(path);
  const mode = indexMode(statOrUndefined(source), existing, opts.defaultMode);
  // Still root (with -o): give a rebuilt index back to its previous owner, as an in-place rewrite would.
  const keepOwner = existing && process.geteuid?.() === 0 ? { uid: existing.uid, gid: existing.gid } : {};
  try {
    writeIndexFile(path, entries, { mode, ...keepOwner });
  } catch (err) {
    throw new ExitError(1, `open database ${path}: ${describeFsError(err)}`);
  }
}

/** postmap -i: adds entries to the live index (creating it when missing). */
export function addToIndex(source: string, entries: readonly SourceEntry[], opts: BuildOptions, sentinel?: [string, string]): void {
  const path = indexPathOf(source);
  if (!existsSync(path)) {
    const map = uniqueEntries(entries, opts, "stdin");
    if (sentinel) map.set(sentinel[0], sentinel[1]);
    buildIndex(source, map, opts);
    return;
  }
  changeIndex(path, (index) =>
    index.update((edit) => {
      for (const e of entries) {
        const key = opts.fold ? e.key.toLowerCase() : e.key;
        if (edit.get(key) !== undefined && opts.duplicates !== "replace") {
          if (opts.duplicates === "warn") log.warn(`${path}: duplicate entry: "${key}"`);
          continue;
        }
        edit.put(key, e.value);
      }
      if (sentinel) edit.put(sentinel[0], sentinel[1]);
    }),
  );
}

/** postmap -d: removes each key once; returns how many were found. */
export function deleteFromIndex(source: string, keys: readonly string[], opts: BuildOptions): number {
  const path = indexPathOf(source);
  return changeIndex(path, (index) => index.update((edit) => keys.filter((k) => edit.delete(opts.fold ? k.toLowerCase() : k)).length));
}

/** Runs a change on the live index, turning SQLite's complaints into a fatal error that names the file. */
function changeIndex<T>(path: string, change: (index: IndexFile) => T): T {
  const index = openForUpdate(path);
  try {
    return change(index);
  } catch (err) {
    if (err instanceof ExitError) throw err;
    throw new ExitError(1, `update database ${path}: ${(err as Error).message}`);
  } finally {
    index.close();
  }
}

function openForUpdate(path: string): IndexFile {
  if (!existsSync(path)) throw new ExitError(1, `open database ${path}: No such file or directory`);
  try {
    // open(2) with the effective ids tells a permission problem plainly, before SQLite does
    closeSync(openSync(path, "r+"));
    return IndexFile.open(path, true);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ExitError(1, code ? `open database ${path}: ${describeFsError(err)}` : (err as Error).message);
  }
}
