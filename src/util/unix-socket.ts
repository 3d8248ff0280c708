/**
 * Unix-domain stream sockets below what node:net offers, through bun:ffi:
 * a listening socket whose file gets its mode from the umask at bind time
 * (never a chmod of the path afterwards, which a user who can write the
 * directory could redirect to another file by a rename), and the kernel's
 * credentials of a connected peer (SO_PEERCRED), which Bun and Node do
 * not expose, and whether a listening socket has connections waiting
 * (poll(2), and SIGIO when one arrives), which lets the master start a
 * service only when it is needed without accepting anything itself. Also
 * the TCP listening sockets the master binds for the smtpd services it
 * starts on demand (listenTcpSocket), which get the same poll and SIGIO.
 *
 * Used by the master (root) to create the internal services' sockets and
 * by the daemons that serve them. Trusts the kernel only: the peer's uid
 * is the one it had when it connected, whatever it claims. Linux only
 * (struct ucred and the constants are Linux's).
 */
import { dlopen, FFIType, ptr, read, CString, type Pointer } from "bun:ffi";
import { closeSync, unlinkSync } from "node:fs";

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
/** sizeof(struct sockaddr_un); sun_path holds 108 bytes with the terminating NUL. */
const SOCKADDR_UN_SIZE = 110;
const SUN_PATH_MAX = 107;

let libc:
  | {
      socket: (domain: number, type: number, protocol: number) => number;
      bind: (fd: number, addr: Pointer, len: number) => number;
      listen: (fd: number, backlog: number) => number;
      getsockopt: (fd: number, level: number, name: number, value: Pointer, len: Pointer) => number;
      setsockopt: (fd: number, level: number, name: number, value: Pointer, len: number) => number;
      poll: (fds: Pointer, n: number, timeoutMs: number) => number;
      fcntl: (fd: number, cmd: number, arg: number) => number;
      getpid: () => number;
      errno: () => number;
      strerror: (e: number) => string;
    }
  | undefined;

function lib() {
  if (libc) return libc;
  const l = dlopen("libc.so.6", {
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    listen: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
    // variadic in C; with one int argument the calling convention is the plain one on Linux's ABIs
    fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    getpid: { args: [], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
    strerror: { args: [FFIType.i32], returns: FFIType.ptr },
  });
  libc = {
    socket: (d, t, p) => l.symbols.socket(d, t, p) as number,
    bind: (fd, a, n) => l.symbols.bind(fd, a, n) as number,
    listen: (fd, b) => l.symbols.listen(fd, b) as number,
    getsockopt: (fd, lv, n, v, len) => l.symbols.getsockopt(fd, lv, n, v, len) as number,
    setsockopt: (fd, lv, n, v, len) => l.symbols.setsockopt(fd, lv, n, v, len) as number,
    poll: (fds, n, t) => l.symbols.poll(fds, n, t) as number,
    fcntl: (fd, cmd, arg) => l.symbols.fcntl(fd, cmd, arg) as number,
    getpid: () => l.symbols.getpid() as number,
    errno: () => read.i32(l.symbols.__errno_location() as Pointer, 0),
    strerror: (e) => new CString(l.symbols.strerror(e) as Pointer).toString(),
  };
  return libc;
}

function failure(what: string): Error {
  const c = lib();
  const e = c.errno();
  return new Error(`${what}: ${c.strerror(e)}`);
}

/**
 * Creates a listening unix stream socket at `path` with file mode `mode`:
 * whatever is at `path` is unlinked first (unlink never follows a
 * symlink), the mode comes from the umask during bind(2), and bind never
 * follows or reuses an existing name (a name planted in between makes it
 * fail). The descriptor is close-on-exec; a child gets it only when it is
 * passed on explicitly. Returns the descriptor.
 */
export function listenUnixSocket(path: string, mode: number, backlog = 128): number {
  const encoded = new TextEncoder().encode(path);
  if (encoded.length > SUN_PATH_MAX) throw new Error(`${path}: socket path longer than ${SUN_PATH_MAX} bytes`);
  if (encoded.includes(0)) throw new Error(`${JSON.stringify(path)}: socket path contains a NUL byte`);
  const c = lib();
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`${path}: cannot remove the old socket: ${(err as Error).message}`);
  }
  const fd = c.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw failure("socket");
  const addr = new Uint8Array(SOCKADDR_UN_SIZE);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(encoded, 2);
  const saved = process.umask(~mode & 0o777);
  let rc: number;
  try {
    rc = c.bind(fd, ptr(addr), SOCKADDR_UN_SIZE);
  } finally {
    process.umask(saved);
  }
  if (rc !== 0) {
    const err = failure(`bind ${path}`);
    closeSync(fd);
    throw err;
  }
  if (c.listen(fd, backlog) !== 0) {
    const err = failure(`listen ${path}`);
    closeSync(fd);
    throw err;
  }
  return fd;
}

const AF_INET = 2;
const AF_INET6 = 10;
const SO_REUSEADDR = 2;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;

/**
 * Creates a listening TCP socket bound to `address` (an IPv4 or IPv6 address in its bytes, 4 or 16)
 * and `port`: SO_REUSEADDR (a restart binds again while old connections linger), IPV6_V6ONLY for IPv6
 * (the IPv4 wildcard is a socket of its own, as Postfix's inet_listen makes them). Close-on-exec: a
 * child gets it only when it is passed on. Binding a port below 1024 needs root. Returns the descriptor.
 */
export function listenTcpSocket(address: Uint8Array, port: number, backlog = 511): number {
  if (address.length !== 4 && address.length !== 16) throw new Error("an address is 4 or 16 bytes");
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`port ${port} is out of range`);
  const c = lib();
  const v6 = address.length === 16;
  const fd = c.socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw failure("socket");
  try {
    const one = new Int32Array([1]);
    if (c.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, ptr(one), 4) !== 0) throw failure("setsockopt SO_REUSEADDR");
    if (v6 && c.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, ptr(one), 4) !== 0) throw failure("setsockopt IPV6_V6ONLY");
    // struct sockaddr_in (16 bytes) or sockaddr_in6 (28): family, port in network order, [flowinfo,] address
    const addr = new Uint8Array(v6 ? 28 : 16);
    const view = new DataView(addr.buffer);
    view.setUint16(0, v6 ? AF_INET6 : AF_INET, true);
    view.setUint16(2, port, false);
    addr.set(address, v6 ? 8 : 4);
    if (c.bind(fd, ptr(addr), addr.length) !== 0) throw failure("bind");
    if (c.listen(fd, backlog) !== 0) throw failure("listen");
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** The credentials the kernel recorded for the peer of the connected unix socket `fd` (SO_PEERCRED). */
export function peerCredentials(fd: number): PeerCredentials {
  const c = lib();
  const cred = new Uint8Array(12); // struct ucred: pid_t pid; uid_t uid; gid_t gid
  const len = new Uint32Array([12]);
  if (c.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ptr(cred), ptr(len)) !== 0) throw failure("getsockopt SO_PEERCRED");
  if (len[0] !== 12) throw new Error(`getsockopt SO_PEERCRED: unexpected length ${len[0]}`);
  const view = new DataView(cred.buffer);
  return { pid: view.getInt32(0, true), uid: view.getUint32(4, true), gid: view.getUint32(8, true) };
}

const POLLIN = 0x1;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const POLLNVAL = 0x20;
/** sizeof(struct pollfd): int fd; short events; short revents. */
const POLLFD_SIZE = 8;
const EINTR = 4;

/**
 * Which of the listening sockets `fds` have a connection waiting to be
 * accepted (or an error pending), without waiting and without accepting:
 * poll(2) with a timeout of 0. A descriptor that is not open counts as
 * nothing waiting.
 */
export function pendingConnections(fds: readonly number[]): number[] {
  if (fds.length === 0) return [];
  const buf = new Uint8Array(fds.length * POLLFD_SIZE);
  const view = new DataView(buf.buffer);
  fds.forEach((fd, i) => {
    view.setInt32(i * POLLFD_SIZE, fd, true);
    view.setInt16(i * POLLFD_SIZE + 4, POLLIN, true);
  });
  const c = lib();
  const n = c.poll(ptr(buf), fds.length, 0);
  if (n < 0) {
    if (c.errno() === EINTR) return [];
    throw failure("poll");
  }
  if (n === 0) return [];
  return fds.filter((_, i) => {
    const revents = view.getInt16(i * POLLFD_SIZE + 6, true);
    return (revents & (POLLIN | POLLERR | POLLHUP)) !== 0 && (revents & POLLNVAL) === 0;
  });
}

const F_GETFL = 3;
const F_SETFL = 4;
const F_SETOWN = 8;
const O_ASYNC = 0o20000;

/**
 * With `on`, the kernel sends this process SIGIO when a connection arrives
 * on the listening socket `fd` (O_ASYNC, owner: this process); without, it
 * stops. The flag belongs to the open socket, which the master shares with
 * the service it passes it to: the master turns it on only while that
 * service is down, so no signal is ever aimed at a pid the master no longer
 * has. The caller must handle SIGIO first (its default action ends the
 * process).
 */
export function signalOnConnection(fd: number, on: boolean): void {
  const c = lib();
  const flags = c.fcntl(fd, F_GETFL, 0);
  if (flags < 0) throw failure("fcntl F_GETFL");
  if (on && c.fcntl(fd, F_SETOWN, c.getpid()) !== 0) throw failure("fcntl F_SETOWN");
  const next = on ? flags | O_ASYNC : flags & ~O_ASYNC;
  if (next !== flags && c.fcntl(fd, F_SETFL, next) !== 0) throw failure("fcntl F_SETFL");
}
