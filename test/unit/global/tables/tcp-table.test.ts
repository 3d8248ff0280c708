/**
 * tcp: against a tcp_table server in the test: the `get` request and its
 * %XX encoding, the 200/400/500 replies, malformed and oversized replies,
 * the timeout, connection reuse, and the refusal where unauthenticated data
 * must not be used.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { openTableUncached } from "../../../../src/global/tables/open-table.ts";
import { TableError } from "../../../../src/global/tables/table.ts";
import { TcpTable, hexQuote, hexUnquote } from "../../../../src/global/tables/tcp-table.ts";
import { type Answer, startTcpTableServer } from "../../../helpers/lookup-servers.ts";
import { freePort } from "../../../helpers/ports.ts";

const raw: string[] = [];
const server = startTcpTableServer({}, (key): Answer => {
  raw.push(key);
  switch (key) {
    case "alice@example.com":
      return "200 alice%20box%25one%2cx";
    case "unicode é key":
      return "200 found%C3%A9";
    case "soft":
      return "400 try%20later";
    case "malformed":
      return "hello";
    case "badhex":
      return "200 a%zz";
    case "status":
      return "300 what";
    case "long":
      return `200 ${"y".repeat(5000)}`;
    case "never":
      return "silent";
    default:
      return "500 not%20found";
  }
});
afterAll(() => server.stop());
const open = (timeoutMs?: number) => new TcpTable(`tcp:${server.address}`, server.address, { timeoutMs });

describe("tcp: encoding", () => {
  test("%, white space and non-printable bytes travel as %XX, and come back in any case", () => {
    expect(hexQuote("a b%c\té")).toBe("a%20b%25c%09%C3%A9");
    expect(hexUnquote("a%20b%25c%09%c3%a9")).toBe("a b%c\té");
    expect(hexUnquote("bad%2")).toBeUndefined();
    expect(hexUnquote("bad%g0")).toBeUndefined();
  });
});

describe("tcp: lookups", () => {
  test("200 gives the decoded data, 500 gives undefined", async () => {
    const t = openTableUncached(`tcp:${server.address}`, undefined);
    expect(await t.lookup("alice@example.com")).toBe("alice box%one,x");
    expect(await t.lookup("nobody@example.com")).toBeUndefined();
    expect(await t.lookup("unicode é key")).toBe("foundé");
    expect(raw).toContain("unicode é key");
    expect(t.kind).toBe("pattern");
    t.close();
  });

  test("400, a malformed reply, bad %XX and another status are lookup errors, never 'not found'", async () => {
    const t = open();
    for (const key of ["soft", "malformed", "badhex", "status"]) await expect(t.lookup(key)).rejects.toBeInstanceOf(TableError);
    expect(await t.lookup("alice@example.com")).toBe("alice box%one,x");
    t.close();
  });

  test("a reply line over 4096 bytes is an error", async () => {
    const t = open();
    await expect(t.lookup("long")).rejects.toThrow("longer than 4096");
    t.close();
  });

  test("a server that does not answer is a timeout error", async () => {
    const t = open(300);
    await expect(t.lookup("never")).rejects.toThrow(/timeout/);
    t.close();
  });

  test("one connection serves lookups one after another; after a 400 it is closed and the next opens another", async () => {
    const t = open();
    const before = server.connections;
    for (const k of ["alice@example.com", "a", "b", "alice@example.com"]) await t.lookup(k);
    expect(server.connections).toBe(before + 1);
    await expect(t.lookup("soft")).rejects.toBeInstanceOf(TableError);
    expect(await t.lookup("alice@example.com")).toBe("alice box%one,x");
    expect(server.connections).toBe(before + 2);
    t.close();
  });

  test("no server is a lookup error; a malformed name an open error", async () => {
    const t = openTableUncached(`tcp:127.0.0.1:${freePort()}`, undefined);
    await expect(t.lookup("x")).rejects.toBeInstanceOf(TableError);
    expect(() => openTableUncached("tcp:localhost", undefined)).toThrow(TableError);
  });

  test("alias_maps (noRegsub, Postfix's paranoid flags) refuse it", async () => {
    await expect(openTableUncached(`tcp:${server.address}`, undefined, { noRegsub: true }).lookup("x")).rejects.toThrow("not allowed");
  });
});
