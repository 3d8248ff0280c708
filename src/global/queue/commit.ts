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
// fs.promises is loaded on first use only: sendmail, which commits synchronously, never pays for it
import * as nodeFs from "node:fs";
import { join } from "node:path";
import { fsyncDirectory, writeFully, writeFullyAsync, type AsyncWriter, type SyncWriter } from "../../util/durable-file.ts";
import { queueIdFor } from "./names.ts";

function temporaryName(dir: string): string {
  return join(dir, `t.${process.pid}.${Math.random().toString(36).slice(2, 10)}`);
}

function microseconds(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000) % 1_000_000;
}

function syncDirectoryOrFile(dir: string, fd: number): void {
  try {
    fsyncDirectory(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EACCES" && code !== "EPERM") throw err;
    fsyncSync(fd);
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

/** The asynchronous form, for daemons that serve many clients at once. */
export async function commitQueueFile(dir: string, build: (queueId: string) => Uint8Array, mode = 0o600, write?: AsyncWriter): Promise<string> {
  const tmp = temporaryName(dir);
  const handle = await nodeFs.promises.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode);
  let renamed = false;
  try {
    const id = queueIdFor((await handle.stat({ bigint: true })).ino, microseconds());
    const data = build(id);
    await writeFullyAsync(handle, data, null, write);
    await handle.sync();
    await nodeFs.promises.rename(tmp, join(dir, id));
    renamed = true;
    const dirHandle = await nodeFs.promises.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY).catch(() => undefined);
    if (dirHandle) {
      await dirHandle.sync();
      await dirHandle.close();
    } else await handle.sync();
    return id;
  } catch (err) {
    if (!renamed) await nodeFs.promises.unlink(tmp).catch(() => {});
    throw err;
  } finally {
    await handle.close();
  }
}
