/**
 * The least the SMTP -> local Maildir path can cost in this runtime (issue
 * 16): the hops postern's daemons make, with nothing else. One program,
 * compiled like dist/postern, whose first argument picks the role:
 *
 * - `smtpd PORT QUEUE QMGR`: answers SMTP on 127.0.0.1:PORT (every command
 *   250, DATA 354), writes each message to QUEUE/tmp, fsyncs it, renames it
 *   into QUEUE/incoming, fsyncs that directory, tells the queue manager its
 *   name on the unix socket QMGR, then answers 250.
 * - `qmgr QUEUE SOCKET LOCAL`: reads each named file, hands it to the local
 *   role on the unix socket LOCAL (a 4-byte length, the name, a newline, the
 *   content), and unlinks it when the reply comes.
 * - `local SOCKET MAILDIR`: passes each request to one of two `worker`
 *   children over their stdin and answers when the worker does.
 * - `worker MAILDIR`: writes each message into MAILDIR/tmp, fsyncs it, links
 *   it into MAILDIR/new, unlinks the tmp name and fsyncs new/.
 * - `relay QUEUE SOCKET SINKPORT` (the relay path's queue manager and SMTP
 *   client in one, as postern's qmgr is): reads each named file and sends it
 *   over one kept SMTP connection to 127.0.0.1:SINKPORT (MAIL, RCPT and DATA
 *   pipelined, then the content as stored: still dot-stuffed), one message
 *   at a time, and unlinks it after the 250; SINKPORT 0 delivers nothing and
 *   unlinks at once (the SMTP side alone). With a fourth argument `fsync`
 *   it fsyncs the file after the sink's 250 and before the unlink, as
 *   postern's queue manager fsyncs a delivery's `D` records (Postfix's does
 *   not).
 *
 * Bench-only (bench/path-floor.ts and bench/relay-floor.ts build and run it
 * on a private tree as root); it trusts its peers and checks nothing a real
 * daemon must.
 */
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";

const [role, ...args] = process.argv.slice(2);

/** Writes all of `data` to a new file `path`, fsyncs and closes it. */
function writeDurable(path: string, data: Uint8Array): void {
  const fd = openSync(path, "wx", 0o600);
  for (let off = 0; off < data.length; ) off += writeSync(fd, data, off);
  fsyncSync(fd);
  closeSync(fd);
}

function fsyncDir(dir: number): void {
  fsyncSync(dir);
}

/** Splits a byte stream into frames of a 4-byte big-endian length and that many bytes. */
class Frames {
  #buf = new Uint8Array(0);
  push(chunk: Uint8Array, each: (frame: Uint8Array) => void): void {
    const joined = new Uint8Array(this.#buf.length + chunk.length);
    joined.set(this.#buf);
    joined.set(chunk, this.#buf.length);
    let off = 0;
    while (joined.length - off >= 4) {
      const n = new DataView(joined.buffer, joined.byteOffset + off).getUint32(0);
      if (joined.length - off - 4 < n) break;
      each(joined.subarray(off + 4, off + 4 + n));
      off += 4 + n;
    }
    this.#buf = joined.slice(off);
  }
}

function frame(parts: Uint8Array[]): Uint8Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(4 + n);
  new DataView(out.buffer).setUint32(0, n);
  let off = 4;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A unix socket whose clients send queue file names, one a line; `onLines` gets each chunk's complete lines. */
function listenLines(socket: string, onLines: (lines: string[]) => void): void {
  Bun.listen<{ line: string }>({
    unix: socket,
    socket: {
      open(s) {
        s.data = { line: "" };
      },
      data(s, chunk) {
        const lines = (s.data.line + dec.decode(chunk)).split("\n");
        s.data.line = lines.pop() ?? "";
        onLines(lines);
      },
    },
  });
}
let seq = 0;

if (role === "smtpd") {
  const [port, queue, qmgrSocket] = args as [string, string, string];
  const incoming = openSync(`${queue}/incoming`, "r");
  const qmgr = await Bun.connect({ unix: qmgrSocket, socket: { data() {} } });
  interface Session {
    /** Text not yet handled: a partial command line, or the DATA body so far. */
    pending: string;
    inData: boolean;
  }
  const handle = (s: import("bun").Socket<Session>, text: string): void => {
    const st = s.data;
    st.pending += text;
    for (;;) {
      if (st.inData) {
        const end = st.pending.indexOf("\r\n.\r\n");
        if (end < 0) return;
        const name = `${process.pid}.${++seq}`;
        writeDurable(`${queue}/tmp/${name}`, enc.encode(st.pending.slice(0, end + 2)));
        renameSync(`${queue}/tmp/${name}`, `${queue}/incoming/${name}`);
        fsyncDir(incoming);
        qmgr.write(`${name}\n`);
        st.pending = st.pending.slice(end + 5);
        st.inData = false;
        s.write("250 2.0.0 Ok: queued\r\n");
        continue;
      }
      const nl = st.pending.indexOf("\r\n");
      if (nl < 0) return;
      const cmd = st.pending.slice(0, 4).toUpperCase();
      st.pending = st.pending.slice(nl + 2);
      if (cmd === "DATA") {
        st.inData = true;
        s.write("354 End data with <CR><LF>.<CR><LF>\r\n");
      } else if (cmd === "QUIT") {
        s.write("221 2.0.0 Bye\r\n");
        s.end();
        return;
      } else s.write("250 Ok\r\n");
    }
  };
  Bun.listen<Session>({
    hostname: "127.0.0.1",
    port: Number(port),
    socket: {
      open(s) {
        s.data = { pending: "", inData: false };
        s.write("220 floor ESMTP\r\n");
      },
      data(s, chunk) {
        handle(s, dec.decode(chunk));
      },
    },
  });
} else if (role === "qmgr") {
  const [queue, socket, localSocket] = args as [string, string, string];
  const frames = new Frames();
  const local = await Bun.connect({
    unix: localSocket,
    socket: {
      data(_s, chunk) {
        frames.push(chunk, (f) => unlinkSync(`${queue}/incoming/${dec.decode(f)}`));
      },
    },
  });
  listenLines(socket, (lines) => {
    for (const name of lines) local.write(frame([enc.encode(`${name}\n`), readFileSync(`${queue}/incoming/${name}`)]));
  });
} else if (role === "local") {
  const [socket, maildir] = args as [string, string];
  const workers = [0, 1].map(() => {
    const frames = new Frames();
    const waiting: Array<() => void> = [];
    const child = Bun.spawn([process.execPath, "worker", maildir], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    (async () => {
      for await (const chunk of child.stdout) frames.push(chunk, () => waiting.shift()?.());
    })();
    return { child, waiting };
  });
  let next = 0;
  Bun.listen<{ frames: Frames }>({
    unix: socket,
    socket: {
      open(s) {
        s.data = { frames: new Frames() };
      },
      data(s, chunk) {
        s.data.frames.push(chunk, (f) => {
          const nl = f.indexOf(10);
          const name = f.slice(0, nl);
          const w = workers[next++ % workers.length]!;
          w.waiting.push(() => s.write(frame([name])));
          w.child.stdin.write(frame([f.subarray(nl + 1)]));
          w.child.stdin.flush();
        });
      },
    },
  });
} else if (role === "worker") {
  const [maildir] = args as [string];
  const newDir = openSync(`${maildir}/new`, "r");
  const frames = new Frames();
  for await (const chunk of Bun.stdin.stream()) {
    frames.push(chunk, (content) => {
      const name = `${Date.now()}.${process.pid}_${++seq}.floor`;
      writeDurable(`${maildir}/tmp/${name}`, content);
      linkSync(`${maildir}/tmp/${name}`, `${maildir}/new/${name}`);
      unlinkSync(`${maildir}/tmp/${name}`);
      fsyncDir(newDir);
      process.stdout.write(frame([enc.encode("ok")]));
    });
  }
} else if (role === "relay") {
  const [queue, socket, sinkPort, sync] = args as [string, string, string, string | undefined];
  const waiting: string[] = [];
  let busy = false;
  /** Final reply lines ("NNN text") still expected before the next step, and that step. */
  let expect = 0;
  let step: (() => void) | undefined;
  let partial = "";
  const sink =
    sinkPort === "0"
      ? undefined
      : await new Promise<import("bun").Socket>((resolve) => {
          let greeted = false;
          const s = Bun.connect({
            hostname: "127.0.0.1",
            port: Number(sinkPort),
            socket: {
              data(sock, chunk) {
                const lines = (partial + dec.decode(chunk)).split("\r\n");
                partial = lines.pop() ?? "";
                for (const line of lines) {
                  if (line[3] === "-") continue;
                  if (!greeted) {
                    // the banner, then EHLO's reply
                    if (line.startsWith("220")) sock.write("EHLO floor\r\n");
                    else {
                      greeted = true;
                      resolve(sock);
                    }
                    continue;
                  }
                  if (!line.startsWith("2") && !line.startsWith("3")) throw new Error(`relay floor: sink said ${line}`);
                  if (--expect === 0) step?.();
                }
              },
            },
          });
          void s;
        });
  const next = (): void => {
    const name = waiting.shift();
    if (name === undefined) {
      busy = false;
      return;
    }
    busy = true;
    const path = `${queue}/incoming/${name}`;
    if (!sink) {
      unlinkSync(path);
      return next();
    }
    const content = readFileSync(path);
    // loopback's socket buffer takes a 4 KiB message whole; a short write would be a broken floor
    const put = (data: string | Uint8Array) => {
      if (sink.write(data) !== data.length) throw new Error("relay floor: short write to the sink");
    };
    expect = 3;
    step = () => {
      expect = 1;
      step = () => {
        if (sync === "fsync") {
          const fd = openSync(path, "r+");
          fsyncSync(fd);
          closeSync(fd);
        }
        unlinkSync(path);
        next();
      };
      put(content);
      put(".\r\n");
    };
    put("MAIL FROM:<sender@localhost>\r\nRCPT TO:<rcpt@example.com>\r\nDATA\r\n");
  };
  listenLines(socket, (lines) => {
    waiting.push(...lines);
    if (!busy) next();
  });
} else {
  process.stderr.write("usage: path-floor-roles smtpd|qmgr|local|worker|relay ...\n");
  process.exit(64);
}
