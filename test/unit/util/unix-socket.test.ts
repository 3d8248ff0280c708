/**
 * listenUnixSocket and peerCredentials (src/util/unix-socket.ts): the
 * socket's mode comes from bind time whatever the umask, a name planted at
 * the path (a symlink to another file) is replaced, never followed, and the
 * kernel tells a server who its peer is; pendingConnections says which
 * listening sockets have a connection waiting without accepting it, and
 * signalOnConnection makes the kernel send SIGIO when one arrives (and
 * stops it).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, lstatSync, readFileSync, statSync, symlinkSync, writeFileSync, chmodSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { join } from "node:path";
import { listenTcpSocket, listenUnixSocket, peerCredentials, pendingConnections, signalOnConnection } from "../../../src/util/unix-socket.ts";
import { parseIpAddress } from "../../../src/util/net/cidr-match.ts";
import { freePort } from "../../helpers/ports.ts";
import { waitFor } from "../../helpers/wait.ts";
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

test("pendingConnections names the listening sockets with a connection waiting, and accepts nothing", async () => {
  const a = listenUnixSocket(join(dir, "pa"), 0o666);
  const b = listenUnixSocket(join(dir, "pb"), 0o666);
  try {
    expect(pendingConnections([a, b])).toEqual([]);
    const client = createConnection(join(dir, "pb"));
    await new Promise<void>((resolve, reject) => {
      client.once("connect", () => resolve());
      client.once("error", reject);
    });
    expect(pendingConnections([a, b])).toEqual([b]);
    // asked again: still waiting, nobody accepted it
    expect(pendingConnections([a, b])).toEqual([b]);
    client.destroy();
    expect(pendingConnections([])).toEqual([]);
  } finally {
    closeSync(a);
    closeSync(b);
  }
});

test("signalOnConnection: SIGIO for each connection while on, none once off", async () => {
  const path = join(dir, "sigio");
  const fd = listenUnixSocket(path, 0o666);
  let signals = 0;
  const onSigio = () => signals++;
  process.on("SIGIO", onSigio);
  const connect = async () => {
    const c = createConnection(path);
    await new Promise<void>((resolve, reject) => {
      c.once("connect", () => resolve());
      c.once("error", reject);
    });
    return c;
  };
  try {
    signalOnConnection(fd, true);
    const first = await connect();
    await waitFor("a SIGIO", () => signals >= 1, 5000);
    signalOnConnection(fd, false);
    const seen = signals;
    const second = await connect();
    // the connection is there (poll sees it), the signal is not
    expect(pendingConnections([fd])).toEqual([fd]);
    await Bun.sleep(100);
    expect(signals).toBe(seen);
    first.destroy();
    second.destroy();
  } finally {
    signalOnConnection(fd, false);
    process.off("SIGIO", onSigio);
    closeSync(fd);
  }
});

describe("listenTcpSocket: the smtpd services' sockets the master holds", () => {
  const connectTo = (host: string, port: number) =>
    new Promise<string>((resolve, reject) => {
      let got = "";
      const s = createConnection({ host, port });
      s.on("data", (d) => (got += d));
      s.on("close", () => resolve(got));
      s.on("error", reject);
    });

  test("IPv4 and IPv6 sockets on one port; a connection waits until a listener takes the descriptor", async () => {
    const port = freePort();
    const v4 = listenTcpSocket(parseIpAddress("127.0.0.1")!.bytes, port);
    // IPV6_V6ONLY: the IPv6 socket does not claim the IPv4 side of the port
    const v6 = listenTcpSocket(parseIpAddress("::1")!.bytes, port);
    try {
      // nothing accepts yet: the connection waits in the backlog, which poll(2) reports
      const answer = connectTo("127.0.0.1", port);
      await waitFor("a pending connection", () => pendingConnections([v4, v6]).length > 0);
      expect(pendingConnections([v4, v6])).toEqual([v4]);
      const listeners = [v4, v6].map((fd) =>
        Bun.listen({ fd, socket: { open: (s: { end(text: string): void }) => void s.end(`hello ${fd === v4 ? "v4" : "v6"}\n`), data() {} } } as unknown as Parameters<typeof Bun.listen>[0]),
      );
      expect(await answer).toBe("hello v4\n");
      expect(await connectTo("::1", port)).toBe("hello v6\n");
      for (const l of listeners) l.stop();
    } finally {
      for (const fd of [v4, v6]) {
        try {
          closeSync(fd);
        } catch {}
      }
    }
  });

  test("a port in use is refused with the reason; a bad address or port is refused before any socket", () => {
    const port = freePort();
    const fd = listenTcpSocket(parseIpAddress("127.0.0.1")!.bytes, port);
    try {
      expect(() => listenTcpSocket(parseIpAddress("127.0.0.1")!.bytes, port)).toThrow(/^bind: Address already in use$/);
    } finally {
      closeSync(fd);
    }
    expect(() => listenTcpSocket(new Uint8Array(5), port)).toThrow("an address is 4 or 16 bytes");
    expect(() => listenTcpSocket(parseIpAddress("127.0.0.1")!.bytes, 70000)).toThrow("port 70000 is out of range");
  });
});
