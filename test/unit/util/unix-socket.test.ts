/**
 * listenUnixSocket and peerCredentials (src/util/unix-socket.ts): the
 * socket's mode comes from bind time whatever the umask, a name planted at
 * the path (a symlink to another file) is replaced, never followed, and the
 * kernel tells a server who its peer is.
 */
import { afterAll, expect, test } from "bun:test";
import { closeSync, lstatSync, readFileSync, statSync, symlinkSync, writeFileSync, chmodSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { join } from "node:path";
import { listenUnixSocket, peerCredentials } from "../../../src/util/unix-socket.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const dir = tempDir("postern-unix-socket-");
afterAll(() => removeDir(dir));

test("the socket gets its mode at bind time, whatever the umask", () => {
  const saved = process.umask(0o077);
  try {
    for (const mode of [0o666, 0o600]) {
      const path = join(dir, `s${mode.toString(8)}`);
      const fd = listenUnixSocket(path, mode);
      const st = lstatSync(path);
      expect(st.isSocket()).toBe(true);
      expect(st.mode & 0o777).toBe(mode);
      closeSync(fd);
    }
    expect(process.umask()).toBe(0o077);
  } finally {
    process.umask(saved);
  }
});

test("a symlink planted at the path is replaced by the socket; its target keeps its content and mode", () => {
  const victim = join(dir, "victim");
  writeFileSync(victim, "precious\n");
  chmodSync(victim, 0o600);
  const path = join(dir, "planted");
  symlinkSync(victim, path);
  const fd = listenUnixSocket(path, 0o666);
  try {
    expect(lstatSync(path).isSocket()).toBe(true);
    expect(readFileSync(victim, "utf8")).toBe("precious\n");
    expect(statSync(victim).mode & 0o777).toBe(0o600);
  } finally {
    closeSync(fd);
  }
});

test("a server learns its peer's uid, gid and pid from the kernel", async () => {
  const path = join(dir, "peer");
  const fd = listenUnixSocket(path, 0o600);
  const seen = new Promise<ReturnType<typeof peerCredentials>>((resolve, reject) => {
    const server = createServer((socket) => {
      try {
        resolve(peerCredentials((socket as unknown as { _handle: { fd: number } })._handle.fd));
      } catch (err) {
        reject(err);
      }
      socket.destroy();
      server.close();
    });
    server.listen({ fd });
  });
  const client = createConnection(path);
  client.on("error", () => {});
  const peer = await seen;
  client.destroy();
  expect(peer).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
});

test("a path too long for sun_path is refused", () => {
  expect(() => listenUnixSocket(join(dir, "x".repeat(120)), 0o666)).toThrow(/socket path longer than 107 bytes/);
});
