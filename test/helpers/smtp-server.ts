/**
 * A scriptable SMTP/LMTP server for the client's tests, on 127.0.0.1 (or a
 * unix-domain socket): EHLO extensions, STARTTLS or implicit TLS with the
 * test certificate, AUTH PLAIN/LOGIN/XOAUTH2 against a table, and hooks
 * that choose the reply to any command, recipient or message. It records
 * every command line, every accepted message, and how many connections and
 * transactions it saw, so tests can assert on the conversation.
 *
 * Test-only; listens on loopback and stops when stop() is called (tests
 * call it in afterAll).
 */
import { Connection, listenConnections, type Listener } from "../../src/util/net/connection.ts";
import { unlinkSync } from "node:fs";

export interface ReceivedMessage {
  sender: string;
  mailParams: string;
  recipients: string[];
  rcptParams: string[];
  /** The DATA as received, dot-unstuffed, CRLF line ends, without the final ".". */
  data: string;
  tls: boolean;
  /** The SNI name the client sent in the TLS handshake. */
  sni?: string;
  authUser?: string;
  connection: number;
}

export interface FakeSmtpOptions {
  /** Loopback address and port to listen on (default 127.0.0.1, any free port). */
  hostname?: string;
  port?: number;
  banner?: string;
  /** EHLO keyword lines after the first (default: PIPELINING, SIZE 10240000, 8BITMIME, DSN, ENHANCEDSTATUSCODES). */
  extensions?: string[];
  /** Reply to EHLO instead of the 250 list (e.g. "502 5.5.1 no EHLO"). */
  ehloReply?: string;
  tls?: { cert: string; key: string };
  /** Announce STARTTLS (needs tls). */
  starttls?: boolean;
  /** Say 220 to STARTTLS, then send garbage instead of a TLS handshake and hang up (connections for which it returns true). */
  brokenStarttls?: (connection: number) => boolean;
  /** TLS from the first byte (port 465 style; needs tls). */
  implicitTls?: boolean;
  /** AUTH mechanisms to announce and accept. */
  auth?: { mechanisms: string[]; users: Record<string, string>; tokens?: Record<string, string>; onlyUnderTls?: boolean };
  lmtp?: boolean;
  /** Listen on this unix-domain socket instead of TCP. */
  unix?: string;
  /** A reply for any command line (upper-cased verb in `verb`); undefined keeps the default, "" says nothing. */
  onCommand?: (verb: string, line: string, state: { connection: number; transaction: number }) => string | undefined;
  /** A reply for RCPT TO <address>; undefined accepts. */
  onRcpt?: (address: string) => string | undefined;
  /** The reply to the end of data (SMTP) or one per accepted recipient (LMTP); default 250. */
  onData?: (msg: ReceivedMessage) => string | string[] | undefined;
  /** Close the connection right after the greeting of the Nth connection (1-based). */
  hangUpAfterGreeting?: (connection: number) => boolean;
}

export class FakeSmtpServer {
  readonly messages: ReceivedMessage[] = [];
  readonly commands: string[] = [];
  connections = 0;
  transactions = 0;
  #listener: Listener;
  readonly #opts: FakeSmtpOptions;
  readonly #open = new Set<Connection>();

  private constructor(opts: FakeSmtpOptions) {
    this.#opts = opts;
    const tls = opts.implicitTls ? opts.tls : undefined;
    this.#listener = opts.unix
      ? this.#listenUnix(opts.unix)
      : listenConnections({ hostname: opts.hostname ?? "127.0.0.1", port: opts.port ?? 0, ...(tls ? { tls } : {}) }, (conn) => this.#serve(conn));
  }

  static start(opts: FakeSmtpOptions = {}): FakeSmtpServer {
    return new FakeSmtpServer(opts);
  }

  get port(): number {
    return this.#listener.port;
  }

  stop(): void {
    for (const c of this.#open) c.destroy();
    this.#listener.stop(true);
    if (this.#opts.unix) {
      try {
        unlinkSync(this.#opts.unix);
      } catch {}
    }
  }

  /** The shared module listens on TCP only; a unix socket gets a Connection through the same internal hooks. */
  #listenUnix(path: string): Listener {
    try {
      unlinkSync(path);
    } catch {}
    const server = Bun.listen<{ conn: Connection | undefined; superseded: boolean }>({
      unix: path,
      socket: {
        open: (s) => this.#serve(new Connection(s as never)),
        data: (s, chunk) => s.data?.conn?._data(chunk),
        drain: (s) => s.data?.conn?._drain(),
        close: (s) => s.data?.conn?._closed(),
        error: (s, e) => s.data?.conn?._closed(e),
      },
    });
    return { port: 0, hostname: path, stop: (b?: boolean) => server.stop(b) };
  }

  #serve(conn: Connection): void {
    const number = ++this.connections;
    this.#open.add(conn);
    conn.onClose(() => this.#open.delete(conn));
    const o = this.#opts;
    const state = { connection: number, transaction: 0 };
    let buffer = "";
    let inData = false;
    let dataLines: string[] = [];
    let msg: ReceivedMessage | undefined;
    let authUser: string | undefined;
    let authStep: { mech: string; user?: string } | undefined;
    let greeted = false;
    let sni: string | undefined;
    const send = (text: string) => conn.write(text.endsWith("\r\n") ? text : `${text}\r\n`);
    const reset = () => {
      msg = undefined;
    };
    const domain = "fake.test";

    send(o.banner ?? `220 ${domain} ESMTP fake`);
    if (o.hangUpAfterGreeting?.(number)) {
      void conn.end();
      return;
    }

    const extensions = () => {
      const ext = [...(o.extensions ?? ["PIPELINING", "SIZE 10240000", "8BITMIME", "DSN", "ENHANCEDSTATUSCODES"])];
      if (o.starttls && o.tls && !conn.secure) ext.push("STARTTLS");
      if (o.auth && (!o.auth.onlyUnderTls || conn.secure)) ext.push(`AUTH ${o.auth.mechanisms.join(" ")}`);
      return ext;
    };

    const finishData = () => {
      const m = msg!;
      m.data = dataLines.map((l) => (l.startsWith(".") ? l.slice(1) : l)).join("\r\n") + (dataLines.length ? "\r\n" : "");
      this.messages.push(m);
      this.transactions++;
      state.transaction++;
      const custom = o.onData?.(m);
      if (o.lmtp) {
        const replies = Array.isArray(custom) ? custom : m.recipients.map(() => (custom as string | undefined) ?? "250 2.1.5 Ok");
        for (const r of replies) send(r);
      } else {
        send((custom as string | undefined) ?? `250 2.0.0 Ok: queued as Q${this.messages.length}`);
      }
      reset();
    };

    const handle = async (line: string): Promise<void> => {
      if (inData) {
        if (line === ".") {
          inData = false;
          finishData();
        } else dataLines.push(line);
        return;
      }
      this.commands.push(line);
      if (authStep) {
        const step = authStep;
        if (line === "*") {
          authStep = undefined;
          send("501 5.7.0 Authentication aborted");
          return;
        }
        if (step.mech === "LOGIN" && step.user === undefined) {
          step.user = Buffer.from(line, "base64").toString();
          send(`334 ${Buffer.from("Password:").toString("base64")}`);
          return;
        }
        if (step.mech === "LOGIN") {
          authStep = undefined;
          const pass = Buffer.from(line, "base64").toString();
          if (o.auth?.users[step.user!] === pass) {
            authUser = step.user;
            send("235 2.7.0 Authentication successful");
          } else send("535 5.7.8 Error: authentication failed: authentication failure");
          return;
        }
        if (step.mech === "XOAUTH2-ERR") {
          authStep = undefined;
          send("535 5.7.8 Username and Password not accepted");
          return;
        }
      }
      const verb = (line.split(" ")[0] ?? "").toUpperCase();
      const custom = o.onCommand?.(verb, line, state);
      if (custom === "") return;
      if (custom !== undefined) {
        if (verb === "MAIL" && /^2/.test(custom)) msg = { sender: "", mailParams: "", recipients: [], rcptParams: [], data: "", tls: conn.secure, connection: number };
        if (verb === "QUIT") {
          send(custom);
          void conn.end();
          return;
        }
        send(custom);
        if (/^421/.test(custom)) void conn.end();
        return;
      }
      switch (verb) {
        case "EHLO":
        case "LHLO": {
          if ((verb === "EHLO") === !!o.lmtp) {
            send("500 5.5.1 Command unrecognized");
            return;
          }
          if (o.ehloReply && verb === "EHLO") {
            send(o.ehloReply);
            return;
          }
          greeted = true;
          const ext = extensions();
          const lines = [domain, ...ext];
          send(lines.map((l, i) => `250${i === lines.length - 1 ? " " : "-"}${l}`).join("\r\n"));
          return;
        }
        case "HELO":
          greeted = true;
          send(`250 ${domain}`);
          return;
        case "STARTTLS":
          if (!o.starttls || !o.tls || conn.secure) {
            send("502 5.5.1 STARTTLS not offered");
            return;
          }
          send("220 2.0.0 Ready to start TLS");
          buffer = "";
          if (o.brokenStarttls?.(number)) {
            send("this is not a TLS handshake");
            void conn.end();
            return;
          }
          try {
            const info = await conn.startTls({ isServer: true, cert: o.tls.cert, key: o.tls.key });
            sni = info.servername;
          } catch {
            conn.destroy();
          }
          greeted = false;
          authUser = undefined;
          return;
        case "AUTH": {
          const [, mechRaw, initial] = line.split(" ");
          const mech = (mechRaw ?? "").toUpperCase();
          if (!o.auth?.mechanisms.includes(mech)) {
            send("504 5.5.4 Unrecognized authentication type");
            return;
          }
          if (mech === "PLAIN") {
            const decoded = Buffer.from(initial ?? "", "base64").toString().split("\0");
            const [, user, pass] = decoded;
            if (user !== undefined && o.auth.users[user] === pass) {
              authUser = user;
              send("235 2.7.0 Authentication successful");
            } else send("535 5.7.8 Error: authentication failed: authentication failure");
            return;
          }
          if (mech === "LOGIN") {
            authStep = { mech: "LOGIN" };
            send(`334 ${Buffer.from("Username:").toString("base64")}`);
            return;
          }
          if (mech === "XOAUTH2") {
            const decoded = Buffer.from(initial ?? "", "base64").toString();
            const m = /^user=([^\x01]*)\x01auth=Bearer ([^\x01]*)\x01\x01$/.exec(decoded);
            if (m && o.auth.tokens?.[m[1]!] === m[2]) {
              authUser = m[1];
              send("235 2.7.0 Accepted");
            } else {
              authStep = { mech: "XOAUTH2-ERR" };
              send(`334 ${Buffer.from('{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}').toString("base64")}`);
            }
            return;
          }
          send("504 5.5.4 Unrecognized authentication type");
          return;
        }
        case "MAIL": {
          if (!greeted) {
            send("503 5.5.1 Error: send HELO/EHLO first");
            return;
          }
          const m = /^MAIL FROM:<([^>]*)>\s*(.*)$/i.exec(line);
          if (!m) {
            send("501 5.5.4 Syntax: MAIL FROM:<address>");
            return;
          }
          msg = { sender: m[1]!, mailParams: m[2]!, recipients: [], rcptParams: [], data: "", tls: conn.secure, connection: number, ...(authUser ? { authUser } : {}), ...(sni ? { sni } : {}) };
          send("250 2.1.0 Ok");
          return;
        }
        case "RCPT": {
          if (!msg) {
            send("503 5.5.1 Error: need MAIL command");
            return;
          }
          const m = /^RCPT TO:<([^>]*)>\s*(.*)$/i.exec(line);
          if (!m) {
            send("501 5.5.4 Syntax: RCPT TO:<address>");
            return;
          }
          const rejection = o.onRcpt?.(m[1]!);
          if (rejection) {
            send(rejection);
            return;
          }
          msg.recipients.push(m[1]!);
          msg.rcptParams.push(m[2]!);
          send("250 2.1.5 Ok");
          return;
        }
        case "DATA":
          if (!msg || msg.recipients.length === 0) {
            send("554 5.5.1 Error: no valid recipients");
            return;
          }
          inData = true;
          dataLines = [];
          send("354 End data with <CR><LF>.<CR><LF>");
          return;
        case "RSET":
          reset();
          send("250 2.0.0 Ok");
          return;
        case "NOOP":
          send("250 2.0.0 Ok");
          return;
        case "QUIT":
          send("221 2.0.0 Bye");
          void conn.end();
          return;
        default:
          send("502 5.5.2 Error: command not recognized");
      }
    };

    let chain = Promise.resolve();
    conn.onData((chunk) => {
      buffer += Buffer.from(chunk).toString("latin1");
      for (;;) {
        const nl = buffer.indexOf("\n");
        if (nl < 0) break;
        const line = buffer.slice(0, nl).replace(/\r$/, "");
        buffer = buffer.slice(nl + 1);
        // STARTTLS must complete before the next line is read
        chain = chain.then(() => handle(line));
        if (line.toUpperCase() === "STARTTLS") {
          buffer = "";
          break;
        }
      }
    });
  }
}
