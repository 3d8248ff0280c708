/**
 * A file-backed value that follows its file: loaded on first use, and again
 * when the file's identity or content stamp (device, inode, size, mtime)
 * changes, checked by a stat() before every use (microseconds; Postfix too
 * notices a changed table before serving the next request). This is how a
 * running daemon sees a table that postmap or newaliases rebuilt (a new
 * inode renamed into place) or an edited texthash:/regexp: file, from the
 * very next lookup, without a restart.
 *
 * A failed first load throws TableError (the lookup defers). A failed reload
 * keeps serving the previous version and warns once per change: a table
 * caught half-edited must not turn every lookup into an error.
 */
import { statSync, type Stats } from "node:fs";
import { log } from "../../util/log.ts";
import { TableError, ownerOfUid, type TableOwner } from "./table.ts";

export interface FileStamp {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  uid: number;
}

function stampOf(st: Stats): FileStamp {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, uid: st.uid };
}

function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/** Why a file could not be opened, in Postfix's words ("No such file or directory"). */
export function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  switch (code) {
    case "ENOENT":
      return "No such file or directory";
    case "EACCES":
    case "EPERM":
      return "Permission denied";
    case "EISDIR":
      return "Is a directory";
    case "ENOTDIR":
      return "Not a directory";
    default:
      return (err as Error)?.message ?? String(err);
  }
}

/** Who owns a table's file (a database table's settings file): trusted when root does; a file that cannot be read is a TableError. */
export function fileOwner(spec: string, path: string): TableOwner {
  try {
    return ownerOfUid(statSync(path).uid);
  } catch (err) {
    throw new TableError(spec, `open ${path}: ${describeFsError(err)}`);
  }
}

export class ReloadingFile<T> {
  #value: T | undefined;
  #stamp: FileStamp | undefined;
  #failedStamp: FileStamp | undefined;
  #closed = false;

  /**
   * `load` reads the file (it may throw TableError or any error); `dispose`
   * releases a replaced version (closing a database handle).
   */
  constructor(
    readonly spec: string,
    readonly path: string,
    readonly what: string,
    private readonly load: (path: string, stamp: FileStamp) => T,
    private readonly dispose: (value: T) => void = () => {},
  ) {}

  /** The current version, reloaded first when the file changed. */
  current(): T {
    if (this.#closed) throw new TableError(this.spec, "table is closed");
    let stamp: FileStamp;
    try {
      stamp = stampOf(statSync(this.path));
    } catch (err) {
      if (this.#value !== undefined) return this.#value; // gone for a moment: keep what we have
      throw new TableError(this.spec, `open ${this.what} ${this.path}: ${describeFsError(err)}`);
    }
    if (this.#value !== undefined && this.#stamp && sameStamp(stamp, this.#stamp)) return this.#value;
    try {
      const value = this.load(this.path, stamp);
      if (this.#value !== undefined) this.dispose(this.#value);
      this.#value = value;
      this.#stamp = stamp;
      this.#failedStamp = undefined;
      return value;
    } catch (err) {
      const message = err instanceof TableError ? err.detail : `open ${this.what} ${this.path}: ${describeFsError(err)}`;
      if (this.#value === undefined) throw new TableError(this.spec, message);
      if (!this.#failedStamp || !sameStamp(stamp, this.#failedStamp)) {
        log.warn(`${this.spec}: ${message}; still using the previous version`);
        this.#failedStamp = stamp;
      }
      return this.#value;
    }
  }

  /** The stamp of the loaded version (loading it first). */
  stamp(): FileStamp {
    this.current();
    return this.#stamp!;
  }

  close(): void {
    if (this.#value !== undefined) this.dispose(this.#value);
    this.#value = undefined;
    this.#closed = true;
  }
}
