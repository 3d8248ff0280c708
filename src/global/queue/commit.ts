/**
 * Creating a queue file durably (docs/queue-file.md, "Commit"): write under a temporary
 * name, fsync, rename to the queue ID, fsync the directory. Only then may
 * sendmail exit 0 or smtpd answer 250.
 *
 * A user's sendmail cannot open maildrop/ (mode 3733, not readable) to fsync
 * it; it fsyncs the file again after the rename instead, which commits the
 * rename on journaling file systems (the rename changes the file's ctime in
 * the same transaction). docs/queue-file.md says so.
 *
 * Every byte is written or the commit fails (a short write on a full file
 * system is an error, util/durable-file.ts), and a failed commit removes its
 * temporary file; the caller then answers with a temporary error (smtpd 451,
 * sendmail exit 75, local forwarding defers the recipient).
 */
import { closeSync, fstatSync, fsyncSync, openSync, renameSync, unlinkSync, constants as fsc } from "node:fs";
// for the thread pool's open (sendmail, which commits synchronously, never calls it)
import * as nodeFs from "node:fs";
import { join } from "node:path";
import { fsyncInPool, writeFully, type SyncWriter } from "../../util/durable-file.ts";
import { queueIdFor } from "./names.ts";

function temporaryName(dir: string): string {
  return join(dir, `t.${process.pid}.${Math.random().toString(36).slice(2, 10)}`);
}

function microseconds(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000) % 1_000_000;
}

/**
 * The queue directory opened for its fsync; undefined when this user may not
 * open it (a user's sendmail and maildrop/): the file's own fsync after the
 * rename commits it then (see above). Any other failure fails the commit.
 * Both forms of the commit ask here, so they agree on when the fallback applies.
 */
function openDirectoryToSync(dir: string): number | undefined {
  try {
    return openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EACCES" && code !== "EPERM") throw err;
    return undefined;
  }
}

function syncDirectoryOrFile(dir: string, fd: number): void {
  const dirFd = openDirectoryToSync(dir);
  if (dirFd === undefined) return fsyncSync(fd);
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/**
 * Writes `data` as a new queue file in `dir` and returns its queue ID.
 * `build` receives the ID first, for content that embeds it.
 */
export function commitQueueFileSync(dir: string, build: (queueId: string) => Uint8Array, mode = 0o600, write?: SyncWriter): string {
  const tmp = temporaryName(dir);
  const fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode);
  let renamed = false;
  try {
    const id = queueIdFor(fstatSync(fd, { bigint: true }).ino, microseconds());
    const data = build(id);
    writeFully(fd, data, null, write);
    fsyncSync(fd);
    const final = join(dir, id);
    renameSync(tmp, final);
    renamed = true;
    syncDirectoryOrFile(dir, fd);
    return id;
  } catch (err) {
    if (!renamed) {
      try {
        unlinkSync(tmp);
      } catch {}
    }
    throw err;
  } finally {
    closeSync(fd);
  }
}

/** open(2) in the runtime's thread pool. */
function openInPool(path: string, flags: number, mode: number): Promise<number> {
  return new Promise((resolve, reject) => nodeFs.open(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
}

/**
 * Group commit of one directory's fsync: the commits into a directory share
 * its fsyncs, and each waits for one that *started after* its own rename
 * (never for one already running, which may have missed its entry). With
 * one fsync running, every commit that arrives meanwhile joins the single
 * fsync that starts when it ends: smtpd's sessions then make one directory
 * fsync per batch instead of one per message, and no commit is acknowledged
 * before its directory entry is on disk. A failed fsync fails every commit
 * that waited for it.
 */
export class DirectorySync {
  #running: Promise<boolean> | undefined;
  #next: Promise<boolean> | undefined;
  /** `syncOnce`: one fsync of the directory; false when it cannot be opened (the caller syncs its file). */
  constructor(private readonly syncOnce: () => Promise<boolean>) {}

  /** Resolves once an fsync that started after this call has completed (true), or false (see above). */
  after(): Promise<boolean> {
    const running = this.#running;
    if (!running) return this.#start();
    this.#next ??= running.then(
      () => this.#startNext(),
      () => this.#startNext(),
    );
    return this.#next;
  }

  #startNext(): Promise<boolean> {
    this.#next = undefined;
    return this.#start();
  }

  #start(): Promise<boolean> {
    const sync = this.syncOnce();
    this.#running = sync;
    const clear = () => {
      if (this.#running === sync) this.#running = undefined;
    };
    sync.then(clear, clear);
    return sync;
  }
}

/** The group commit of each queue directory this process commits into (a handful: incoming/, maildrop/). */
const directorySyncs = new Map<string, DirectorySync>();

function directorySync(dir: string): DirectorySync {
  let group = directorySyncs.get(dir);
  if (!group) {
    // bounded: a process commits into a few fixed directories; a stray caller cannot grow this
    if (directorySyncs.size >= 64) directorySyncs.clear();
    group = new DirectorySync(async () => {
      const dirFd = openDirectoryToSync(dir);
      if (dirFd === undefined) return false;
      try {
        await fsyncInPool(dirFd);
      } finally {
        closeSync(dirFd);
      }
      return true;
    });
    directorySyncs.set(dir, group);
  }
  return group;
}

/**
 * The asynchronous form, for daemons that serve many clients at once. The
 * steps that may wait for the disk or do real file-system work leave the
 * event loop (in the thread pool): creating the file (the inode allocation:
 * ext4 without a journal walks past every inode freed in the last minute,
 * 0.1-0.5 ms under the bench's churn) and the two fsyncs. Writing the file
 * (into the page cache) and renaming it are plain system calls here: each
 * step through the thread pool is a hand-over to a pool thread and back,
 * and costs more CPU than these quick calls themselves (issue 16: nine
 * steps through the pool took about 0.3 ms more CPU per message than a
 * few). The write is synchronous too: building the queue file, which runs
 * on the event loop anyway, copies the same bytes first. The directory's
 * fsync is a group commit (DirectorySync).
 */
export async function commitQueueFile(dir: string, build: (queueId: string) => Uint8Array, mode = 0o600, write?: SyncWriter): Promise<string> {
  const tmp = temporaryName(dir);
  const fd = await openInPool(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode);
  let renamed = false;
  try {
    const id = queueIdFor(fstatSync(fd, { bigint: true }).ino, microseconds());
    const data = build(id);
    writeFully(fd, data, null, write);
    await fsyncInPool(fd);
    renameSync(tmp, join(dir, id));
    renamed = true;
    // the directory's fsync, shared with the commits renamed into it meanwhile; a user who
    // may not open the directory fsyncs the renamed file instead (see above)
    if (!(await directorySync(dir).after())) await fsyncInPool(fd);
    return id;
  } catch (err) {
    if (!renamed) {
      try {
        unlinkSync(tmp);
      } catch {}
    }
    throw err;
  } finally {
    closeSync(fd);
  }
}
