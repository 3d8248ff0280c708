/**
 * Non-blocking kernel locks on an open file through bun:ffi: flock(2)
 * and fcntl(2) F_SETLK write locks, the ones mail readers use. A blocking
 * lock would freeze the event loop, so callers retry on a timer; closing
 * the descriptor releases both.
 *
 * fcntl locks belong to the process, so two deliveries in one process do
 * not exclude each other with them: mailbox.ts serializes deliveries to one
 * path within the process as well. Linux only (struct flock layout of
 * x86_64 and aarch64).
 */
import { dlopen, FFIType, ptr, read, CString, type Pointer } from "bun:ffi";
import { constants as osc } from "node:os";

export type KernelLock = "fcntl" | "flock";

const LOCK_EX = 2;
const LOCK_NB = 4;
const F_SETLK = 6;
const F_WRLCK = 1;
const EAGAIN = 11;
const EACCES = 13;
const EINTR = 4;

let libc:
  | {
      flock: (fd: number, op: number) => number;
      fcntl: (fd: number, cmd: number, arg: Pointer) => number;
      errno: () => number;
      strerror: (e: number) => string;
    }
  | undefined;

function lib() {
  if (libc) return libc;
  const l = dlopen("libc.so.6", {
    flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
    strerror: { args: [FFIType.i32], returns: FFIType.ptr },
  });
  libc = {
    flock: (fd, op) => l.symbols.flock(fd, op) as number,
    fcntl: (fd, cmd, arg) => l.symbols.fcntl(fd, cmd, arg) as number,
    errno: () => read.i32(l.symbols.__errno_location() as Pointer, 0),
    strerror: (e) => new CString(l.symbols.strerror(e) as Pointer).toString(),
  };
  return libc;
}

/** strerror(3) for an errno name such as "EEXIST": the text Postfix prints for %m. */
export function strerrorOf(code: string): string | undefined {
  const n = (osc.errno as Record<string, number>)[code];
  if (n === undefined) return undefined;
  try {
    return lib().strerror(n);
  } catch {
    return undefined;
  }
}

export type LockAttempt = { ok: true } | { ok: false; busy: boolean; errno: number; message: string };

/** One non-blocking attempt to lock `fd` exclusively. */
export function tryKernelLock(fd: number, kind: KernelLock): LockAttempt {
  const c = lib();
  for (;;) {
    let rc: number;
    if (kind === "flock") rc = c.flock(fd, LOCK_EX | LOCK_NB);
    else {
      // struct flock: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid (32 bytes)
      const fl = new Uint8Array(32);
      const view = new DataView(fl.buffer);
      view.setInt16(0, F_WRLCK, true);
      view.setInt16(2, 0, true); // SEEK_SET; start 0, length 0: the whole file
      rc = c.fcntl(fd, F_SETLK, ptr(fl));
    }
    if (rc === 0) return { ok: true };
    const errno = c.errno();
    if (errno === EINTR) continue;
    return { ok: false, busy: errno === EAGAIN || errno === EACCES, errno, message: c.strerror(errno) };
  }
}
