/** The milter lists: addresses, Postfix's `{ name, attr=value }` per-milter overrides, milter_protocol. */
import { describe, expect, test } from "bun:test";
import { parseMilterList, parseMilterProtocol } from "../../../../src/global/milter/spec.ts";
import { refusalOf } from "../../../../src/global/config/support.ts";

const BASE = { connectTimeoutMs: 30_000, commandTimeoutMs: 30_000, contentTimeoutMs: 300_000, protocol: 6, noHeaderReply: false, defaultAction: "tempfail" as const };

describe("milter lists", () => {
  test("inet, unix and bare-path milters in order, with the global settings", () => {
    const list = parseMilterList("inet:127.0.0.1:8891, unix:/run/rspamd.sock /run/x.sock inet:[::1]:11332", BASE);
    expect(list.map((m) => m.address)).toEqual([
      { kind: "inet", host: "127.0.0.1", port: 8891 },
      { kind: "unix", path: "/run/rspamd.sock" },
      { kind: "unix", path: "/run/x.sock" },
      { kind: "inet", host: "::1", port: 11332 },
    ]);
    expect(list[0]).toMatchObject({ name: "inet:127.0.0.1:8891", defaultAction: "tempfail", commandTimeoutMs: 30_000 });
  });

  test("{ name, attribute=value ... } overrides one milter's settings", () => {
    const [a, b] = parseMilterList("{ inet:localhost:8891, default_action=accept, command_timeout=10s, connect_timeout=2s, content_timeout=1m, protocol=4 }, inet:h:1", BASE);
    expect(a).toMatchObject({ name: "inet:localhost:8891", defaultAction: "accept", commandTimeoutMs: 10_000, connectTimeoutMs: 2000, contentTimeoutMs: 60_000, protocol: 4 });
    expect(b).toMatchObject({ defaultAction: "tempfail", protocol: 6 });
  });

  test("bad entries are refused by name", () => {
    expect(() => parseMilterList("inet:host", BASE)).toThrow(/bad milter address "inet:host"/);
    expect(() => parseMilterList("tcp:h:1", BASE)).toThrow(/expected inet:host:port or unix:\/path/);
    expect(() => parseMilterList("{ inet:h:1, default_action=maybe }", BASE)).toThrow(/bad default_action of inet:h:1 "maybe"/);
    expect(() => parseMilterList("{ inet:h:1, colour=red }", BASE)).toThrow(/unknown attribute "colour"/);
    expect(() => parseMilterList("{ }", BASE)).toThrow(/empty milter definition/);
  });

  test("milter_protocol", () => {
    expect(parseMilterProtocol("6")).toEqual({ protocol: 6, noHeaderReply: false });
    expect(parseMilterProtocol("2 no_header_reply")).toEqual({ protocol: 2, noHeaderReply: true });
    expect(() => parseMilterProtocol("5")).toThrow(/bad milter_protocol/);
  });

  test("postern check refuses a bad milter list or default action", () => {
    expect(refusalOf("smtpd_milters", "inet:127.0.0.1:8891", () => "inet:127.0.0.1:8891")).toBeUndefined();
    expect(refusalOf("smtpd_milters", "inet:nowhere", () => "inet:nowhere")).toMatch(/bad milter address/);
    expect(refusalOf("milter_default_action", "quarantine", () => "quarantine")).toBeUndefined();
    expect(refusalOf("milter_default_action", "bounce", () => "bounce")).toMatch(/not one of/);
    expect(refusalOf("non_smtpd_milters", "inet:127.0.0.1:8891", () => "inet:127.0.0.1:8891")).toBeUndefined();
    expect(refusalOf("non_smtpd_milters", "{ inet:h:1, default_action=later }", () => "{ inet:h:1, default_action=later }")).toMatch(/bad default_action/);
  });
});
