/**
 * Maildir delivery as Postfix's local(8) does it: write tmp/NAME (created
 * with O_EXCL, mode 0600, the directories made on the fly), fsync, link it
 * into new/ under a name built from the file's device and inode numbers,
 * and fsync new/ (and every directory that got a new subdirectory), then
 * remove the tmp/ name. Names: tmp/`SECONDS.PpidQcount.HOST`,
 * new/`SECONDS.VdevIinoMusec.HOST` (the "modern delivery identifiers" of
 * the maildir specification); no two deliveries on one host can collide.
 *
 * The quick steps (create, fstat, write into the page cache, close, link,
 * unlink) are plain system calls; only the file's fsync goes through the
 * runtime's thread pool, so deliveries that one worker runs at once still
 * sync together. Each step through the pool is a hand-over to a pool
 * thread and back (futex, eventfd, an event-loop wake-up), which cost more
 * CPU than these calls themselves (issue 16).
 *
 * Runs with the recipient's rights, in the agent or a worker. The directory
 * may come from an alias or .forward file and is untrusted.
 */
import { closeSync, fstatSync, linkSync, mkdirSync, openSync, unlinkSync, constants as fsc } from "node:fs";
import { dirname } from "node:path";
import { fsyncDirectory, fsyncInPool, writeFully } from "../../util/durable-file.ts";
import type { JobFailure, MaildirJob } from "./jobs.ts";
import { isPathInside } from "../mailbox-name.ts";
import { formatDelivery } from "../message-copy.ts";
import { errnoText, mboxDsn } from "./mbox-file.ts";

let deliveries = 0;

/** A host name safe inside a maildir name: "/" and ":" are written \057 and \072. */
export function maildirHostname(host: string): string {
  return host.replace(/\//g, "\\057").replace(/:/g, "\\072");
}

export interface MaildirNameParts {
  seconds: number;
  microseconds: number;
  pid: number;
  count: number;
  dev: number | bigint;
  ino: number | bigint;
  host: string;
}

export function maildirTmpName(p: MaildirNameParts): string {
  return `${p.seconds}.P${p.pid}Q${p.count}.${maildirHostname(p.host)}`;
}

export function maildirNewName(p: MaildirNameParts): string {
  return `${p.seconds}.V${p.dev.toString(16)}I${p.ino.toString(16)}M${p.microseconds}.${maildirHostname(p.host)}`;
}

export async function deliverToMaildir(job: MaildirJob, content: Uint8Array): Promise<{ ok: true; warnings: string[] } | (JobFailure & { warnings: string[] })> {
  const warnings: string[] = [];
  const dir = job.dir.endsWith("/") ? job.dir : `${job.dir}/`;
  if (job.within !== undefined && !isPathInside(dir, job.within)) {
    // the agent builds mailbox paths with spoolMailboxPath(); getting here is a bug, never a delivery
    return { ok: false, dsn: "4.3.0", text: `maildir ${dir} is not inside ${job.within}`, warnings: [`refusing maildir ${dir}: not inside ${job.within}`] };
  }
  const nowUs = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  const parts: MaildirNameParts = {
    seconds: Math.floor(nowUs / 1e6),
    microseconds: nowUs % 1e6,
    pid: process.pid,
    count: ++deliveries,
    dev: 0,
    ino: 0,
    host: job.hostname,
  };
  const tmpFile = `${dir}tmp/${maildirTmpName(parts)}`;
  let tmpRemoved = false;
  const removeTmp = () => {
    try {
      unlinkSync(tmpFile);
    } catch (err) {
      warnings.push(`remove ${tmpFile}: ${errnoText(err)}`);
    }
  };
  const failed = (err: unknown, text: string) => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EACCES") {
      warnings.push(`maildir access problem for UID/GID=${process.getuid?.()}/${process.getgid?.()}: ${text}`);
      warnings.push("perhaps you need to create the maildirs in advance");
    }
    return { ok: false as const, dsn: mboxDsn(code, job.defaultDsn ?? "5.2.0"), text, ...(code ? { code } : {}), warnings };
  };
  const create = () => openSync(tmpFile, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
  // directories whose entries changed because we made directories in them: synced before success
  const changedDirs = new Set<string>();
  const makeDir = (path: string) => {
    const first = mkdirSync(path, { recursive: true, mode: 0o700 });
    if (first === undefined) return;
    // every directory made, from the first one's parent down to path's parent, got a new entry
    for (let d = dirname(path); d.length >= dirname(first).length; d = dirname(d)) {
      changedDirs.add(d);
      if (d === dirname(d)) break;
    }
  };
  let fd: number;
  try {
    try {
      fd = create();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      makeDir(`${dir}tmp`);
      fd = create();
    }
  } catch (err) {
    return failed(err, `create maildir file ${tmpFile}: ${errnoText(err)}`);
  }
  try {
    let newFile = "";
    try {
      const st = fstatSync(fd, { bigint: true });
      parts.dev = st.dev;
      parts.ino = st.ino;
      newFile = `${dir}new/${maildirNewName(parts)}`;
      const data = formatDelivery(job.prefix, content, { quote: false, blank: false });
      if (job.sizeLimit > 0 && data.length > job.sizeLimit) throw Object.assign(new Error("File too large"), { code: "EFBIG" });
      writeFully(fd, data);
      await fsyncInPool(fd);
    } catch (err) {
      return failed(err, `error writing message: ${errnoText(err)}`);
    } finally {
      try {
        closeSync(fd);
      } catch {}
    }
    try {
      linkSync(tmpFile, newFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") return failed(err, `create maildir file ${newFile}: ${errnoText(err)}`);
      try {
        makeDir(`${dir}cur`);
        makeDir(`${dir}new`);
        linkSync(tmpFile, newFile);
      } catch (err2) {
        return failed(err2, `create maildir file ${newFile}: ${errnoText(err2)}`);
      }
    }
    // the message is in new/: the tmp/ name goes now, so nobody sees it in both (Postfix unlinks right after the link)
    tmpRemoved = true;
    removeTmp();
    // The link is the delivery: it must be on disk before we say so. ext4 orders it after the
    // file's fsync, XFS and btrfs do not; new directories' entries likewise.
    try {
      fsyncDirectory(`${dir}new`);
    } catch (err) {
      return failed(err, `sync maildir directory ${dir}new: ${errnoText(err)}`);
    }
    for (const d of [...changedDirs].sort((a, b) => b.length - a.length)) {
      try {
        fsyncDirectory(d);
      } catch (err) {
        // a directory we may write but not read (a 1733 spool): the new entry stays unsynced
        warnings.push(`sync directory ${d}: ${errnoText(err)}`);
      }
    }
  } finally {
    if (!tmpRemoved) removeTmp();
  }
  return { ok: true, warnings };
}
