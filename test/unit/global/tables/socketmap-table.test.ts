/**
 * socketmap: against a socketmap server in the test (127.0.0.1 and a unix
 * socket): the request netstring, each reply status, the reply size limit,
 * the timeout, connection reuse and reconnection, the query size limit, and
 * the refusal where unauthenticated data must not be used.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { openTableUncached } from "../../../../src/global/tables/open-table.ts";
import { SocketmapTable } from "../../../../src/global/tables/socketmap-table.ts";
import { TableError } from "../../../../src/global/tables/table.ts";
import { freePort } from "../../../helpers/ports.ts";
import { type Answer, startSocketmapServer } from "../../../helpers/lookup-servers.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";

const dir = tempDir("postern-socketmap-");
const answers = new Map<string, Answer>([
  ["alice@example.com", "OK alice-box"],
  ["spaced", "OK text with  spaces "],
  ["empty", "OK"],
  ["temp", "TEMP database is down"],
  ["timeout", "TIMEOUT slow backend"],
  ["perm", "PERM no such map"],
  ["weird", "MAYBE"],
  ["huge", `OK ${"x".repeat(100_001)}`],
  ["hangup", "close"],
  ["never", "silent"],
]);
const answer = (map: string, key: string): Answer => (map === "users" ? (answers.get(key) ?? "NOTFOUND ") : "PERM unknown map");
const inet = startSocketmapServer({}, answer);
const unixPath = join(dir, "sockmap.sock");
const unix = startSocketmapServer({ unix: unixPath }, answer);
afterAll(() => {
  inet.stop();
  unix.stop();
  removeDir(dir);
});

const open = (timeoutMs?: number) => new SocketmapTable(`socketmap:inet:${inet.address}:users`, `inet:${inet.address}:users`, { timeoutMs });

describe("socketmap: lookups", () => {
  test("OK gives the data, NOTFOUND gives undefined, over inet: and unix:", async () => {
    for (const spec of [`socketmap:inet:${inet.address}:users`, `socketmap:unix:${unixPath}:users`]) {
      const t = openTableUncached(spec, undefined);
      expect(await t.lookup("alice@example.com")).toBe("alice-box");
      expect(await t.lookup("bob@example.com")).toBeUndefined();
      expect(await t.lookup("spaced")).toBe("text with  spaces ");
      expect(await t.lookup("empty")).toBe("");
      expect(t.kind).toBe("pattern");
      t.close();
    }
    expect(inet.requests).toContain("users alice@example.com");
    expect(unix.requests).toContain("users bob@example.com");
  });

  test("the key is sent as given, with its letter case", async () => {
    const t = open();
    expect(await t.lookup("Alice@Example.COM")).toBeUndefined();
    expect(inet.requests.at(-1)).toBe("users Alice@Example.COM");
    t.close();
  });

  test("TEMP, TIMEOUT, PERM and an unknown status are lookup errors with the server's reason, never 'not found'", async () => {
    const t = open();
    await expect(t.lookup("temp")).rejects.toThrow("socketmap server temporary error: database is down");
    await expect(t.lookup("timeout")).rejects.toThrow("socketmap server timeout error: slow backend");
    await expect(t.lookup("perm")).rejects.toThrow("socketmap server permanent error: no such map");
    await expect(t.lookup("weird")).rejects.toBeInstanceOf(TableError);
    // the connection is still good after an error reply
    expect(await t.lookup("alice@example.com")).toBe("alice-box");
    t.close();
  });

  test("a reply over 100000 bytes is an error, and the next lookup works on a new connection", async () => {
    const t = open();
    await expect(t.lookup("huge")).rejects.toThrow("longer than 100000");
    const before = inet.connections;
    expect(await t.lookup("alice@example.com")).toBe("alice-box");
    expect(inet.connections).toBe(before + 1);
    t.close();
  });

  test("a server that does not answer is a timeout error", async () => {
    const t = open(300);
    await expect(t.lookup("never")).rejects.toThrow(/timeout/);
    t.close();
  });

  test("lookups one after another share one connection; concurrent ones use at most four", async () => {
    const t = open();
    const before = inet.connections;
    for (const k of ["alice@example.com", "x", "spaced"]) await t.lookup(k);
    expect(inet.connections).toBe(before + 1);
    const keys = ["alice@example.com", "x", "spaced", "alice@example.com", "y", "z", "alice@example.com", "w"];
    const results = await Promise.all(keys.map((k) => t.lookup(k)));
    expect(results).toEqual(["alice-box", undefined, "text with  spaces ", "alice-box", undefined, undefined, "alice-box", undefined]);
    expect(inet.connections - before).toBeLessThanOrEqual(4);
    t.close();
  });

  test("at a server that does not answer, lookups waiting for a connection time out too", async () => {
    const t = open(300);
    const before = inet.connections;
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => t.lookup("never")));
    // the two that waited gave up without a connection of their own: their time was up
    expect(inet.connections - before).toBe(4);
    expect(results.map((r) => r.status)).toEqual(Array(6).fill("rejected"));
    expect(results.map((r) => String((r as PromiseRejectedResult).reason))).toEqual(Array(6).fill(expect.stringContaining("timeout")));
    t.close();
  });

  test("a server restart between lookups is transparent; a hang-up during the request is an error", async () => {
    const t = open();
    expect(await t.lookup("alice@example.com")).toBe("alice-box");
    inet.dropClients();
    expect(await t.lookup("alice@example.com")).toBe("alice-box");
    await expect(t.lookup("hangup")).rejects.toBeInstanceOf(TableError);
    t.close();
  });

  test("no server is a lookup error", async () => {
    const port = freePort();
    const t = openTableUncached(`socketmap:inet:127.0.0.1:${port}:users`, undefined);
    await expect(t.lookup("alice@example.com")).rejects.toBeInstanceOf(TableError);
    t.close();
  });

  test("a key over 10000 bytes is not found and never sent", async () => {
    const t = open();
    const sent = inet.requests.length;
    expect(await t.lookup("k".repeat(10_001))).toBeUndefined();
    expect(inet.requests.length).toBe(sent);
    t.close();
  });

  test("alias_maps (opened with noRegsub, Postfix's paranoid flags) refuse it", async () => {
    const t = openTableUncached(`socketmap:inet:${inet.address}:users`, undefined, { noRegsub: true });
    await expect(t.lookup("alice@example.com")).rejects.toThrow("not allowed for security-sensitive data");
  });

  test("a malformed name is an error when the table is opened", () => {
    for (const bad of ["socketmap:users", "socketmap:inet:127.0.0.1:users", "socketmap:inet:host:99999:x", "socketmap:unix::x"]) {
      expect(() => openTableUncached(bad, undefined)).toThrow(TableError);
    }
  });

  test("lookups after close() fail", async () => {
    const t = open();
    t.close();
    await expect(t.lookup("alice@example.com")).rejects.toBeInstanceOf(TableError);
  });
});
