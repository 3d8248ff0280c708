/**
 * A minimal LDAPv3 client (RFC 4511) for the ldap: table: connect over TCP,
 * TLS (ldaps://) or a unix socket (ldapi://), StartTLS, simple bind, search,
 * unbind. Up to 64 operations may be outstanding on one connection (more
 * wait their turn); replies are matched by message ID. Every operation has a time limit; a timeout, a
 * protocol error, a Notice of Disconnection or a lost connection fails every
 * operation in flight and closes the connection, and the caller opens a new
 * one.
 *
 * Runs in the process that looks the table up. Distrusts the server: a
 * message may be at most 8 MiB, a search may bring at most 10,000 entries
 * and 16 MiB, and every length is checked (ber.ts).
 */
import type { TLSOptions } from "bun";
import { type Connection, connectTo } from "../../../util/net/connection.ts";
import { BerError, BerReader, boolean, constructed, elementLength, enumerated, integer, octetString, TAG } from "./ber.ts";
import { encodeFilter } from "./filter.ts";
import { type LdapUrl, type Scope, describeUrl } from "./url.ts";

const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
const MAX_SEARCH_ENTRIES = 10_000;
const MAX_SEARCH_BYTES = 16 * 1024 * 1024;
/** Operations outstanding on one connection: slapd closes a connection with more than 100 (anonymous) or 1000. */
const MAX_IN_FLIGHT = 64;
const START_TLS_OID = "1.3.6.1.4.1.1466.20037";
const NOTICE_OF_DISCONNECTION_OID = "1.3.6.1.4.1.1466.20036";

/** The LDAP result codes whose names help an administrator. */
const RESULT_NAMES: Record<number, string> = {
  0: "Success",
  1: "Operations error",
  2: "Protocol error",
  3: "Time limit exceeded",
  4: "Size limit exceeded",
  7: "Auth method not supported",
  8: "Strong(er) authentication required",
  10: "Referral",
  11: "Administrative limit exceeded",
  13: "Confidentiality required",
  32: "No such object",
  34: "Invalid DN syntax",
  48: "Inappropriate authentication",
  49: "Invalid credentials",
  50: "Insufficient access",
  51: "Server is busy",
  52: "Server is unavailable",
  53: "Server is unwilling to perform",
  80: "Other (e.g., implementation specific) error",
};

export const RESULT = { success: 0, sizeLimitExceeded: 4, noSuchObject: 32 } as const;

export interface LdapResult {
  code: number;
  matchedDn: string;
  message: string;
}

export function describeResult(r: LdapResult): string {
  return `${r.code} (${RESULT_NAMES[r.code] ?? "Unknown error"}${r.message ? `: ${r.message}` : ""})`;
}

export interface LdapEntry {
  dn: string;
  /** Attributes in the order the server sent them, with their values. */
  attributes: Array<{ type: string; values: string[] }>;
}

export interface SearchRequest {
  base: string;
  scope: Scope;
  /** 0: never, 1: in searching, 2: finding the base, 3: always (RFC 4511 derefAliases). */
  deref: number;
  sizeLimit: number;
  timeLimit: number;
  filter: string;
  attributes: string[];
}

/** The connection failed or timed out; operations on it are over. */
export class LdapConnectionError extends Error {}

/** An operation took longer than its time limit (the connection is closed too). */
export class LdapTimeoutError extends LdapConnectionError {}

interface Pending {
  resolve(message: BerReader, tag: number): boolean;
  reject(err: Error): void;
}

export interface ConnectOptions {
  timeoutMs: number;
  tls: TLSOptions;
}

export class LdapClient {
  #conn: Connection;
  #input: Buffer = Buffer.alloc(0);
  /** Chunks received after #input, not yet joined: a large message is joined once, not per chunk. */
  #pendingChunks: Buffer[] = [];
  #pendingBytes = 0;
  /** Bytes the message at the front of the input needs (0: unknown yet). */
  #need = 0;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  /** Operations sent and not finished; more wait in #backlog (servers close connections with too many). */
  #inFlight = 0;
  #backlog: Array<() => void> = [];
  #failure: Error | undefined;

  private constructor(
    conn: Connection,
    readonly server: string,
  ) {
    this.#conn = conn;
    conn.onData((chunk) => this.#onData(chunk));
    conn.onClose((err) => this.#fail(new LdapConnectionError(`${server}: connection closed${err ? `: ${err.message}` : ""}`)));
  }

  static async connect(url: LdapUrl, options: ConnectOptions): Promise<LdapClient> {
    const conn =
      url.scheme === "ldapi"
        ? await connectTo({ hostname: "", port: 0, unix: url.path, timeoutMs: options.timeoutMs })
        : await connectTo({
            hostname: url.host || "localhost",
            port: url.port,
            timeoutMs: options.timeoutMs,
            ...(url.scheme === "ldaps" ? { tls: { ...options.tls, serverName: url.host || "localhost" } } : {}),
          });
    return new LdapClient(conn, describeUrl(url));
  }

  get closed(): boolean {
    return this.#failure !== undefined || this.#conn.closed;
  }

  get secure(): boolean {
    return this.#conn.secure;
  }

  /** The extended StartTLS operation, then the TLS handshake. */
  async startTls(tls: TLSOptions, serverName: string, timeoutMs: number): Promise<void> {
    const result = await this.#request(constructed(0x77, octetString(START_TLS_OID, 0x80)), 0x78, timeoutMs);
    if (result.code !== RESULT.success) throw new LdapConnectionError(`STARTTLS refused: ${describeResult(result)}`);
    if (this.#pending.size) throw new LdapConnectionError("STARTTLS with operations outstanding");
    this.#input = Buffer.alloc(0);
    this.#pendingChunks = [];
    this.#pendingBytes = 0;
    this.#need = 0;
    await withTimeout(this.#conn.startTls({ ...tls, serverName, isServer: false }), timeoutMs, `${this.server}: TLS handshake timed out`);
  }

  /** A simple bind; resolves with the server's result (the caller decides what a failure means). */
  bind(version: number, dn: string, password: string, timeoutMs: number): Promise<LdapResult> {
    return this.#request(constructed(0x60, integer(version), octetString(dn), octetString(password, 0x80)), 0x61, timeoutMs);
  }

  /** A search; the entries and the final result. Search result references are ignored (no referral chasing). */
  search(req: SearchRequest, timeoutMs: number): Promise<{ result: LdapResult; entries: LdapEntry[] }> {
    let filter: Buffer;
    try {
      filter = encodeFilter(req.filter);
    } catch (err) {
      return Promise.reject(err);
    }
    const op = constructed(
      0x63,
      octetString(req.base),
      enumerated(req.scope),
      enumerated(req.deref),
      integer(req.sizeLimit),
      integer(req.timeLimit),
      boolean(false),
      filter,
      constructed(TAG.SEQUENCE, ...req.attributes.map((a) => octetString(a))),
    );
    const entries: LdapEntry[] = [];
    let bytes = 0;
    return this.#send(op, timeoutMs, (message, tag) => {
      if (tag === 0x64) {
        const e = message.readConstructed(0x64);
        const dn = e.readString();
        const attributes: LdapEntry["attributes"] = [];
        const list = e.readConstructed(TAG.SEQUENCE);
        while (!list.done) {
          const a = list.readConstructed(TAG.SEQUENCE);
          const type = a.readString();
          const vals = a.readConstructed(TAG.SET);
          const values: string[] = [];
          while (!vals.done) {
            const v = vals.read(TAG.OCTET_STRING).content;
            bytes += v.length;
            values.push(v.toString("utf8"));
          }
          attributes.push({ type, values });
        }
        entries.push({ dn, attributes });
        if (entries.length > MAX_SEARCH_ENTRIES || bytes > MAX_SEARCH_BYTES) throw new LdapConnectionError(`${this.server}: search result too large`);
        return undefined;
      }
      if (tag === 0x73) {
        message.read(0x73);
        return undefined;
      }
      if (tag !== 0x65) throw new BerError(`unexpected reply 0x${tag.toString(16)} to a search`);
      return { result: readResult(message.readConstructed(0x65)), entries };
    });
  }

  /** Says goodbye and closes; never fails. */
  unbind(): void {
    if (!this.closed) {
      this.#conn.write(constructed(TAG.SEQUENCE, integer(this.#nextId++), Buffer.from([0x42, 0x00])));
      void this.#conn.end();
    }
    this.#fail(new LdapConnectionError(`${this.server}: connection closed`));
  }

  close(): void {
    this.#conn.destroy();
    this.#fail(new LdapConnectionError(`${this.server}: connection closed`));
  }

  #request(op: Buffer, responseTag: number, timeoutMs: number): Promise<LdapResult> {
    return this.#send(op, timeoutMs, (message, tag) => {
      if (tag !== responseTag) throw new BerError(`unexpected reply 0x${tag.toString(16)}`);
      return readResult(message.readConstructed(responseTag));
    });
  }

  /** Sends one operation; `onMessage` sees each reply to it and returns the final value, or undefined for more. */
  #send<T>(op: Buffer, timeoutMs: number, onMessage: (message: BerReader, tag: number) => T | undefined): Promise<T> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    if (this.#nextId > 0x7fffffff) this.#nextId = 1;
    return new Promise<T>((resolve, reject) => {
      let sent = false;
      // the time limit counts from the request, waiting in the backlog included
      const timer = setTimeout(() => {
        this.#fail(new LdapTimeoutError(`${this.server}: timeout after ${timeoutMs / 1000}s`));
        this.#conn.destroy();
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#pending.delete(id);
        if (sent) this.#inFlight--;
        this.#sendBacklog();
      };
      this.#pending.set(id, {
        resolve: (message, tag) => {
          const value = onMessage(message, tag);
          if (value === undefined) return false;
          done();
          resolve(value);
          return true;
        },
        reject: (err) => {
          done();
          reject(err);
        },
      });
      const write = () => {
        sent = true;
        this.#inFlight++;
        this.#conn.write(constructed(TAG.SEQUENCE, integer(id), op));
      };
      if (this.#inFlight < MAX_IN_FLIGHT) write();
      else this.#backlog.push(write);
    });
  }

  #sendBacklog(): void {
    while (!this.#failure && this.#inFlight < MAX_IN_FLIGHT && this.#backlog.length) this.#backlog.shift()!();
  }

  #onData(chunk: Uint8Array): void {
    if (this.#failure) return;
    this.#pendingChunks.push(Buffer.from(chunk));
    this.#pendingBytes += chunk.length;
    if (this.#input.length + this.#pendingBytes < this.#need) return;
    this.#input = Buffer.concat([this.#input, ...this.#pendingChunks]);
    this.#pendingChunks = [];
    this.#pendingBytes = 0;
    try {
      for (;;) {
        if (this.#input.length && this.#input[0] !== TAG.SEQUENCE) throw new BerError("reply is not an LDAPMessage");
        const length = elementLength(this.#input, MAX_MESSAGE_BYTES);
        this.#need = length ?? 0;
        if (length === undefined || this.#input.length < length) return;
        const message = new BerReader(this.#input.subarray(0, length)).readConstructed(TAG.SEQUENCE);
        this.#input = this.#input.subarray(length);
        this.#need = 0;
        this.#dispatch(message);
        if (this.#failure) return;
      }
    } catch (err) {
      const e = err instanceof LdapConnectionError ? err : new LdapConnectionError(`${this.server}: bad reply: ${(err as Error).message}`);
      this.#fail(e);
      this.#conn.destroy();
    }
  }

  #dispatch(message: BerReader): void {
    const id = message.readInteger();
    const tag = message.peekTag();
    if (tag === undefined) throw new BerError("LDAPMessage without an operation");
    if (id === 0) {
      // unsolicited: a Notice of Disconnection (RFC 4511 4.4.1) or nothing we know
      const r = message.readConstructed(0x78);
      const result = readResult(r);
      let oid = "";
      if (r.peekTag() === 0x8a) oid = r.readString(0x8a);
      if (oid === NOTICE_OF_DISCONNECTION_OID || oid === "") throw new LdapConnectionError(`${this.server}: server disconnects: ${describeResult(result)}`);
      return;
    }
    const pending = this.#pending.get(id);
    if (!pending) return; // the reply to an operation that timed out
    pending.resolve(message, tag);
  }

  #fail(err: Error): void {
    if (!this.#failure) this.#failure = err;
    this.#backlog = [];
    for (const p of [...this.#pending.values()]) p.reject(this.#failure);
    this.#pending.clear();
  }
}

function readResult(r: BerReader): LdapResult {
  const code = r.readEnumerated();
  const matchedDn = r.readString();
  const message = r.readString();
  return { code, matchedDn, message };
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new LdapTimeoutError(what)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
