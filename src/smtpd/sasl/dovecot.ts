/**
 * SASL through Dovecot's auth server (smtpd_sasl_type = dovecot), as
 * Postfix's xsasl_dovecot does: one connection per smtpd process to the
 * socket named by smtpd_sasl_path (relative to queue_directory unless
 * absolute), the auth-client protocol version 1:
 *
 *   S: VERSION 1 2 / MECH PLAIN plaintext / ... / DONE
 *   C: VERSION 1 0 / CPID <pid>
 *   C: AUTH <id> <mech> service=smtp nologin lip= rip= [secured] [resp=<b64>]
 *   S: CONT <id> <b64>  |  OK <id> user=<name>  |  FAIL <id> [reason=...]
 *
 * Requests of concurrent sessions share the connection, told apart by id.
 * A lost connection fails the attempts in flight and is opened again on the
 * next one. Dovecot decides which mechanisms exist; `noplaintext` in the
 * security options hides those Dovecot flags as plaintext.
 *
 * Runs in smtpd as mail_owner; Dovecot's answers are parsed strictly and
 * client text is passed on only as base64 or checked tab-free values.
 */
import { connect, type Socket } from "node:net";
import { isAbsolute, join } from "node:path";
import type { Config } from "../../global/config/config.ts";
import type { SaslExchange, SaslServer, SaslStep, SessionView } from "../protocol/types.ts";

interface Mechanism {
  name: string;
  flags: string[];
}

type Pending = (line: string[]) => void;

export class DovecotAuthClient {
  #socket: Socket | undefined;
  #ready: Promise<void> | undefined;
  #buffer = "";
  #mechanisms: Mechanism[] = [];
  #pending = new Map<number, Pending>();
  #nextId = 1;

  constructor(private path: string) {}

  get mechanisms(): readonly Mechanism[] {
    return this.#mechanisms;
  }

  /** Connects (once) and reads the handshake. */
  async ready(): Promise<void> {
    if (this.#socket && !this.#socket.destroyed && this.#ready) return this.#ready;
    this.#ready = new Promise<void>((resolve, reject) => {
      const mechs: Mechanism[] = [];
      let handshake = true;
      const sock = connect(this.path);
      this.#socket = sock;
      this.#buffer = "";
      const timer = setTimeout(() => {
        reject(new Error(`timeout talking to the Dovecot auth server at ${this.path}`));
        sock.destroy();
      }, 10_000);
      sock.setEncoding("utf8");
      sock.on("connect", () => sock.write(`VERSION\t1\t0\nCPID\t${process.pid}\n`));
      sock.on("data", (chunk: string) => {
        this.#buffer += chunk;
        if (this.#buffer.length > 65536) {
          sock.destroy(new Error("Dovecot auth server sent an overlong line"));
          return;
        }
        let nl: number;
        while ((nl = this.#buffer.indexOf("\n")) >= 0) {
          const fields = this.#buffer.slice(0, nl).split("\t");
          this.#buffer = this.#buffer.slice(nl + 1);
          if (handshake) {
            if (fields[0] === "VERSION" && fields[1] !== "1") {
              reject(new Error(`Dovecot auth protocol version ${fields[1]} is not supported`));
              sock.destroy();
              return;
            }
            if (fields[0] === "MECH" && fields[1]) mechs.push({ name: fields[1].toUpperCase(), flags: fields.slice(2) });
            if (fields[0] === "DONE") {
              handshake = false;
              this.#mechanisms = mechs;
              clearTimeout(timer);
              resolve();
            }
            continue;
          }
          const id = Number(fields[1]);
          const waiter = this.#pending.get(id);
          if (waiter) {
            this.#pending.delete(id);
            waiter(fields);
          }
        }
      });
      const fail = (err?: Error) => {
        clearTimeout(timer);
        if (handshake) reject(err ?? new Error(`the Dovecot auth server at ${this.path} closed the connection`));
        for (const w of this.#pending.values()) w(["FAIL", "0", "reason=auth server connection lost"]);
        this.#pending.clear();
        this.#socket = undefined;
      };
      sock.on("error", (err) => fail(new Error(`cannot talk to the Dovecot auth server at ${this.path}: ${err.message}`)));
      sock.on("close", () => fail());
    });
    return this.#ready;
  }

  /** Sends one request line and waits for the answer with the same id. */
  async request(fields: string[]): Promise<string[]> {
    await this.ready();
    const sock = this.#socket;
    if (!sock) return ["FAIL", "0", "reason=auth server connection lost"];
    const id = Number(fields[1]);
    return new Promise<string[]>((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve(["FAIL", String(id), "reason=auth server timeout"]);
      }, 30_000);
      this.#pending.set(id, (line) => {
        clearTimeout(timer);
        resolve(line);
      });
      sock.write(`${fields.join("\t")}\n`);
    });
  }

  newId(): number {
    const id = this.#nextId;
    this.#nextId = (this.#nextId % 0x7fffffff) + 1;
    return id;
  }

  close(): void {
    this.#socket?.destroy();
    this.#socket = undefined;
  }
}

/** Values in a request must not hold tabs or line breaks. */
function clean(v: string): string {
  return v.replace(/[\t\n\r\0]/g, " ");
}

export function dovecotSocketPath(config: Config): string {
  const path = config.str("smtpd_sasl_path");
  return isAbsolute(path) ? path : join(config.str("queue_directory"), path);
}

export class DovecotSasl implements SaslServer {
  readonly client: DovecotAuthClient;

  constructor(private config: Config) {
    this.client = new DovecotAuthClient(dovecotSocketPath(config));
  }

  /** Connects early so EHLO can list the mechanisms; failures are retried on the next session. */
  async prepare(): Promise<void> {
    await this.client.ready();
  }

  mechanisms(tls: boolean): string[] {
    const options = this.config.list(tls ? "smtpd_sasl_tls_security_options" : "smtpd_sasl_security_options").map((o) => o.toLowerCase());
    return this.client.mechanisms
      .filter((m) => !(options.includes("noplaintext") && m.flags.includes("plaintext")))
      .filter((m) => !(options.includes("noanonymous") && m.flags.includes("anonymous")))
      .map((m) => m.name);
  }

  start(mechanism: string, session: SessionView): SaslExchange | undefined {
    if (!this.client.mechanisms.some((m) => m.name === mechanism)) return undefined;
    const id = this.client.newId();
    let started = false;
    const service = clean(this.config.str("smtpd_sasl_service"));
    return {
      step: async (response): Promise<SaslStep> => {
        let answer: string[];
        if (!started) {
          started = true;
          const fields = ["AUTH", String(id), mechanism, `service=${service}`, "nologin", `rip=${clean(session.client.address)}`];
          if (session.tls) fields.push("secured");
          if (response !== undefined) fields.push(`resp=${clean(response)}`);
          answer = await this.client.request(fields);
        } else {
          answer = await this.client.request(["CONT", String(id), clean(response ?? "")]);
        }
        const params = new Map(answer.slice(2).map((f) => [f.slice(0, f.indexOf("=") < 0 ? f.length : f.indexOf("=")), f.slice(f.indexOf("=") + 1)]));
        switch (answer[0]) {
          case "CONT":
            return { kind: "challenge", challenge: answer[2] ?? "" };
          case "OK": {
            const user = params.get("user");
            if (!user) return { kind: "failure", reason: "authentication failure" };
            return { kind: "success", username: user };
          }
          default:
            return { kind: "failure", reason: params.get("reason") || "authentication failure" };
        }
      },
    };
  }
}
