/**
 * Appending to an mbox-style file the way Postfix's mbox_open(),
 * safe_open() and mail_copy() do: a USER.lock dotlock (O_EXCL, stale locks
 * removed after stale_lock_time), a careful open that refuses symbolic links
 * and files with more than one hard link, non-blocking fcntl/flock locks
 * retried on a timer, one write, fsync, and a truncate back to the old size
 * when anything fails. mailbox_size_limit works as Postfix's file size limit
 * does: a write that would pass it fails with EFBIG ("File too large").
 *
 * Runs with the rights of the recipient (or default_privs for alias files),
 * in the agent or a worker. The path may come from an alias or .forward
 * file and is untrusted.
 */
import { constants as fsc } from "node:fs";
import { lstat, open, stat, unlink, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { writeFullyAsync } from "../../util/durable-file.ts";
import { strerrorOf, tryKernelLock, type KernelLock } from "../../util/kernel-lock.ts";
import type { FileStatus, JobFailure, LockPlan, MboxJob } from "./jobs.ts";
import { isPathInside } from "../mailbox-name.ts";
import { formatDelivery } from "../message-copy.ts";

/** The system's text for an error, as Postfix's %m prints it ("No such file or directory"). */
export function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const text = e?.code ? strerrorOf(e.code) : undefined;
  if (text) return text;
  const m = /^[A-Z]+: (.*?)(, \w+ '.*')?$/.exec(e?.message ?? "");
  return m ? capitalize(m[1]!) : (e?.message ?? String(err));
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Postfix's mbox_dsn: an errno as a mailbox-related enhanced status. */
export function mboxDsn(code: string | undefined, fallback: string): string {
  if (code === "EAGAIN" || code === "ESTALE") return "4.2.0";
  if (code === "ENOSPC") return "4.3.0";
  if (code === "EDQUOT" || code === "EFBIG") return "5.2.2";
  return fallback;
}

function fail(dsn: string, text: string, code?: string): JobFailure {
  return { ok: false, dsn, text, ...(code ? { code } : {}) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One delivery at a time per path in this process (fcntl locks do not exclude within a process). */
const pathQueues = new Map<string, Promise<unknown>>();

export async function serializedByPath<T>(path: string, work: () => Promise<T>): Promise<T> {
  const before = pathQueues.get(path) ?? Promise.resolve();
  const run = before.then(work, work);
  const tail = run.catch(() => undefined);
  pathQueues.set(path, tail);
  try {
    return await run;
  } finally {
    if (pathQueues.get(path) === tail) pathQueues.delete(path);
  }
}

export function fileStatus(st: import("node:fs").Stats): FileStatus {
  return {
    isFile: st.isFile(),
    isDirectory: st.isDirectory(),
    isSymbolicLink: st.isSymbolicLink(),
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    nlink: st.nlink,
    size: st.size,
  };
}

/** Creates PATH.lock; undefined when it holds the lock, else the failure. */
export async function dotLock(path: string, plan: LockPlan): Promise<{ ok: true } | { ok: false; code: string; text: string }> {
  const lockFile = `${path}.lock`;
  for (let count = 1; ; count++) {
    try {
      const fh = await open(lockFile, fsc.O_WRONLY | fsc.O_EXCL | fsc.O_CREAT, 0);
      await fh.close();
      return { ok: true };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "EIO";
      if (count >= plan.attempts || code !== "EEXIST") {
        return { ok: false, code, text: `unable to create lock file ${lockFile}: ${errnoText(err)}` };
      }
    }
    // break a lock older than stale_lock_time; give up when it cannot be removed
    try {
      const st = await stat(lockFile);
      if (Date.now() / 1000 > st.ctimeMs / 1000 + plan.staleSeconds) {
        try {
          await unlink(lockFile);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
            return { ok: false, code: "EEXIST", text: `unable to create lock file ${lockFile}: ${errnoText(err)}` };
          }
        }
      }
    } catch {
      // gone already: try again at once
      continue;
    }
    await sleep(plan.delayMs);
  }
}

async function kernelLock(fd: number, kind: KernelLock, plan: LockPlan): Promise<{ ok: true } | { ok: false; code: string; text: string }> {
  let last = { errno: 11, message: "Resource temporarily unavailable", busy: true };
  for (let i = 0; i < plan.attempts; i++) {
    if (i > 0) await sleep(plan.delayMs);
    const r = tryKernelLock(fd, kind);
    if (r.ok) return r;
    last = r;
    if (!r.busy) break;
  }
  return { ok: false, code: last.busy ? "EAGAIN" : "EIO", text: `unable to lock for exclusive access: ${last.message}` };
}

/**
 * Postfix's safe_open: open an existing file or create a new one, refusing
 * symbolic links (unless root owns the link and its directory is safe), hard
 * links and directories, and files replaced between open and check.
 */
async function safeOpen(path: string, chown: MboxJob["chown"]): Promise<{ fh: FileHandle; st: import("node:fs").Stats } | JobFailure> {
  const flags = fsc.O_WRONLY | fsc.O_APPEND | fsc.O_NONBLOCK;
  const openExisting = async (): Promise<{ fh: FileHandle; st: import("node:fs").Stats } | JobFailure> => {
    let fh: FileHandle;
    try {
      fh = await open(path, flags);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return fail("", `cannot open file: ${errnoText(err)}`, code);
    }
    const bad = async (text: string, code = "EPERM") => {
      await fh.close();
      return fail("", text, code);
    };
    const st = await fh.stat();
    if (st.nlink !== 1) return bad(`file has ${st.nlink} hard links`);
    if (st.isDirectory()) return bad("file is a directory", "EISDIR");
    let lst: import("node:fs").Stats;
    try {
      lst = await lstat(path);
    } catch (err) {
      return bad(`file status changed unexpectedly: ${errnoText(err)}`);
    }
    if (lst.isSymbolicLink()) {
      if (lst.uid === 0) {
        const dir = await stat(dirname(path)).catch(() => undefined);
        if (dir && dir.uid === 0 && (dir.mode & 0o022) === 0) return { fh, st };
      }
      return bad("file is a symbolic link");
    }
    if (st.dev !== lst.dev || st.ino !== lst.ino || st.nlink !== lst.nlink || st.mode !== lst.mode) return bad("file status changed unexpectedly");
    return { fh, st };
  };
  const first = await openExisting();
  if ("fh" in first || first.code !== "ENOENT") return first;
  try {
    const fh = await open(path, flags | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    if (chown) await fh.chown(chown.uid, chown.gid).catch(() => undefined);
    return { fh, st: await fh.stat() };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return openExisting();
    return fail("", `cannot create file exclusively: ${errnoText(err)}`, code);
  }
}

/** Appends the message; the result's text is the detail Postfix puts after "cannot update mailbox ...". */
export async function appendToMbox(job: MboxJob, content: Uint8Array): Promise<{ ok: true; warnings: string[] } | (JobFailure & { warnings: string[] })> {
  const warnings: string[] = [];
  if (job.within !== undefined && !isPathInside(job.path, job.within)) {
    // the agent builds mailbox paths with spoolMailboxPath(); getting here is a bug, never a delivery
    return { ok: false, dsn: "4.3.0", text: `mailbox ${job.path} is not inside ${job.within}`, warnings: [`refusing mailbox ${job.path}: not inside ${job.within}`] };
  }
  return serializedByPath(job.path, async () => {
    let dotlocked = false;
    const failed = (dsn: string, text: string, code?: string) => ({ ...fail(dsn, text, code), warnings });
    if (job.lock.dotlock) {
      const st = await stat(job.path).catch(() => undefined);
      if (!st || st.isFile()) {
        const r = await dotLock(job.path, job.lock);
        if (r.ok) dotlocked = true;
        else if (r.code === "EEXIST") return failed(mboxDsn("EAGAIN", job.defaultDsn), r.text, "EAGAIN");
        else if (job.lock.dotlockMayFail) warnings.push(r.text);
        else return failed(mboxDsn(r.code, job.defaultDsn), r.text, r.code);
      }
    }
    try {
      const opened = await safeOpen(job.path, job.chown);
      if (!("fh" in opened)) return failed(mboxDsn(opened.code, job.defaultDsn), opened.text, opened.code);
      const { fh } = opened;
      let st = opened.st;
      try {
        if (st.isFile()) {
          for (const kind of ["flock", "fcntl"] as const) {
            if (!job.lock[kind]) continue;
            const r = await kernelLock(fh.fd, kind, job.lock);
            if (!r.ok) return failed(mboxDsn(r.code, job.defaultDsn), r.text, r.code);
          }
          st = await fh.stat();
          if (st.nlink !== 1) {
            warnings.push(`${job.path}: file status changed unexpectedly`);
            return failed(mboxDsn("EAGAIN", job.defaultDsn), "target file status changed unexpectedly", "EAGAIN");
          }
        }
        if (job.mailbox) {
          if (!st.isFile()) return failed("5.2.0", `destination ${job.path} is not a regular file`);
          if (job.mailbox.ownerUid !== undefined && st.uid !== job.mailbox.ownerUid) {
            warnings.push(`specify "strict_mailbox_ownership = no" to ignore mailbox ownership mismatch`);
            return failed("4.2.0", `destination ${job.path} is not owned by recipient`);
          }
        }
        if (job.refuseExecutable && st.isFile() && (st.mode & 0o111) !== 0) return failed("5.7.1", "file is executable");
        const data = formatDelivery(job.prefix, content, { quote: job.quote, blank: job.blank });
        const before = st.size;
        try {
          if (job.sizeLimit > 0 && st.isFile() && before + data.length > job.sizeLimit) {
            throw Object.assign(new Error("File too large"), { code: "EFBIG" });
          }
          await writeFullyAsync(fh, data);
          if (st.isFile()) await fh.sync();
        } catch (err) {
          if (st.isFile()) await fh.truncate(before).catch(() => undefined);
          const code = (err as NodeJS.ErrnoException).code;
          return failed(mboxDsn(code, "5.3.0"), `error writing message: ${errnoText(err)}`, code);
        }
        return { ok: true as const, warnings };
      } finally {
        await fh.close().catch(() => undefined);
      }
    } finally {
      if (dotlocked) await unlink(`${job.path}.lock`).catch(() => undefined);
    }
  });
}
