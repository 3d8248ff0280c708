/**
 * A directory watch that reports only the events a queue daemon acts on:
 * entries renamed into the directory (inotify's IN_MOVED_TO) and, when
 * asked, files closed after writing (IN_CLOSE_WRITE). node:fs's watch asks
 * the kernel for every change (creation, each write, renames out,
 * removals), and each one woke the runtime's watch thread and then the
 * event loop: about four wake-ups per message in pickup (sendmail's
 * temporary file made, written, renamed; pickup's own removal) and in the
 * queue manager (the writer's temporary file, its rename, the queue
 * manager's own move to active/), of which one meant work (issue 16).
 *
 * Linux only, through bun:ffi (inotify_init1, inotify_add_watch); the
 * descriptor is read by the runtime's event loop (Bun.file(fd).stream()),
 * with no thread of its own. An overflowed event queue reports "look at
 * everything" (no name); a watch the kernel drops (the directory removed,
 * its file system unmounted) or a read that fails is reported as an error,
 * and the caller's timer goes on looking. `watchDirectoryEvents` throws
 * when inotify cannot be had: the caller falls back to node:fs's watch.
 *
 * Runs in the daemon that watches (pickup and the queue manager, as
 * mail_owner). A reported name is only a hint, never opened here: the
 * daemon checks the entry as it would any other.
 */
import { dlopen, FFIType, read } from "bun:ffi";
import { closeSync } from "node:fs";

const IN_CLOSE_WRITE = 0x8;
const IN_MOVED_TO = 0x80;
const IN_UNMOUNT = 0x2000;
const IN_Q_OVERFLOW = 0x4000;
const IN_IGNORED = 0x8000;
const IN_ONLYDIR = 0x01000000;
const IN_DONT_FOLLOW = 0x02000000;
const IN_NONBLOCK = 0o4000;
const IN_CLOEXEC = 0o2000000;
/** struct inotify_event without its name: wd, mask, cookie, len (4 bytes each). */
const EVENT_HEADER = 16;
/** The most a read returns is whole events; more than this left over means the stream is not inotify's. */
const MAX_PENDING = 64 * 1024;

let libc:
  | {
      init: (flags: number) => number;
      addWatch: (fd: number, path: Uint8Array, mask: number) => number;
      errno: () => number;
    }
  | undefined;

function lib() {
  if (libc) return libc;
  const l = dlopen("libc.so.6", {
    inotify_init1: { args: [FFIType.i32], returns: FFIType.i32 },
    inotify_add_watch: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
  libc = {
    init: (flags) => l.symbols.inotify_init1(flags) as number,
    addWatch: (fd, path, mask) => l.symbols.inotify_add_watch(fd, path, mask) as number,
    errno: () => read.i32(l.symbols.__errno_location()!, 0),
  };
  return libc;
}

export interface DirectoryEvents {
  close(): void;
}

export interface DirectoryEventOptions {
  /** Also report files closed after writing (a file written in place rather than renamed in). */
  closeWrite?: boolean;
  /** An entry's name, or undefined for "look at everything" (the kernel's queue overflowed). */
  onEvent: (name: string | undefined) => void;
  /** The watch ended (the directory went away, a read failed); no more events come. */
  onError: (err: Error) => void;
}

/** The names in a buffer of whole inotify events, and how many bytes they took. */
export function parseEvents(buf: Uint8Array): { events: { mask: number; name: string | undefined }[]; used: number } {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const events: { mask: number; name: string | undefined }[] = [];
  let off = 0;
  while (off + EVENT_HEADER <= buf.length) {
    const mask = view.getUint32(off + 4, true);
    const len = view.getUint32(off + 12, true);
    if (off + EVENT_HEADER + len > buf.length) break;
    const raw = buf.subarray(off + EVENT_HEADER, off + EVENT_HEADER + len);
    const end = raw.indexOf(0);
    const name = len === 0 ? undefined : Buffer.from(raw.buffer, raw.byteOffset, end < 0 ? raw.length : end).toString("utf8");
    events.push({ mask, name });
    off += EVENT_HEADER + len;
  }
  return { events, used: off };
}

/** Watches `dir` for entries renamed into it (and, with closeWrite, files written); throws when inotify is not available. */
export function watchDirectoryEvents(dir: string, opts: DirectoryEventOptions): DirectoryEvents {
  const c = lib();
  const fd = c.init(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) throw new Error(`inotify_init1: errno ${c.errno()}`);
  const mask = IN_MOVED_TO | (opts.closeWrite ? IN_CLOSE_WRITE : 0) | IN_ONLYDIR | IN_DONT_FOLLOW;
  if (c.addWatch(fd, Buffer.from(`${dir}\0`), mask) < 0) {
    const errno = c.errno();
    closeSync(fd);
    throw new Error(`inotify_add_watch ${dir}: errno ${errno}`);
  }
  const reader = Bun.file(fd).stream().getReader();
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    void reader.cancel().catch(() => undefined);
    try {
      closeSync(fd);
    } catch {}
  };
  const fail = (err: Error) => {
    if (closed) return;
    close();
    opts.onError(err);
  };
  void (async () => {
    let pending: Uint8Array = new Uint8Array(0);
    for (;;) {
      let chunk: Uint8Array | undefined;
      try {
        const r = await reader.read();
        if (r.done) return fail(new Error("the watch's descriptor was closed"));
        chunk = r.value;
      } catch (err) {
        return fail(err as Error);
      }
      if (closed) return;
      const buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      const { events, used } = parseEvents(buf);
      pending = buf.subarray(used);
      if (pending.length > MAX_PENDING) return fail(new Error("unreadable events"));
      for (const e of events) {
        if (e.mask & (IN_IGNORED | IN_UNMOUNT)) return fail(new Error("the directory is no longer watched"));
        if (e.mask & IN_Q_OVERFLOW) opts.onEvent(undefined);
        else if (e.name !== undefined) opts.onEvent(e.name);
        if (closed) return;
      }
    }
  })();
  return { close };
}
