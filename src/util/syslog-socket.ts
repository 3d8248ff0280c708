/**
 * A connected unix datagram socket for syslog (`/dev/log`). Neither
 * node:dgram nor Bun sockets speak AF_UNIX/SOCK_DGRAM, so this calls libc's
 * socket(2), connect(2) and send(2) through bun:ffi. Loaded only when syslog
 * is the log destination.
 *
 * Limits: Linux sockaddr_un layout (sun_path of 108 bytes); a datagram that
 * the receiver drops is lost, as with syslog(3).
 */
import { dlopen, FFIType, ptr } from "bun:ffi";
import type { SyslogSender } from "./log.ts";

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;

function libc() {
  return dlopen("libc.so.6", {
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    connect: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    send: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
  });
}

/** Connects to `path`; returns undefined when the socket cannot be reached. */
export function openSyslogSocket(path: string): SyslogSender | undefined {
  const pathBytes = Buffer.from(path);
  if (pathBytes.length >= 108) return undefined;
  const lib = libc();
  const fd = lib.symbols.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    lib.close();
    return undefined;
  }
  const addr = new Uint8Array(110);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(pathBytes, 2);
  if (lib.symbols.connect(fd, ptr(addr), 2 + pathBytes.length + 1) !== 0) {
    lib.symbols.close(fd);
    lib.close();
    return undefined;
  }
  let open = true;
  return {
    send(datagram: string): boolean {
      if (!open) return false;
      const bytes = Buffer.from(datagram);
      return Number(lib.symbols.send(fd, ptr(bytes), bytes.length, MSG_DONTWAIT | MSG_NOSIGNAL)) === bytes.length;
    },
    close(): void {
      if (!open) return;
      open = false;
      lib.symbols.close(fd);
      lib.close();
    },
  };
}
