/**
 * The LDAP client against a hostile or odd server in the test: a message
 * length beyond the limit, bytes that are not an LDAPMessage, a Notice of
 * Disconnection, a reply that never comes, and a large reply in small
 * pieces. Every failure rejects the operation; nothing waits forever.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { BerReader, constructed, elementLength, enumerated, integer, octetString, TAG } from "../../../../../src/global/tables/ldap/ber.ts";
import { LdapClient, LdapConnectionError } from "../../../../../src/global/tables/ldap/client.ts";
import { parseLdapUrl } from "../../../../../src/global/tables/ldap/url.ts";

type Reply = (s: Socket<undefined>) => void;
let reply: Reply = () => {};
/** Bytes to send in 1 KiB pieces, as the socket takes them. */
let pieces: Buffer = Buffer.alloc(0);
function sendPieces(s: Socket<undefined>): void {
  while (pieces.length) {
    const n = s.write(pieces.subarray(0, 1024));
    if (n <= 0) return;
    pieces = pieces.subarray(n);
  }
}
const server = Bun.listen<undefined>({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    data(s) {
      reply(s);
    },
    drain: sendPieces,
  },
});
afterAll(() => server.stop(true));

const ldapResult = (tag: number, code: number, extra: Buffer[] = []) => constructed(tag, enumerated(code), octetString(""), octetString(""), ...extra);
const message = (id: number, op: Buffer) => constructed(TAG.SEQUENCE, integer(id), op);
const connect = () => LdapClient.connect(parseLdapUrl(`ldap://127.0.0.1:${server.port}`)!, { timeoutMs: 2000, tls: {} });

describe("LDAP client against a misbehaving server", () => {
  test("a message length beyond 8 MiB fails the operation at once", async () => {
    reply = (s) => void s.write(Buffer.from([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff]));
    const c = await connect();
    await expect(c.bind(3, "", "", 2000)).rejects.toThrow("exceeds the limit");
    expect(c.closed).toBe(true);
  });

  test("bytes that are not an LDAPMessage fail it", async () => {
    reply = (s) => void s.write(Buffer.from([0x04, 0x01, 0x41]));
    const c = await connect();
    await expect(c.bind(3, "", "", 2000)).rejects.toThrow("not an LDAPMessage");
  });

  test("a reply with a length inside that runs past its container fails it", async () => {
    reply = (s) => void s.write(Buffer.from([0x30, 0x05, 0x02, 0x01, 0x01, 0x61, 0x10]));
    const c = await connect();
    await expect(c.bind(3, "", "", 2000)).rejects.toBeInstanceOf(LdapConnectionError);
  });

  test("a Notice of Disconnection fails every operation in flight", async () => {
    reply = (s) => void s.write(message(0, ldapResult(0x78, 52, [octetString("1.3.6.1.4.1.1466.20036", 0x8a)])));
    const c = await connect();
    await expect(c.bind(3, "", "", 2000)).rejects.toThrow("server disconnects: 52 (Server is unavailable");
  });

  test("no reply is a timeout", async () => {
    reply = () => {};
    const c = await connect();
    await expect(c.bind(3, "", "", 200)).rejects.toThrow("timeout");
  });

  test("a 1 MiB value in 1 KiB pieces arrives whole", async () => {
    const big = "v".repeat(1 << 20);
    const entry = constructed(0x64, octetString("uid=x"), constructed(TAG.SEQUENCE, constructed(TAG.SEQUENCE, octetString("mail"), constructed(TAG.SET, octetString(big)))));
    const bytes = Buffer.concat([message(1, ldapResult(0x61, 0)), message(2, entry), message(2, ldapResult(0x65, 0))]);
    reply = (s) => {
      pieces = bytes;
      sendPieces(s);
      reply = () => {};
    };
    const c = await connect();
    const result = c.bind(3, "", "", 5000);
    const search = c.search({ base: "", scope: 2, deref: 0, sizeLimit: 0, timeLimit: 5, filter: "(uid=x)", attributes: ["mail"] }, 5000);
    expect((await result).code).toBe(0);
    const found = await search;
    expect(found.entries).toHaveLength(1);
    expect(found.entries[0]!.attributes[0]!.values[0]!.length).toBe(1 << 20);
    c.close();
  });

  test("at most 64 operations are outstanding at once; the others wait their turn and are answered", async () => {
    let input = Buffer.alloc(0);
    const outstanding: number[] = [];
    let most = 0;
    let scheduled = false;
    reply = (s) => {
      // a server that answers in batches: whatever has arrived, a little later
      if (scheduled) return;
      scheduled = true;
      setTimeout(() => {
        scheduled = false;
        most = Math.max(most, outstanding.length);
        for (const id of outstanding.splice(0)) s.write(message(id, ldapResult(id === 1 ? 0x61 : 0x65, 0)));
      }, 20);
    };
    const server2 = Bun.listen<undefined>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(s, chunk) {
          input = Buffer.concat([input, chunk]);
          for (let n = elementLength(input, 1 << 20); n !== undefined && input.length >= n; n = elementLength(input, 1 << 20)) {
            outstanding.push(new BerReader(input.subarray(0, n)).readConstructed(TAG.SEQUENCE).readInteger());
            input = input.subarray(n);
          }
          reply(s);
        },
      },
    });
    try {
      const c = await LdapClient.connect(parseLdapUrl(`ldap://127.0.0.1:${server2.port}`)!, { timeoutMs: 5000, tls: {} });
      expect((await c.bind(3, "", "", 5000)).code).toBe(0);
      const searches = Array.from({ length: 200 }, () => c.search({ base: "", scope: 2, deref: 0, sizeLimit: 0, timeLimit: 5, filter: "(uid=x)", attributes: [] }, 5000));
      const results = await Promise.all(searches);
      expect(results.every((r) => r.result.code === 0 && r.entries.length === 0)).toBe(true);
      expect(most).toBe(64);
      c.close();
    } finally {
      server2.stop(true);
    }
  });
});
