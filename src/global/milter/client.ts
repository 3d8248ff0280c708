/**
 * One milter, for one SMTP session (or one local submission): the socket,
 * the negotiation, and Postfix's milter8 state machine.
 *
 * Each event (connect, HELO, MAIL, RCPT, DATA, unknown command, headers,
 * end of headers, body, end of message) is sent with the macros of its
 * stage unless the milter asked to skip it; the reply is awaited unless the
 * milter said it does not answer that step (SMFIP_NR_*). Replies:
 * continue; accept (the milter is done with the connection, or the
 * message); reject, tempfail and SMFIR_REPLYCODE (an SMTP reply; at the
 * connect event the milter then refuses everything that follows); discard;
 * shutdown (421); quarantine (a hold reason, not final); progress (keep
 * waiting); skip (no more body). Modifications are taken only at the end of
 * the message and handed back to the caller in the order they came.
 *
 * When the milter cannot be reached, times out or breaks the protocol, it
 * is closed and milter_default_action decides, with Postfix's replies:
 * accept (the milter is left out), reject (550 5.5.0 Service unavailable),
 * tempfail (451 4.7.1 Service unavailable - try again later), shutdown (421
 * 4.7.1 ...), quarantine (the message goes to hold/).
 *
 * Runs in smtpd and cleanup as mail_owner. Everything the milter sends is
 * untrusted: packets are bounded (PacketReader), replies checked
 * (validSmtpReply), a milter that never answers is cut off by its timeout.
 */
import { connect as netConnect, type Socket } from "node:net";
import {
  ALL_ACTIONS,
  CHUNK_SIZE,
  connectPacket,
  cstrings,
  encodePacket,
  macroPacket,
  MilterProtocolError,
  optnegPacket,
  PacketReader,
  parseOptneg,
  parseReply,
  protocolMask,
  SMFIC,
  SMFIP,
  validSmtpReply,
  type MilterReply,
  type Packet,
} from "./protocol.ts";
import { macroValues, withNegotiated, type MacroLookup, type StageMacros } from "./macros.ts";
import type { MilterSpec } from "./spec.ts";

/** What an event comes to: undefined is "go on". */
export type MilterVerdict =
  | { kind: "reply"; text: string }
  | { kind: "discard" }
  | { kind: "shutdown" }
  | { kind: "hold"; reason: string };

/** A modification taken at the end of the message. */
export type MilterEdit = Extract<MilterReply, { code: "addheader" | "insheader" | "chgheader" | "replbody" | "chgfrom" | "addrcpt" | "delrcpt" }>;

export interface MilterEnv {
  macros: StageMacros;
  defaults: ReadonlyMap<string, string>;
  lookup: MacroLookup;
  warn(text: string): void;
  /** The largest packet taken from the milter (bounded by Postfix's limit). */
  packetLimit: number;
}

type State = "closed" | "ready" | "envelope" | "message" | "accept-con" | "accept-msg" | "reject-con" | "error";

const CONNECT_EVENTS: ReadonlySet<string> = new Set([SMFIC.CONNECT, SMFIC.HELO]);
const CONTENT_EVENTS: ReadonlySet<string> = new Set([SMFIC.HEADER, SMFIC.EOH, SMFIC.BODY, SMFIC.BODYEOB]);
const EDIT_CODES: ReadonlySet<string> = new Set(["addheader", "insheader", "chgheader", "replbody", "chgfrom", "addrcpt", "delrcpt"]);

class MilterTimeout extends Error {}

export class Milter {
  readonly spec: MilterSpec;
  #env: MilterEnv;
  #socket: Socket | undefined;
  #reader: PacketReader;
  #waiter: { resolve: (p: Packet) => void; reject: (e: Error) => void } | undefined;
  #failure: Error | undefined;
  #state: State = "closed";
  /** Steps the milter skips or does not answer (SMFIP_*). */
  #protocol = 0;
  #macros: StageMacros;
  /** The reply every event gets after a failure or a refused connection (undefined: go on). */
  #defVerdict: MilterVerdict | undefined;
  /** SMFIR_SKIP: no more body chunks for this message. */
  #skipBody = false;
  /** A quarantine asked for during this message. */
  hold: string | undefined;

  constructor(spec: MilterSpec, env: MilterEnv) {
    this.spec = spec;
    this.#env = env;
    this.#reader = new PacketReader(env.packetLimit);
    this.#macros = env.macros;
  }

  /** What goes between a header's colon and a value this milter gives: nothing when it keeps the leading space itself. */
  get headerSpace(): string {
    return this.#protocol & SMFIP.HDR_LEADSPC ? "" : " ";
  }

  get state(): State {
    return this.#state;
  }

  /** The verdict of milter_default_action when this milter fails (Postfix's milter8_comm_error). */
  #failVerdict(): MilterVerdict | undefined {
    switch (this.spec.defaultAction) {
      case "accept":
        return undefined;
      case "reject":
        return { kind: "reply", text: "550 5.5.0 Service unavailable" };
      case "tempfail":
        return { kind: "reply", text: "451 4.7.1 Service unavailable - try again later" };
      case "shutdown":
        return { kind: "reply", text: "421 4.7.1 Service unavailable - try again later" };
      case "quarantine":
        return { kind: "hold", reason: "default_action" };
    }
  }

  /** A failure: the socket is closed, and from now on every event gets the default action. */
  #fail(why: string): MilterVerdict | undefined {
    this.#env.warn(`milter ${this.spec.name}: ${why}`);
    this.#close();
    this.#state = "error";
    this.#defVerdict = this.#failVerdict();
    return this.#defVerdict;
  }

  #close(): void {
    const sock = this.#socket;
    this.#socket = undefined;
    if (sock && !sock.destroyed) sock.destroy();
    this.#waiter?.reject(new Error("connection closed"));
    this.#waiter = undefined;
  }

  /** Connects and negotiates; a failure leaves the milter in its error state. */
  async open(): Promise<void> {
    try {
      await this.#connect();
      // no_header_reply: offer SMFIP_NR_HDR (the milter decides whether to take it, as with any step)
      const offered = protocolMask(this.spec.protocol) | (this.spec.noHeaderReply ? SMFIP.NR_HDR : 0);
      this.#write(optnegPacket(this.spec.protocol, ALL_ACTIONS, offered));
      const p = await this.#read(this.spec.commandTimeoutMs);
      if (p.code !== SMFIC.OPTNEG) throw new MilterProtocolError(`unexpected reply to SMFIC_OPTNEG: "${printableCode(p.code)}"`);
      const neg = parseOptneg(p.data);
      if (neg.version < 2 || neg.version > 6) throw new MilterProtocolError(`protocol version ${neg.version} is not supported`);
      const unsupported = neg.protocol & ~offered;
      if (unsupported) throw new MilterProtocolError(`requested protocol options 0x${unsupported.toString(16)} are not supported`);
      this.#protocol = neg.protocol;
      this.#macros = withNegotiated(this.#env.macros, neg.macros);
      this.#state = "ready";
    } catch (err) {
      this.#fail(describe(err, "connect"));
    }
  }

  #connect(): Promise<void> {
    const a = this.spec.address;
    return new Promise<void>((resolve, reject) => {
      const sock = a.kind === "inet" ? netConnect({ host: a.host, port: a.port }) : netConnect(a.path);
      this.#socket = sock;
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new MilterTimeout("timeout while connecting"));
      }, this.spec.connectTimeoutMs);
      sock.setNoDelay(true);
      sock.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
      sock.on("error", (err) => {
        clearTimeout(timer);
        this.#failure = err;
        reject(err);
        this.#waiter?.reject(err);
        this.#waiter = undefined;
      });
      sock.on("close", () => {
        this.#failure ??= new Error("connection closed by the milter");
        this.#waiter?.reject(this.#failure);
        this.#waiter = undefined;
      });
      sock.on("data", (chunk: Buffer) => {
        this.#reader.push(chunk);
        this.#deliver();
      });
    });
  }

  #deliver(): void {
    const w = this.#waiter;
    if (!w) {
      // a milter that sends without being asked must not make us buffer without end
      if (this.#reader.buffered > this.#env.packetLimit + 5) this.#socket?.destroy(new MilterProtocolError("unexpected data from the milter"));
      return;
    }
    try {
      const p = this.#reader.next();
      if (!p) return;
      this.#waiter = undefined;
      w.resolve(p);
    } catch (err) {
      this.#waiter = undefined;
      w.reject(err as Error);
    }
  }

  #write(data: Buffer): void {
    const sock = this.#socket;
    if (!sock || sock.destroyed) throw this.#failure ?? new Error("not connected");
    sock.write(data);
  }

  #read(timeoutMs: number): Promise<Packet> {
    return new Promise<Packet>((resolve, reject) => {
      if (!this.#socket || this.#socket.destroyed) {
        reject(this.#failure ?? new Error("connection closed by the milter"));
        return;
      }
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new MilterTimeout("timeout while reading a reply"));
      }, timeoutMs);
      this.#waiter = {
        resolve: (p) => {
          clearTimeout(timer);
          resolve(p);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#deliver();
    });
  }

  /** Whether this milter takes part in events now. */
  #inactive(): boolean {
    return this.#state === "closed" || this.#state === "accept-con" || this.#state === "accept-msg";
  }

  /**
   * Sends one event and interprets the reply. `skipFlag`: the SMFIP_NO* bit that
   * lets the milter skip it; `noReplyFlag`: the SMFIP_NR_* bit for "does not answer".
   */
  async #event(code: string, data: Buffer, skipFlag: number, noReplyFlag: number, edits?: MilterEdit[]): Promise<MilterVerdict | undefined> {
    if (this.#state === "error" || this.#state === "reject-con") return this.#defVerdict;
    if (this.#inactive()) return undefined;
    if (skipFlag && this.#protocol & skipFlag) return undefined;
    const timeoutMs = CONTENT_EVENTS.has(code) ? this.spec.contentTimeoutMs : this.spec.commandTimeoutMs;
    try {
      // the macros and the command in one write: two small writes would wait on Nagle and delayed ACKs
      const names = this.#macros.get(code) ?? [];
      const values = names.length ? macroValues(names, this.#env.lookup, this.#env.defaults) : [];
      this.#write(values.length ? Buffer.concat([macroPacket(code, values), encodePacket(code, data)]) : encodePacket(code, data));
      if (noReplyFlag && this.#protocol & noReplyFlag) return undefined;
      for (;;) {
        const reply = parseReply(await this.#read(timeoutMs));
        const verdict = this.#interpret(code, reply, edits);
        if (verdict === "more") continue;
        return verdict;
      }
    } catch (err) {
      return this.#fail(describe(err, code));
    }
  }

  /** One reply: a verdict, undefined to go on, or "more" when another reply follows. */
  #interpret(code: string, reply: MilterReply, edits?: MilterEdit[]): MilterVerdict | undefined | "more" {
    const atConnect = CONNECT_EVENTS.has(code);
    switch (reply.code) {
      case "progress":
        return "more";
      case "continue":
        return undefined;
      case "skip":
        if (code !== SMFIC.BODY) throw new MilterProtocolError("SMFIR_SKIP outside the body");
        this.#skipBody = true;
        return undefined;
      case "accept":
        this.#state = atConnect ? "accept-con" : "accept-msg";
        return undefined;
      case "discard":
        if (atConnect) throw new MilterProtocolError("SMFIR_DISCARD for connect or HELO");
        this.#state = "accept-msg";
        return { kind: "discard" };
      case "reject":
        return this.#final(atConnect, { kind: "reply", text: "550 5.7.1 Command rejected" });
      case "tempfail":
        return this.#final(atConnect, { kind: "reply", text: "451 4.7.1 Service unavailable - try again later" });
      case "shutdown":
        return this.#final(true, { kind: "shutdown" });
      case "replycode": {
        if (!validSmtpReply(reply.text)) throw new MilterProtocolError(`malformed reply: ${reply.text.slice(0, 200)}`);
        // Sendmail treats the reply as a format: "%%" is "%", a single "%" goes
        const text = reply.text.replace(/%(%?)/g, "$1");
        return this.#final(atConnect, { kind: "reply", text });
      }
      case "quarantine":
        this.hold = reply.reason.slice(0, 100) || "milter triggers HOLD action";
        return "more";
      case "connfail":
      case "setsymlist":
        throw new MilterProtocolError(`unexpected reply "${reply.code}"`);
      default:
        if (!EDIT_CODES.has(reply.code) || code !== SMFIC.BODYEOB || !edits) throw new MilterProtocolError(`unexpected modification "${reply.code}" outside the end of the message`);
        edits.push(reply);
        return "more";
    }
  }

  /** A verdict that ends the milter's part: at connect time it then answers every event so. */
  #final(connection: boolean, v: MilterVerdict): MilterVerdict {
    if (connection) {
      this.#state = "reject-con";
      this.#defVerdict = v;
      this.#close();
    }
    return v;
  }

  connect(hostname: string, address: string, port: number): Promise<MilterVerdict | undefined> {
    const pkt = connectPacket(hostname, address, port);
    return this.#event(SMFIC.CONNECT, pkt.subarray(5), SMFIP.NOCONNECT, SMFIP.NR_CONN);
  }

  helo(name: string): Promise<MilterVerdict | undefined> {
    return this.#event(SMFIC.HELO, cstrings(name), SMFIP.NOHELO, SMFIP.NR_HELO);
  }

  /** MAIL FROM: `<sender>` then the ESMTP parameters. A new transaction: a milter that accepted the last message is back. */
  mail(args: string[]): Promise<MilterVerdict | undefined> {
    if (this.#state === "accept-msg" || this.#state === "ready" || this.#state === "message") this.#state = "envelope";
    this.hold = undefined;
    this.#skipBody = false;
    return this.#event(SMFIC.MAIL, cstrings(...args), SMFIP.NOMAIL, SMFIP.NR_MAIL);
  }

  rcpt(args: string[]): Promise<MilterVerdict | undefined> {
    return this.#event(SMFIC.RCPT, cstrings(...args), SMFIP.NORCPT, SMFIP.NR_RCPT);
  }

  data(): Promise<MilterVerdict | undefined> {
    // SMFIC_DATA came with protocol version 4
    if (this.spec.protocol < 4) return Promise.resolve(undefined);
    return this.#event(SMFIC.DATA, Buffer.alloc(0), SMFIP.NODATA, SMFIP.NR_DATA);
  }

  unknown(line: string): Promise<MilterVerdict | undefined> {
    if (this.spec.protocol < 3) return Promise.resolve(undefined);
    return this.#event(SMFIC.UNKNOWN, cstrings(line), SMFIP.NOUNKNOWN, SMFIP.NR_UNKN);
  }

  /**
   * The message: headers (name, value as Sendmail gives it: one leading space
   * eaten unless SMFIP_HDR_LEADSPC), end of headers, the body in chunks with
   * CRLF line ends, end of message. Modifications go into `edits`.
   */
  async message(headers: ReadonlyArray<{ name: string; value: string }>, body: Buffer, edits: MilterEdit[]): Promise<MilterVerdict | undefined> {
    if (this.#state === "envelope") this.#state = "message";
    for (const h of headers) {
      const value = this.#protocol & SMFIP.HDR_LEADSPC ? h.value : h.value.replace(/^ /, "");
      const v = await this.#event(SMFIC.HEADER, cstrings(h.name, value), SMFIP.NOHDRS, SMFIP.NR_HDR);
      if (v || this.#inactive()) return v;
    }
    let v = await this.#event(SMFIC.EOH, Buffer.alloc(0), SMFIP.NOEOH, SMFIP.NR_EOH);
    if (v || this.#inactive()) return v;
    for (let off = 0; off < body.length && !this.#skipBody; off += CHUNK_SIZE) {
      v = await this.#event(SMFIC.BODY, body.subarray(off, off + CHUNK_SIZE), SMFIP.NOBODY, SMFIP.NR_BODY);
      if (v || this.#inactive()) return v;
    }
    v = await this.#event(SMFIC.BODYEOB, Buffer.alloc(0), 0, 0, edits);
    // the message is done: the next one starts with MAIL, no SMFIC_ABORT needed
    if (this.#state === "message" || this.#state === "accept-msg") this.#state = "ready";
    return v;
  }

  /** The transaction ended without a message (RSET, a rejected message, a new MAIL). */
  abort(): void {
    if (this.#state === "envelope" || this.#state === "message" || this.#state === "accept-msg") {
      try {
        this.#write(encodePacket(SMFIC.ABORT));
      } catch (err) {
        this.#fail(describe(err, SMFIC.ABORT));
        return;
      }
      this.#state = "ready";
    }
    this.hold = undefined;
  }

  /** The session ended. */
  quit(): void {
    if (this.#socket && !this.#socket.destroyed) {
      try {
        this.#write(encodePacket(SMFIC.QUIT));
        this.#socket.end();
      } catch {
        // the milter went away first: nothing to tell it
      }
    }
    this.#socket = undefined;
    this.#state = "closed";
  }
}

function printableCode(code: string): string {
  return /^[\x21-\x7e]$/.test(code) ? code : `0x${code.charCodeAt(0).toString(16)}`;
}

const EVENT_NAMES: Record<string, string> = {
  [SMFIC.CONNECT]: "connect",
  [SMFIC.HELO]: "helo",
  [SMFIC.MAIL]: "mail",
  [SMFIC.RCPT]: "rcpt",
  [SMFIC.DATA]: "data",
  [SMFIC.UNKNOWN]: "unknown",
  [SMFIC.HEADER]: "header",
  [SMFIC.EOH]: "end of header",
  [SMFIC.BODY]: "body",
  [SMFIC.BODYEOB]: "end of message",
  [SMFIC.ABORT]: "abort",
};

function describe(err: unknown, event: string): string {
  const what = EVENT_NAMES[event] ?? event;
  if (err instanceof MilterTimeout) return `${err.message} for ${what} event`;
  if (err instanceof MilterProtocolError) return `protocol error in ${what} event: ${err.message}`;
  return `error in ${what} event: ${(err as Error)?.message ?? String(err)}`;
}
