/**
 * socketmap: — Postfix's socketmap_table(5), Sendmail's socket map protocol:
 * `socketmap:inet:HOST:PORT:NAME` or `socketmap:unix:/PATH:NAME`. Each
 * lookup sends one netstring "NAME KEY" and reads one netstring reply:
 *
 *   OK <data>        found: the value is <data>
 *   NOTFOUND         not found
 *   TEMP <reason>, TIMEOUT <reason>, PERM <reason>, anything else
 *                    a lookup error (TableError: the caller defers)
 *
 * As Postfix: a key longer than 10000 bytes is "not found" with a warning, a
 * reply longer than 100000 bytes is an error, the timeout is 100 seconds,
 * the table is a pattern table (no partial-key lookups), keys are sent as
 * given, and the map is refused where unauthenticated data must not be used
 * (local(8)'s alias_maps, opened with `noRegsub`).
 *
 * Runs in the process that looks the table up; the server is not
 * authenticated, and its replies are untrusted and bounded.
 */
import { log } from "../../util/log.ts";
import { printable } from "../../util/printable.ts";
import { type Framed, LookupConnectionError, parseEndpoint } from "./lookup-pool.ts";
import { ServerTable, type ServerTableOptions } from "./server-table.ts";
import { TableError } from "./table.ts";

const MAX_QUERY_BYTES = 10_000;
const MAX_REPLY_BYTES = 100_000;
const DEFAULT_TIMEOUT_MS = 100_000;

/** Reads one netstring ("LEN:DATA,") from the front of `input`; throws on a malformed or oversized one. */
export function readNetstring(input: Buffer, maxBytes: number): Framed<Buffer> {
  const colon = input.indexOf(0x3a);
  const digits = colon < 0 ? input.length : colon;
  if (digits > String(maxBytes).length) throw new LookupConnectionError("netstring length field too long");
  for (let i = 0; i < digits; i++) {
    const c = input[i]!;
    if (c < 0x30 || c > 0x39) throw new LookupConnectionError("malformed netstring length");
  }
  if (colon < 0) return undefined;
  if (colon === 0) throw new LookupConnectionError("malformed netstring length");
  const length = Number(input.subarray(0, colon).toString("latin1"));
  if (length > maxBytes) throw new LookupConnectionError(`netstring reply longer than ${maxBytes} bytes`);
  if (input.length < colon + 1 + length + 1) return undefined;
  if (input[colon + 1 + length] !== 0x2c) throw new LookupConnectionError("netstring without its final comma");
  return { reply: input.subarray(colon + 1, colon + 1 + length), used: colon + 1 + length + 1 };
}

export function netstring(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${data.length}:`), data, Buffer.from(",")]);
}

export type SocketmapOptions = ServerTableOptions;

/** `inet:host:port:name` or `unix:/path:name`: the server and the map name. */
function parseName(spec: string, name: string) {
  const colon = name.lastIndexOf(":");
  const endpoint = colon > 0 ? parseEndpoint(name.slice(0, colon), true) : undefined;
  const mapName = colon > 0 ? name.slice(colon + 1) : "";
  if (!endpoint || mapName === "" || /[\s\0]/.test(mapName)) {
    throw new TableError(spec, `socketmap requires inet:host:port:name or unix:/path:name, not "${name}"`);
  }
  return { endpoint, mapName };
}

export class SocketmapTable extends ServerTable {
  readonly #mapName: string;

  constructor(spec: string, name: string, options: SocketmapOptions = {}) {
    const { endpoint, mapName } = parseName(spec, name);
    super(spec, endpoint, "socketmap map", MAX_REPLY_BYTES + 16, options, DEFAULT_TIMEOUT_MS);
    this.#mapName = mapName;
  }

  async lookup(key: string): Promise<string | undefined> {
    this.checkUsable();
    const keyBytes = Buffer.from(key, "utf8");
    if (keyBytes.length > MAX_QUERY_BYTES) {
      log.warn(`table ${this.spec} query too large: '${printable(key.slice(0, 100))}', returning 'not found'`);
      return undefined;
    }
    // Postfix's keys are C strings: one with a NUL cannot be asked for
    if (key === "" || key.includes("\0")) return undefined;
    let reply: Buffer;
    try {
      reply = await this.pool.exchange(netstring(Buffer.concat([Buffer.from(`${this.#mapName} `), keyBytes])), (input) =>
        readNetstring(input, MAX_REPLY_BYTES),
      );
    } catch (err) {
      const detail = `lookup error: ${(err as Error).message}`;
      log.warn(`table ${this.spec} ${detail}`);
      throw new TableError(this.spec, detail);
    }
    const text = reply.toString("utf8");
    const space = text.indexOf(" ");
    const status = space < 0 ? text : text.slice(0, space);
    const payload = space < 0 ? "" : text.slice(space + 1);
    if (status === "OK") return payload;
    if (status === "NOTFOUND") return undefined;
    const errorClass = { TEMP: "temporary", TIMEOUT: "timeout", PERM: "permanent" }[status] ?? "unknown";
    const reason = payload.trimStart();
    const detail = `socketmap server ${errorClass} error${reason ? `: ${printable(reason.slice(0, 200))}` : ""}`;
    log.warn(`${this.spec} ${detail}`);
    throw new TableError(this.spec, detail);
  }
}
