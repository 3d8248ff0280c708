/**
 * A scripted milter for tests: a Sendmail milter protocol server on
 * 127.0.0.1 (or a unix socket) written here without postern's codec, so a
 * codec mistake cannot cancel itself out. The test gives the negotiation
 * answer and a script that says, for each event, which replies to send;
 * every event and the macros sent with it are recorded.
 *
 * Runs in the test process; it trusts postern only as far as the test's
 * assertions go (it records what it gets).
 */
import { createServer, type Server, type Socket } from "node:net";

export interface MilterEvent {
  /** The command code ("C", "H", "M", "R", "T", "L", "N", "B", "E", "A", "Q", "U"). */
  code: string;
  data: Buffer;
  /** NUL-separated strings of the data, for reading. */
  strings: string[];
  /** The macros sent for this command (SMFIC_MACRO just before it). */
  macros: Record<string, string>;
  /** Which connection (0, 1, ...). */
  connection: number;
}

function pkt(code: string, data: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(data.length + 1, 0);
  head[4] = code.charCodeAt(0);
  return Buffer.concat([head, data]);
}
const z = (...s: string[]) => Buffer.from(s.map((x) => `${x}\0`).join(""), "latin1");
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
};

/** Reply packets a script returns. */
export const R = {
  continue: () => pkt("c"),
  accept: () => pkt("a"),
  reject: () => pkt("r"),
  tempfail: () => pkt("t"),
  discard: () => pkt("d"),
  shutdown: () => pkt("4"),
  progress: () => pkt("p"),
  skip: () => pkt("s"),
  replycode: (text: string) => pkt("y", z(text)),
  quarantine: (reason: string) => pkt("q", z(reason)),
  addheader: (name: string, value: string) => pkt("h", z(name, value)),
  insheader: (index: number, name: string, value: string) => pkt("i", Buffer.concat([u32(index), z(name, value)])),
  chgheader: (index: number, name: string, value: string) => pkt("m", Buffer.concat([u32(index), z(name, value)])),
  replbody: (body: string) => pkt("b", Buffer.from(body, "latin1")),
  chgfrom: (sender: string, args?: string) => pkt("e", args === undefined ? z(sender) : z(sender, args)),
  addrcpt: (rcpt: string) => pkt("+", z(rcpt)),
  addrcptPar: (rcpt: string, args: string) => pkt("2", z(rcpt, args)),
  delrcpt: (rcpt: string) => pkt("-", z(rcpt)),
  /** Anything, for the malformed-packet tests. */
  raw: (bytes: Buffer) => bytes,
};

/** A script that answers the end of the message with `replies`, then continue, and every other event with the default. */
export function atEndOfMessage(...replies: Buffer[]): (e: MilterEvent) => Buffer[] | undefined {
  return (e) => (e.code === "E" ? [...replies, R.continue()] : undefined);
}

export interface MilterOptions {
  version?: number;
  actions?: number;
  /** SMFIP_* bits: steps skipped, steps not answered. */
  protocol?: number;
  /** Macro lists asked for in the negotiation: [stage, "names"]. */
  macroLists?: Array<[number, string]>;
  /**
   * Replies for an event; undefined: continue (nothing for events the milter said it does not answer).
   * "silence": send nothing (a milter that hangs).
   */
  script?: (e: MilterEvent) => Buffer[] | Buffer | "silence" | undefined;
  /** Unix socket path instead of TCP. */
  path?: string;
}

/** SMFIP bits the server's "no reply" steps use. */
const NO_REPLY: Record<string, number> = { C: 1 << 12, H: 1 << 13, M: 1 << 14, R: 1 << 15, T: 1 << 16, U: 1 << 17, N: 1 << 18, B: 1 << 19, L: 1 << 7 };

export class ScriptedMilter {
  readonly events: MilterEvent[] = [];
  #server: Server | undefined;
  #sockets = new Set<Socket>();
  #connections = 0;
  port = 0;

  constructor(readonly opts: MilterOptions = {}) {}

  /** "inet:127.0.0.1:PORT" or "unix:PATH". */
  get address(): string {
    return this.opts.path ? `unix:${this.opts.path}` : `inet:127.0.0.1:${this.port}`;
  }

  get connections(): number {
    return this.#connections;
  }

  async start(): Promise<this> {
    const server = createServer((sock) => this.#serve(sock));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      if (this.opts.path) server.listen(this.opts.path, () => resolve());
      else server.listen(0, "127.0.0.1", () => resolve());
    });
    const a = server.address();
    if (a && typeof a === "object") this.port = a.port;
    return this;
  }

  #serve(sock: Socket): void {
    const connection = this.#connections++;
    this.#sockets.add(sock);
    sock.on("close", () => this.#sockets.delete(sock));
    sock.on("error", () => {});
    let buf = Buffer.alloc(0);
    let macros: Record<string, Record<string, string>> = {};
    const protocol = this.opts.protocol ?? 0;
    sock.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 4) {
        const len = buf.readUInt32BE(0);
        if (buf.length < 4 + len) break;
        const code = String.fromCharCode(buf[4]!);
        const data = buf.subarray(5, 4 + len);
        buf = buf.subarray(4 + len);
        if (code === "O") {
          const lists = (this.opts.macroLists ?? []).map(([stage, names]) => Buffer.concat([u32(stage), z(names)]));
          sock.write(pkt("O", Buffer.concat([u32(this.opts.version ?? 6), u32(this.opts.actions ?? 0x1ff), u32(protocol), ...lists])));
          continue;
        }
        if (code === "D") {
          const parts = data.subarray(1).toString("latin1").split("\0");
          const m: Record<string, string> = {};
          for (let i = 0; i + 1 < parts.length; i += 2) m[parts[i]!] = parts[i + 1]!;
          macros[String.fromCharCode(data[0]!)] = m;
          continue;
        }
        const strings = code === "B" ? [] : data.toString("latin1").split("\0").slice(0, -1);
        const e: MilterEvent = { code, data: Buffer.from(data), strings, macros: macros[code] ?? {}, connection };
        this.events.push(e);
        if (code === "A") {
          macros = {};
          continue;
        }
        if (code === "Q") {
          sock.end();
          continue;
        }
        const out = this.opts.script?.(e);
        if (out === "silence") continue;
        if ((NO_REPLY[code] ?? 0) & protocol) continue;
        const list = out === undefined ? [R.continue()] : Array.isArray(out) ? out : [out];
        for (const p of list) sock.write(p);
      }
    });
  }

  /** Events of one kind, in order. */
  of(code: string): MilterEvent[] {
    return this.events.filter((e) => e.code === code);
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}
