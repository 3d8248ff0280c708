/**
 * One TCP or TLS connection on Bun's native sockets, for the SMTP server and
 * client alike, absorbing Bun's pitfalls (docs/bun-notes.md):
 *
 * - write() may write only part of the data: the rest waits in a queue that
 *   drain() flushes, so callers just write;
 * - after upgradeTLS the plaintext socket's handler still receives the
 *   ciphertext: it is ignored here;
 * - on a TLS listener a write in open() is lost: connections are handed to
 *   the caller only after the handshake.
 *
 * No mail knowledge and no trust: bytes in, bytes out. Callers bound what they
 * buffer; this module only holds unsent output, and says how much
 * (queuedBytes) so a caller can stop producing for a peer that does not read.
 */
import type { Socket, SocketHandler, TLSOptions } from "bun";

export interface TlsInfo {
  protocol: string;
  cipher: string;
  /** Whether the peer's certificate verified against the trust store. */
  authorized: boolean;
  authorizationError?: string;
  /** OpenSSL's or node's code for it, e.g. "DEPTH_ZERO_SELF_SIGNED_CERT", "ERR_TLS_CERT_ALTNAME_INVALID". */
  authorizationCode?: string;
  peerCertificate?: unknown;
  /**
   * The certificates the peer sent, leaf first, as DER (at most
   * MAX_PEER_CHAIN); what DANE matches TLSA records against.
   */
  peerChain?: Uint8Array[];
  servername?: string;
}

/** A longer chain than any real server sends is cut here. */
export const MAX_PEER_CHAIN = 16;

/** The peer's chain from Bun's detailed certificate (getPeerCertificate(false) links issuerCertificate). */
function peerChainOf(s: AnySocket): Uint8Array[] | undefined {
  let cert = (s.getPeerCertificate as ((abbreviated?: boolean) => unknown) | undefined)?.call(s, false) as { raw?: unknown; issuerCertificate?: unknown } | undefined;
  const chain: Uint8Array[] = [];
  const seen = new Set<unknown>();
  while (cert && typeof cert === "object" && cert.raw instanceof Uint8Array && !seen.has(cert) && chain.length < MAX_PEER_CHAIN) {
    seen.add(cert);
    chain.push(new Uint8Array(cert.raw));
    cert = cert.issuerCertificate as typeof cert;
  }
  return chain.length ? chain : undefined;
}

interface SocketState {
  conn: Connection | undefined;
  /** The plaintext side after an upgrade: its data is ciphertext and ignored. */
  superseded: boolean;
}

type AnySocket = Socket<SocketState>;

export class Connection {
  #socket: AnySocket;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #closed = false;
  #tls: TlsInfo | undefined;
  #onData: ((chunk: Uint8Array) => void) | undefined;
  #onClose: Array<(error?: Error) => void> = [];
  #flushWaiters: Array<() => void> = [];
  #onTimeout: (() => void) | undefined;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;

  constructor(socket: AnySocket) {
    this.#socket = socket;
    socket.data = { conn: this, superseded: false };
    this.remoteAddress = normalizeAddress(socket.remoteAddress);
    this.remotePort = (socket as unknown as { remotePort?: number }).remotePort ?? 0;
    const local = socket as unknown as { localAddress?: string; localPort?: number };
    this.localAddress = normalizeAddress(local.localAddress ?? "");
    this.localPort = local.localPort ?? 0;
  }

  get secure(): boolean {
    return this.#tls !== undefined;
  }

  get tls(): TlsInfo | undefined {
    return this.#tls;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Receives every chunk of (decrypted) input from now on. */
  onData(handler: (chunk: Uint8Array) => void): void {
    this.#onData = handler;
  }

  onClose(handler: (error?: Error) => void): void {
    if (this.#closed) handler();
    else this.#onClose.push(handler);
  }

  /** Stops (true) or resumes (false) reading: back-pressure for a reader that falls behind. */
  pause(paused: boolean): void {
    if (this.#closed) return;
    if (paused) this.#socket.pause();
    else this.#socket.resume();
  }

  /** Idle timeout in seconds (0: none); the handler runs once when it expires. */
  setIdleTimeout(seconds: number, handler: () => void): void {
    this.#onTimeout = handler;
    this.#socket.timeout(Math.max(0, Math.ceil(seconds)));
  }

  write(data: string | Uint8Array): void {
    if (this.#closed) return;
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    if (bytes.length === 0) return;
    if (this.#queue.length) {
      this.#queue.push(bytes);
      this.#queuedBytes += bytes.length;
      return;
    }
    const n = this.#socket.write(bytes);
    if (n < 0) return;
    if (n < bytes.length) {
      this.#queue.push(bytes.subarray(Math.max(0, n)));
      this.#queuedBytes += bytes.length - Math.max(0, n);
    }
  }

  /** Bytes written and not yet handed to the kernel (the peer does not read fast enough). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Resolves once everything written so far has been handed to the kernel (or the connection closed). */
  flushed(): Promise<void> {
    if (!this.#queue.length || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#flushWaiters.push(resolve));
  }

  /** @internal */ _drain(): void {
    while (this.#queue.length && !this.#closed) {
      const head = this.#queue[0]!;
      const n = this.#socket.write(head);
      if (n <= 0) return;
      this.#queuedBytes -= n;
      if (n < head.length) {
        this.#queue[0] = head.subarray(n);
        return;
      }
      this.#queue.shift();
    }
    if (!this.#queue.length) for (const w of this.#flushWaiters.splice(0)) w();
  }

  /** @internal */ _data(chunk: Uint8Array): void {
    this.#onData?.(chunk);
  }

  /** @internal */ _timeout(): void {
    this.#onTimeout?.();
  }

  /** @internal */ _closed(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#queuedBytes = 0;
    for (const w of this.#flushWaiters.splice(0)) w();
    for (const h of this.#onClose.splice(0)) h(error);
  }

  /** @internal */ _setTls(info: TlsInfo): void {
    this.#tls = info;
  }

  /**
   * STARTTLS on either side: flushes pending output, then switches to TLS.
   * Input that arrives before the handshake completes is ciphertext and is
   * never delivered as data; the caller must discard any plaintext it had
   * buffered (CVE-2011-0411). Resolves with the TLS details, rejects when
   * the handshake fails (the connection is then closed).
   */
  async startTls(options: TLSOptions & { isServer: boolean }): Promise<TlsInfo> {
    await this.flushed();
    if (this.#closed) throw new Error("connection closed before the TLS handshake");
    const old = this.#socket;
    old.data.superseded = true;
    const { isServer, ...tls } = options;
    return await new Promise<TlsInfo>((resolve, reject) => {
      let settled = false;
      const [, secure] = old.upgradeTLS<SocketState>({
        data: { conn: this, superseded: false },
        tls: isServer ? tls : { ...tls },
        socket: {
          ...connectionHandlers,
          handshake: (s, ok, err) => {
            if (settled) return;
            settled = true;
            if (!ok && !toleratedByClient(isServer, tls, err)) {
              reject(err ?? new Error("TLS handshake failed"));
              s.end();
              return;
            }
            const info = tlsInfoOf(s, err);
            this.#tls = info;
            resolve(info);
          },
          close: (s, err) => {
            if (!settled) {
              settled = true;
              reject(err ?? new Error("connection closed during the TLS handshake"));
            }
            connectionHandlers.close!(s, err);
          },
        },
      });
      this.#socket = secure;
    });
  }

  /** Closes after pending output is sent. */
  async end(): Promise<void> {
    await this.flushed();
    if (!this.#closed) this.#socket.end();
  }

  /** Closes at once, dropping pending output. */
  destroy(): void {
    if (this.#closed) return;
    this.#socket.terminate();
    this._closed();
  }
}

function normalizeAddress(addr: string | undefined): string {
  // unix-domain sockets have no address
  if (!addr) return "";
  return addr.startsWith("::ffff:") && addr.includes(".") ? addr.slice(7) : addr;
}

/**
 * Bun reports a failed certificate check (chain or name) as a failed
 * handshake even with rejectUnauthorized: false, yet the connection works:
 * a client that accepts any certificate goes on and reads `authorized`.
 * Errors without an underscore (EPROTO, ECONNRESET) are real failures.
 */
function toleratedByClient(isServer: boolean, tls: TLSOptions, err: Error | null | undefined): boolean {
  if (isServer || tls.rejectUnauthorized !== false || !err) return false;
  const code = String((err as { code?: unknown }).code ?? "");
  return code.includes("_");
}

function tlsInfoOf(s: AnySocket, err?: Error | null): TlsInfo {
  const cipher = (s.getCipher?.() ?? {}) as { name?: string; standardName?: string; version?: string };
  const authErr = err ?? (s.getAuthorizationError?.() as Error | null | undefined);
  const peer = s.getPeerCertificate?.();
  const chain = peer ? peerChainOf(s) : undefined;
  return {
    protocol: s.getTLSVersion?.() ?? cipher.version ?? "TLS",
    cipher: cipher.standardName ?? cipher.name ?? "unknown",
    authorized: !authErr,
    ...(authErr ? { authorizationError: String((authErr as Error).message ?? authErr) } : {}),
    ...(authErr && (authErr as { code?: unknown }).code ? { authorizationCode: String((authErr as { code?: unknown }).code) } : {}),
    ...(peer && Object.keys(peer as object).length ? { peerCertificate: peer } : {}),
    ...(chain ? { peerChain: chain } : {}),
    servername: (s as unknown as { getServername?: () => string }).getServername?.() || undefined,
  };
}

/** Socket handlers shared by every connection: they forward to the Connection in socket.data. */
const connectionHandlers = {
  data(s: AnySocket, chunk: Uint8Array) {
    if (!s.data || s.data.superseded) return; // ciphertext seen by the plaintext side after an upgrade
    s.data.conn?._data(chunk);
  },
  drain(s: AnySocket) {
    if (!s.data || s.data.superseded) return;
    s.data.conn?._drain();
  },
  close(s: AnySocket, err?: Error) {
    if (!s.data || s.data.superseded) return;
    s.data.conn?._closed(err ?? undefined);
  },
  error(s: AnySocket, err: Error) {
    if (!s.data || s.data.superseded) return;
    s.data.conn?._closed(err);
  },
  timeout(s: AnySocket) {
    if (!s.data || s.data.superseded) return;
    s.data.conn?._timeout();
  },
};

export interface ListenOptions {
  hostname: string;
  port: number;
  /** Implicit TLS (port 465): connections are handed over after the handshake. */
  tls?: TLSOptions;
  reusePort?: boolean;
  /** A listening descriptor inherited from the master, instead of hostname/port. */
  fd?: number;
  /**
   * Called for each accepted connection before anything is read from it
   * (with implicit TLS: before the handshake). False means the caller has
   * closed it, or is closing it: it is never handed over.
   */
  onOpen?: (conn: Connection) => boolean;
}

export interface Listener {
  readonly port: number;
  readonly hostname: string;
  stop(closeActive?: boolean): void;
}

export function listenConnections(opts: ListenOptions, onConnection: (conn: Connection) => void): Listener {
  const implicitTls = !!opts.tls;
  const handlers = {
    ...connectionHandlers,
    open(s: AnySocket) {
      const conn = new Connection(s);
      if (opts.onOpen && !opts.onOpen(conn)) return;
      if (!implicitTls) onConnection(conn);
    },
    handshake(s: AnySocket, ok: boolean, err: Error | null) {
      if (!implicitTls || !s.data?.conn || s.data.conn.closed) return;
      if (!ok) {
        s.end();
        return;
      }
      s.data.conn._setTls(tlsInfoOf(s, err));
      onConnection(s.data.conn);
    },
  };
  const common = { socket: handlers, ...(opts.tls ? { tls: opts.tls } : {}) };
  const server =
    opts.fd !== undefined
      ? Bun.listen<SocketState>({ ...common, fd: opts.fd } as unknown as Parameters<typeof Bun.listen<SocketState>>[0])
      : Bun.listen<SocketState>({ ...common, hostname: opts.hostname, port: opts.port, ...(opts.reusePort ? { reusePort: true } : {}) } as unknown as Parameters<typeof Bun.listen<SocketState>>[0]);
  return server as unknown as Listener;
}

export interface ConnectOptions {
  hostname: string;
  port: number;
  /** A unix-domain socket path instead of hostname and port (LMTP). */
  unix?: string;
  /** Implicit TLS (smtp_tls_wrappermode). */
  tls?: TLSOptions;
  timeoutMs?: number;
}

/** Connects; rejects on refusal, timeout or a failed implicit-TLS handshake. */
export function connectTo(opts: ConnectOptions): Promise<Connection> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      reject(new Error("Connection timed out"));
    }, opts.timeoutMs ?? 30_000);
    const done = (err: Error | undefined, conn?: Connection) => {
      if (settled) {
        if (conn && err === undefined) conn.destroy();
        return;
      }
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(conn!);
    };
    const socket: SocketHandler<SocketState> = {
      ...connectionHandlers,
      open(s) {
        const conn = new Connection(s);
        if (!opts.tls) done(undefined, conn);
      },
      handshake(s, ok, err) {
        if (!opts.tls || !s.data?.conn) return;
        if (!ok && !toleratedByClient(false, opts.tls, err)) {
          done(err ?? new Error("TLS handshake failed"));
          s.end();
          return;
        }
        s.data.conn._setTls(tlsInfoOf(s, err));
        done(undefined, s.data.conn);
      },
      connectError(_s, err) {
        done(err);
        },
    };
    const tls = opts.tls ? { tls: opts.tls } : {};
    const connecting =
      opts.unix !== undefined
        ? Bun.connect<SocketState>({ unix: opts.unix, ...tls, socket })
        : Bun.connect<SocketState>({ hostname: opts.hostname, port: opts.port, ...tls, socket });
    connecting.catch((err: Error) => done(err));
  });
}
