/**
 * tcp: — Postfix's tcp_table(5): `tcp:HOST:PORT`. Each lookup sends the line
 * `get KEY\n` and reads one reply line of at most 4096 bytes:
 *
 *   200 <data>    found: the value is <data>
 *   500 <text>    not found
 *   400 <text>    a lookup error (TableError: the caller defers)
 *
 * Keys and data are %XX-encoded: `%`, white space and every byte that is not
 * printable ASCII travel as %XX (hex digits in either case on input). A
 * malformed reply or another status is a lookup error, and the connection is
 * closed after it, as after a 400. As Postfix: a 100 second timeout, a
 * pattern table (no partial-key lookups), keys sent as given, and refused
 * where unauthenticated data must not be used (local(8)'s alias_maps).
 *
 * Runs in the process that looks the table up; the server is not
 * authenticated, and its replies are untrusted and bounded.
 */
import { log } from "../../util/log.ts";
import { printable } from "../../util/printable.ts";
import { type Framed, LookupConnectionError, parseEndpoint } from "./lookup-pool.ts";
import { ServerTable, type ServerTableOptions } from "./server-table.ts";
import { TableError } from "./table.ts";

const MAX_REPLY_BYTES = 4096;
const DEFAULT_TIMEOUT_MS = 100_000;

/** Postfix's hex_quote: `%`, white space and non-printable bytes as %XX. */
export function hexQuote(text: string): string {
  let out = "";
  for (const b of Buffer.from(text, "utf8")) {
    out += b !== 0x25 && b > 0x20 && b < 0x7f ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Postfix's hex_unquote; undefined for a `%` without two hex digits after it. */
export function hexUnquote(text: string): string | undefined {
  const bytes: number[] = [];
  const raw = Buffer.from(text, "latin1");
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] !== 0x25) {
      bytes.push(raw[i]!);
      continue;
    }
    const hex = raw.subarray(i + 1, i + 3).toString("latin1");
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
    bytes.push(Number.parseInt(hex, 16));
    i += 2;
  }
  return Buffer.from(bytes).toString("utf8");
}

/** One reply line, without its newline; an error when it exceeds the limit. */
function readLine(input: Buffer): Framed<string> {
  const nl = input.indexOf(0x0a);
  if (nl < 0) {
    if (input.length >= MAX_REPLY_BYTES) throw new LookupConnectionError(`text longer than ${MAX_REPLY_BYTES}`);
    return undefined;
  }
  if (nl + 1 > MAX_REPLY_BYTES) throw new LookupConnectionError(`text longer than ${MAX_REPLY_BYTES}`);
  return { reply: input.subarray(0, nl).toString("latin1"), used: nl + 1 };
}

export type TcpTableOptions = ServerTableOptions;

function endpointOf(spec: string, name: string) {
  const endpoint = parseEndpoint(name, false);
  if (!endpoint) throw new TableError(spec, `tcp map requires host:port, not "${name}"`);
  return endpoint;
}

export class TcpTable extends ServerTable {
  constructor(spec: string, name: string, options: TcpTableOptions = {}) {
    super(spec, endpointOf(spec, name), "tcp map", MAX_REPLY_BYTES, options, DEFAULT_TIMEOUT_MS);
  }

  async lookup(key: string): Promise<string | undefined> {
    this.checkUsable();
    if (key === "" || key.includes("\0")) return undefined;
    let line: string;
    try {
      // after a 400 or a reply we cannot use, the connection is closed, as Postfix does
      line = await this.pool.exchange(Buffer.from(`get ${hexQuote(key)}\n`, "latin1"), readLine, (l) => /^[25]\d\d\s/.test(l) && hexUnquote(l.slice(4)) !== undefined);
    } catch (err) {
      return this.#fail(`read TCP map reply: ${(err as Error).message}`);
    }
    const data = /^\d\d\d\s/.test(line) ? hexUnquote(line.slice(4)) : undefined;
    if (data === undefined) {
      return this.#fail(`read TCP map reply: malformed reply: ${printable(line.slice(0, 100), false, "_")}`);
    }
    switch (line[0]) {
      case "2": {
        const nul = data.indexOf("\0");
        return nul < 0 ? data : data.slice(0, nul);
      }
      case "5":
        return undefined;
      case "4":
        return this.#fail(`soft error: ${printable(line.slice(0, 100), false, "_")}`);
      default:
        return this.#fail(`read TCP map reply: bad status code: ${printable(line.slice(0, 100), false, "_")}`);
    }
  }

  #fail(detail: string): never {
    log.warn(`table ${this.spec}: ${detail}`);
    throw new TableError(this.spec, detail);
  }
}
