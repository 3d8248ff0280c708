/**
 * Certificates chosen by the name the client asks for (SNI,
 * tls_server_sni_maps). Bun's own TLS takes one certificate per listener, so
 * a service with SNI runs on node:net sockets and node:tls (whose
 * SNICallback picks the certificate); this is the only place postern uses
 * node:tls (docs/bun-notes.md). Everything else about the session is the
 * same: the connections here offer what src/util/net/connection.ts offers.
 *
 * tls_server_sni_maps: a table from a server name to the files that hold
 * its private key and certificate chain (one file with both, or several),
 * separated by blanks or commas. A name is looked up as it is, then as
 * `.parent.domain` for each parent; no match uses the service's default
 * certificate (smtpd_tls_cert_file). Tables that can list their entries
 * (texthash:, hash:, inline:) are read when the service starts, as root,
 * so the key files may be root-only; others are asked at handshake time,
 * as mail_owner.
 *
 * Runs in smtpd. The client's server name is untrusted: it is only a key.
 */
import { readFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { createSecureContext, TLSSocket, type SecureContext } from "node:tls";
import type { TLSOptions } from "bun";
import type { Config } from "../global/config/config.ts";
import { ConfigError } from "../global/config/source.ts";
import { keepTable, openTable } from "../global/tables/open-table.ts";
import type { Table } from "../global/tables/table.ts";
import type { Listener, TlsInfo } from "../util/net/connection.ts";

function pemParts(files: string[], source: string): { key: string; cert: string } {
  let text = "";
  for (const f of files) {
    try {
      text += readFileSync(f, "utf8") + "\n";
    } catch (err) {
      throw new ConfigError(`${source}: cannot read "${f}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const key = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/.exec(text)?.[0];
  const cert = [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => m[0]).join("\n");
  if (!key || !cert) throw new ConfigError(`${source}: "${files.join(" ")}" must hold a private key and a certificate`);
  return { key, cert };
}

/** The secure contexts of one service: the default one and those of tls_server_sni_maps. */
export class SniContexts {
  readonly #default: SecureContext;
  readonly #byName = new Map<string, SecureContext>();
  readonly #tables: Table[];
  readonly #base: { secureOptions?: number; ciphers?: string };

  constructor(config: Config, base: TLSOptions) {
    this.#base = { ...(base.secureOptions !== undefined ? { secureOptions: base.secureOptions } : {}), ...(base.ciphers ? { ciphers: base.ciphers } : {}) };
    this.#default = createSecureContext({ key: String(base.key), cert: String(base.cert), ...this.#base });
    // built once, as root, for the life of the process (a reload keeps the TLS settings): kept open through reloads
    this.#tables = config.list("tls_server_sni_maps").map((spec) => keepTable(openTable(spec, config)));
  }

  /** Reads every entry of the tables that can list them (call as root, before the privilege drop). */
  async preload(): Promise<void> {
    for (const t of this.#tables) {
      if (!t.entries) continue;
      for await (const [name, value] of t.entries()) this.#byName.set(name.toLowerCase(), this.#context(value, t.spec));
    }
  }

  #context(value: string, spec: string): SecureContext {
    const files = value.split(/[\s,]+/).filter(Boolean);
    return createSecureContext({ ...pemParts(files, `tls_server_sni_maps ${spec}`), ...this.#base });
  }

  async contextFor(servername: string | undefined): Promise<SecureContext> {
    if (!servername) return this.#default;
    const name = servername.toLowerCase().replace(/\.$/, "");
    const keys = [name];
    for (let rest = name, dot = rest.indexOf("."); dot >= 0; dot = rest.indexOf(".")) {
      rest = rest.slice(dot + 1);
      if (rest) keys.push(`.${rest}`);
    }
    for (const k of keys) {
      const known = this.#byName.get(k);
      if (known) return known;
    }
    for (const t of this.#tables) {
      if (t.entries) continue;
      for (const k of keys) {
        const v = await t.lookup(k);
        if (v !== undefined) {
          const ctx = this.#context(v, t.spec);
          this.#byName.set(k, ctx);
          return ctx;
        }
      }
    }
    return this.#default;
  }

  get defaultContext(): SecureContext {
    return this.#default;
  }

  readonly callback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    this.contextFor(servername).then(
      (ctx) => cb(null, ctx),
      (err: Error) => cb(err),
    );
  };
}

function infoOf(t: TLSSocket): TlsInfo {
  const cipher = t.getCipher() as { name?: string; standardName?: string } | null;
  const servername = (t as unknown as { servername?: string | false }).servername;
  return {
    protocol: t.getProtocol() ?? "TLS",
    cipher: cipher?.standardName ?? cipher?.name ?? "unknown",
    authorized: false,
    ...(servername ? { servername } : {}),
  };
}

/** A connection on node:net/node:tls with the same surface as connection.ts's Connection. */
export class NodeConnection {
  #socket: Socket;
  #tls: TlsInfo | undefined;
  #onData: ((chunk: Uint8Array) => void) | undefined;
  #closed = false;
  #closers: Array<(error?: Error) => void> = [];
  readonly remoteAddress: string;
  readonly remotePort: number;

  constructor(
    socket: Socket,
    private sni: SniContexts,
    tls?: TlsInfo,
  ) {
    this.#socket = socket;
    this.#tls = tls;
    const addr = socket.remoteAddress ?? "";
    this.remoteAddress = addr.startsWith("::ffff:") && addr.includes(".") ? addr.slice(7) : addr;
    this.remotePort = socket.remotePort ?? 0;
    this.#attach(socket);
    socket.on("close", () => this.#closedNow());
    socket.on("error", () => this.#closedNow());
  }

  #attach(socket: Socket): void {
    socket.on("data", (chunk: Buffer) => {
      if (socket === this.#socket) this.#onData?.(chunk);
    });
  }

  #closedNow(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#closers.splice(0)) c(error);
  }

  get secure(): boolean {
    return this.#tls !== undefined;
  }

  get tls(): TlsInfo | undefined {
    return this.#tls;
  }

  onData(handler: (chunk: Uint8Array) => void): void {
    this.#onData = handler;
  }

  onClose(handler: (error?: Error) => void): void {
    if (this.#closed) handler();
    else this.#closers.push(handler);
  }

  pause(paused: boolean): void {
    if (paused) this.#socket.pause();
    else this.#socket.resume();
  }

  setIdleTimeout(seconds: number, handler: () => void): void {
    this.#socket.setTimeout(Math.max(0, seconds) * 1000, handler);
  }

  write(data: string | Uint8Array): void {
    if (!this.#closed) this.#socket.write(data);
  }

  flushed(): Promise<void> {
    if (this.#closed || !this.#socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      this.#socket.once("drain", () => resolve());
      this.#socket.once("close", () => resolve());
    });
  }

  /** STARTTLS with the SNI contexts; the TLS options of the caller are already in them. */
  async startTls(): Promise<TlsInfo> {
    await this.flushed();
    const plain = this.#socket;
    const secure = new TLSSocket(plain, { isServer: true, secureContext: this.sni.defaultContext, SNICallback: this.sni.callback });
    this.#socket = secure;
    this.#attach(secure);
    secure.on("close", () => this.#closedNow());
    secure.on("error", () => {});
    await new Promise<void>((resolve, reject) => {
      secure.once("secure", () => resolve());
      secure.once("error", (err) => reject(err));
      secure.once("close", () => reject(new Error("connection closed during the TLS handshake")));
    });
    this.#tls = infoOf(secure);
    return this.#tls;
  }

  async end(): Promise<void> {
    await this.flushed();
    if (!this.#closed) this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
    this.#closedNow();
  }

  /** Implicit TLS: the handshake is done. */
  handshakeDone(info: TlsInfo): void {
    this.#tls = info;
  }

  get queuedBytes(): number {
    return this.#closed ? 0 : this.#socket.writableLength;
  }
}

/**
 * Listens with node:net on `fd`, a socket the master bound and passed on, or else binds hostname:port
 * itself (SO_REUSEPORT); implicit TLS through the SNI contexts when asked.
 */
export async function listenWithSni(
  opts: { hostname: string; port: number; fd?: number; implicitTls: boolean; onOpen?: (conn: NodeConnection) => boolean },
  sni: SniContexts,
  onConnection: (conn: NodeConnection) => void,
): Promise<Listener> {
  const server: Server = createServer((socket) => {
    if (!opts.implicitTls) {
      const conn = new NodeConnection(socket, sni);
      if (!opts.onOpen || opts.onOpen(conn)) onConnection(conn);
      return;
    }
    const secure = new TLSSocket(socket, { isServer: true, secureContext: sni.defaultContext, SNICallback: sni.callback });
    // the same connection before and after the handshake, so onOpen's caller knows it again
    const conn = new NodeConnection(secure, sni);
    if (opts.onOpen && !opts.onOpen(conn)) return;
    secure.once("secure", () => {
      conn.handshakeDone(infoOf(secure));
      onConnection(conn);
    });
    secure.once("error", () => secure.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    const where = opts.fd !== undefined ? { fd: opts.fd } : { host: opts.hostname, port: opts.port, reusePort: true };
    server.listen(where as Parameters<Server["listen"]>[0], () => resolve());
  });
  return {
    port: opts.port,
    hostname: opts.hostname,
    stop: () => void server.close(),
  };
}
