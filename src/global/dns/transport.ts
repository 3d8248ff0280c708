/**
 * One question to one name server over UDP or TCP, and the checks an answer
 * must pass before it is believed: it comes from the server's address and
 * port (a connected UDP socket), it carries the query's ID (random per
 * query), QR is set, and its question section repeats the question. Every
 * UDP query uses a fresh socket, so a fresh source port from the kernel's
 * randomized ephemeral range (RFC 5452). Datagrams that fail the checks or
 * do not parse are dropped and the wait goes on; over TCP (RFC 7766, one
 * query per connection) they end the exchange.
 *
 * Untrusted input: everything the network sends. Limits: no TCP connection
 * reuse or pipelining (TCP is only the fallback after TC=1).
 */
import dgram from "node:dgram";
import { connect } from "node:net";
import type { NameServer } from "./resolv-conf.ts";
import { CLASS_IN } from "./records.ts";
import { decodeMessage, MAX_MESSAGE, WireError, type DnsMessage } from "./wire.ts";

export interface ExchangeRequest {
  id: number;
  /** Canonical (lower-case) query name. */
  name: string;
  type: number;
  packet: Uint8Array;
}

export type Exchange =
  | { kind: "answer"; message: DnsMessage; transport: "udp" | "tcp" }
  | { kind: "timeout" }
  | { kind: "network"; code: string; message: string };

/** Whether a decoded message answers this request (RFC 5452 9.1 checks, QR and opcode). */
export function answersRequest(m: DnsMessage, req: ExchangeRequest): boolean {
  if (m.id !== req.id || !m.qr || m.opcode !== 0) return false;
  // some servers leave the question out of a FORMERR or NOTIMP reply
  if (m.questions.length === 0) return m.rcode !== 0;
  if (m.questions.length !== 1) return false;
  const q = m.questions[0]!;
  return q.name === req.name && q.type === req.type && q.class === CLASS_IN;
}

function serverText(s: NameServer): string {
  return s.family === 6 ? `[${s.address}]:${s.port}` : `${s.address}:${s.port}`;
}

function networkError(err: unknown, server: NameServer): Exchange {
  const code = (err as { code?: unknown })?.code;
  const text = err instanceof Error ? err.message : String(err);
  return { kind: "network", code: typeof code === "string" ? code : "ECONNREFUSED", message: `${serverText(server)}: ${text}` };
}

export function exchangeUdp(server: NameServer, req: ExchangeRequest, timeoutMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(server.family === 6 ? "udp6" : "udp4");
    let settled = false;
    let malformed: string | undefined;
    const settle = (e: Exchange) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        socket.close();
      } catch {
        // already closed
      }
      resolve(e);
    };
    const timer = setTimeout(() => {
      settle(malformed ? { kind: "network", code: "EBADRESP", message: `${serverText(server)}: ${malformed}` } : { kind: "timeout" });
    }, timeoutMs);
    socket.on("error", (err) => settle(networkError(err, server)));
    socket.on("message", (data: Buffer) => {
      let m: DnsMessage;
      try {
        m = decodeMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      } catch (err) {
        // a parser failure of any kind drops the datagram; it never ends the process
        malformed = `malformed answer: ${err instanceof Error ? err.message : String(err)}`;
        return;
      }
      if (answersRequest(m, req)) settle({ kind: "answer", message: m, transport: "udp" });
    });
    try {
      socket.connect(server.port, server.address, () => {
        socket.send(req.packet, (err) => {
          if (err) settle(networkError(err, server));
        });
      });
    } catch (err) {
      settle(networkError(err, server));
    }
  });
}

export function exchangeTcp(server: NameServer, req: ExchangeRequest, timeoutMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    let settled = false;
    let received = new Uint8Array(0);
    const socket = connect({ host: server.address, port: server.port });
    const settle = (e: Exchange) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(e);
    };
    const timer = setTimeout(() => settle({ kind: "timeout" }), timeoutMs);
    socket.on("error", (err) => settle(networkError(err, server)));
    socket.on("connect", () => {
      const framed = new Uint8Array(req.packet.length + 2);
      framed[0] = req.packet.length >> 8;
      framed[1] = req.packet.length & 0xff;
      framed.set(req.packet, 2);
      socket.write(framed);
    });
    socket.on("data", (chunk: Buffer) => {
      if (received.length + chunk.length > MAX_MESSAGE + 2) {
        settle({ kind: "network", code: "EBADRESP", message: `${serverText(server)}: TCP answer longer than announced` });
        return;
      }
      const next = new Uint8Array(received.length + chunk.length);
      next.set(received);
      next.set(chunk, received.length);
      received = next;
      if (received.length < 2) return;
      const length = (received[0]! << 8) | received[1]!;
      if (received.length < length + 2) return;
      try {
        const m = decodeMessage(received.subarray(2, 2 + length));
        if (answersRequest(m, req)) settle({ kind: "answer", message: m, transport: "tcp" });
        else settle({ kind: "network", code: "EBADRESP", message: `${serverText(server)}: TCP answer does not match the question` });
      } catch (err) {
        const why = err instanceof WireError ? err.message : String(err);
        settle({ kind: "network", code: "EBADRESP", message: `${serverText(server)}: malformed answer: ${why}` });
      }
    });
    socket.on("end", () => settle({ kind: "network", code: "ECONNRESET", message: `${serverText(server)}: connection closed before the answer` }));
  });
}

export { serverText };
