/**
 * A running postern with SMTP services for end-to-end tests: the daemon
 * tests' MailSystem (private configuration, queue and log, `postern start
 * -c`, cleanup that kills what it started) with [services.*] tables that
 * listen on 127.0.0.1 at free ports only. Local and remote delivery are
 * switched off (retry: transports), so accepted mail stays in the queue
 * for the test to read.
 *
 * Also a raw SMTP client over a TCP socket (optionally TLS, optionally
 * upgraded with STARTTLS) for the tests that must control every byte:
 * pipelining, smuggling payloads, limits.
 */
import { readFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from "node:tls";
import { join } from "node:path";
import { decodeQueueFile, type QueueFile } from "../../src/global/queue/format.ts";
import { MailSystem, tomlValue, type Params } from "./mail-system.ts";
import { freePort } from "./ports.ts";
import { waitFor } from "./wait.ts";

export { isRoot, HOST } from "./mail-system.ts";
export { waitFor } from "./wait.ts";
export { freePort } from "./ports.ts";

export type ServiceTable = Record<string, string | number | boolean>;

export class SmtpdSystem extends MailSystem {
  readonly ports: Record<string, number> = {};
  /** The [services.*] tables, kept in postern.toml through every writeConfig(). */
  servicesToml: string | undefined;

  override writeConfig(changes: Record<string, string | number | boolean | undefined> = {}, extra?: string): void {
    super.writeConfig(changes, extra ?? this.servicesToml ?? "");
  }

  /**
   * `services`: the [services.NAME] tables; each gets `listen = "127.0.0.1:PORT"` with a
   * free port unless it has its own, and process_limit 20 unless set: one smtpd process (one anvil,
   * one log) that serves up to 20 sessions at once.
   */
  constructor(params: Params = {}, services: Record<string, ServiceTable> = { smtp: {} }) {
    super({
      default_transport: "retry:4.4.1 remote delivery is switched off by the test",
      local_transport: "retry:4.4.1 local delivery is switched off by the test",
      relay_transport: "retry:4.4.1 relaying is switched off by the test",
      mynetworks: "10.255.255.0/24",
      ...params,
    });
    let extra = "";
    for (const [name, table] of Object.entries(services)) {
      const t: ServiceTable = { process_limit: 20, ...table };
      if (t.listen === undefined) {
        this.ports[name] = freePort();
        t.listen = `127.0.0.1:${this.ports[name]}`;
      } else this.ports[name] = Number(String(t.listen).split(":").at(-1));
      extra += `\n[services.${name}]\n${Object.entries(t).map(([k, v]) => `${k} = ${tomlValue(v)}`).join("\n")}\n`;
    }
    this.servicesToml = extra;
    this.writeConfig();
  }

  get port(): number {
    return this.ports.smtp ?? Object.values(this.ports)[0]!;
  }

  /** Starts the system and waits until every service answers with its greeting. */
  override async start(): Promise<void> {
    await super.start();
    for (const [name, port] of Object.entries(this.ports)) {
      await waitFor(`service ${name} on port ${port}`, async () => {
        try {
          const c = await RawSmtp.connect(port, { implicitTls: name === "smtps" || String(this.params.smtpd_tls_wrappermode) === "yes" });
          const greeting = await c.reply(5000);
          c.destroy();
          return greeting.startsWith("220 ");
        } catch {
          return false;
        }
      });
    }
    this.track();
  }

  /** The queued message whose Subject is `subject`, read from whichever queue holds it now. */
  async message(subject: string, timeoutMs = 20_000): Promise<QueueFile & { id: string; text: string }> {
    return waitFor(
      `the queued message with Subject "${subject}"`,
      () => {
        for (const q of ["incoming", "active", "deferred", "hold"]) {
          for (const id of this.queueIds(q)) {
            try {
              const f = decodeQueueFile(readFileSync(join(this.queue, q, id)));
              const text = Buffer.from(f.content).toString("latin1");
              if (text.includes(`\nSubject: ${subject}\n`)) return { ...f, id, text };
            } catch {}
          }
        }
        return undefined;
      },
      timeoutMs,
    );
  }

  /** Every queued message (any queue) whose content contains `needle`. */
  messagesContaining(needle: string): string[] {
    const out: string[] = [];
    for (const q of ["incoming", "active", "deferred", "hold"]) {
      for (const id of this.queueIds(q)) {
        try {
          if (readFileSync(join(this.queue, q, id), "latin1").includes(needle)) out.push(id);
        } catch {}
      }
    }
    return out;
  }
}

/** A raw SMTP client: send exact bytes, read whole replies. */
export class RawSmtp {
  #socket: Socket | TLSSocket;
  #buffer = "";
  #closed = false;
  #waiters: Array<() => void> = [];

  private constructor(socket: Socket | TLSSocket) {
    this.#socket = socket;
    this.#attach(socket);
  }

  #attach(socket: Socket | TLSSocket): void {
    socket.on("data", (d: Buffer) => {
      this.#buffer += d.toString("latin1");
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on("close", () => {
      this.#closed = true;
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on("error", () => {});
  }

  static connect(port: number, opts: { implicitTls?: boolean; servername?: string } = {}): Promise<RawSmtp> {
    return new Promise((resolve, reject) => {
      const socket = opts.implicitTls ? tlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false, servername: opts.servername ?? "localhost" }) : netConnect({ host: "127.0.0.1", port });
      socket.once(opts.implicitTls ? "secureConnect" : "connect", () => resolve(new RawSmtp(socket)));
      socket.once("error", reject);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  get tls(): TLSSocket | undefined {
    return "getProtocol" in this.#socket ? (this.#socket as TLSSocket) : undefined;
  }

  send(data: string | Buffer): void {
    this.#socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data);
  }

  /** The next whole reply (all its lines); "" when the server closed the connection first. */
  async reply(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-.*\r\n)*\d{3}(?: .*)?\r\n/.exec(this.#buffer);
      if (m) {
        this.#buffer = this.#buffer.slice(m[0].length);
        return m[0];
      }
      if (this.#closed) return "";
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms; have ${JSON.stringify(this.#buffer)}`);
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, Math.min(left, 200));
      });
    }
  }

  async cmd(line: string, timeoutMs?: number): Promise<string> {
    this.send(`${line}\r\n`);
    return this.reply(timeoutMs);
  }

  /** STARTTLS was accepted: upgrade this connection (any certificate). */
  async upgrade(options: ConnectionOptions = {}): Promise<void> {
    const plain = this.#socket as Socket;
    plain.removeAllListeners("data");
    const secure = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: "localhost", ...options });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", () => resolve());
      secure.once("error", reject);
    });
    this.#socket = secure;
    this.#attach(secure);
  }

  /** Resolves once the server has closed the connection. */
  async waitClosed(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed && Date.now() < deadline) await Bun.sleep(20);
    return this.#closed;
  }

  destroy(): void {
    this.#socket.destroy();
  }

  async quit(): Promise<void> {
    if (!this.#closed) {
      this.send("QUIT\r\n");
      await this.waitClosed(5000);
    }
    this.destroy();
  }
}

/** Runs swaks against the service; resolves with its exit code and transcript. */
export async function swaks(args: string[]): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn(["swaks", "--timeout", "20", ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out: out + err };
}

/** Runs a python3 script (smtplib) with arguments; resolves with exit code and output. */
export async function python(script: string, args: string[] = []): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn(["python3", "-c", script, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" } });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out: out + err };
}
