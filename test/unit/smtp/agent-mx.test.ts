/**
 * Direct delivery through MX records from the fake DNS server: preference
 * order, the next MX when one fails, implicit MX, null MX, loops, DNS
 * failures. The servers listen on 127.0.0.1 and 127.0.0.2 (both loopback)
 * at one port, which smtp_tcp_port names.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { type Params, useAgentTests } from "../../helpers/smtp-client-bench.ts";
import { useFakeDns } from "../../helpers/fake-dns.ts";
import { FakeSmtpServer, type FakeSmtpOptions } from "../../helpers/smtp-server.ts";

const dns = useFakeDns({
  "example.org": { MX: [[10, "mx1.example.org"], [20, "mx2.example.org"]] },
  "mx1.example.org": { A: ["127.0.0.2"] },
  "mx2.example.org": { A: ["127.0.0.1"] },
  "implicit.example": { A: ["127.0.0.1"] },
  "null.example": { MX: [[0, "."]] },
  "broken.example": { rcode: "SERVFAIL" },
  "deadfirst.example": { MX: [[5, "dead.example.org"], [10, "mx2.example.org"]] },
  "dead.example.org": { A: ["127.0.0.3"] },
  "loop.example": { MX: [[10, "me.loop.example"]] },
  "me.loop.example": { A: ["127.0.0.1"] },
});

let primary: FakeSmtpServer;
let secondary: FakeSmtpServer;
let primaryOpts: FakeSmtpOptions = {};
let secondaryOpts: FakeSmtpOptions = {};

// the servers' behaviour is switched per test through these hooks
beforeAll(() => {
  secondary = FakeSmtpServer.start({
    hostname: "127.0.0.1",
    onCommand: (v, l, st) => secondaryOpts.onCommand?.(v, l, st),
    onRcpt: (a) => secondaryOpts.onRcpt?.(a),
  });
  primary = FakeSmtpServer.start({
    hostname: "127.0.0.2",
    port: secondary.port,
    banner: "220 mx1 ESMTP",
    onCommand: (v, l, st) => primaryOpts.onCommand?.(v, l, st),
    onRcpt: (a) => primaryOpts.onRcpt?.(a),
  });
});
afterAll(() => {
  primary.stop();
  secondary.stop();
});

const tests = useAgentTests({ dns });
afterEach(() => {
  primaryOpts = {};
  secondaryOpts = {};
  primary.messages.length = 0;
  secondary.messages.length = 0;
});

/** A bench whose agent connects to the servers' port (known once they listen). */
const bench = (params: Params = {}) => tests.bench({ smtp_tcp_port: secondary.port, ...params });

describe("MX routing", () => {
  test("the best MX gets the mail", async () => {
    const b = bench();
    const [r] = await b.deliver({ nexthop: "example.org", recipients: ["user@example.org"] });
    expect(r).toMatchObject({ status: "sent", relay: `mx1.example.org[127.0.0.2]:${secondary.port}` });
    expect(primary.messages).toHaveLength(1);
    expect(secondary.messages).toHaveLength(0);
  });

  test("the next MX when the best one defers", async () => {
    primaryOpts = { onCommand: (v) => (v === "MAIL" ? "421 4.3.2 System not accepting network messages" : undefined) };
    const b = bench();
    const [r] = await b.deliver({ nexthop: "example.org", recipients: ["user@example.org"] });
    expect(r).toMatchObject({ status: "sent", relay: `mx2.example.org[127.0.0.1]:${secondary.port}` });
    expect(b.logLines().some((l) => l.includes(`host mx1.example.org[127.0.0.2] said: 421 4.3.2 System not accepting network messages (in reply to MAIL FROM command)`))).toBe(true);
  });

  test("the last MX's temporary failure is the result", async () => {
    primaryOpts = { onRcpt: () => "450 4.2.1 try later (primary)" };
    secondaryOpts = { onRcpt: () => "450 4.2.1 try later (secondary)" };
    const b = bench();
    const [r] = await b.deliver({ nexthop: "example.org", recipients: ["user@example.org"] });
    expect(r).toMatchObject({ status: "deferred", reason: "host mx2.example.org[127.0.0.1] said: 450 4.2.1 try later (secondary) (in reply to RCPT TO command)" });
  });

  test("the next MX when the best one cannot be reached", async () => {
    const b = bench();
    const [r] = await b.deliver({ nexthop: "deadfirst.example", recipients: ["user@deadfirst.example"] });
    expect(r).toMatchObject({ status: "sent", relay: `mx2.example.org[127.0.0.1]:${secondary.port}` });
    expect(b.logLines().some((l) => l.includes(`connect to dead.example.org[127.0.0.3]:${secondary.port}: Connection refused`))).toBe(true);
  });

  test("no MX: the domain's own address (implicit MX)", async () => {
    const b = bench();
    const [r] = await b.deliver({ nexthop: "implicit.example", recipients: ["user@implicit.example"] });
    expect(r).toMatchObject({ status: "sent", relay: `implicit.example[127.0.0.1]:${secondary.port}` });
  });

  test("a null MX bounces", async () => {
    const b = bench();
    const [r] = await b.deliver({ nexthop: "null.example", recipients: ["user@null.example"] });
    expect(r).toEqual({ index: 0, status: "bounced", dsn: "5.1.10", reason: "Domain null.example does not accept mail (nullMX)", relay: "none" });
  });

  test("a domain that does not exist bounces; a broken one defers", async () => {
    const b = bench();
    const [nx] = await b.deliver({ nexthop: "nosuch.example", recipients: ["user@nosuch.example"] });
    expect(nx).toMatchObject({ status: "bounced", dsn: "5.4.4", reason: "Host or domain name not found. Name service error for name=nosuch.example type=A: Host not found" });
    const [sf] = await b.deliver({ nexthop: "broken.example", recipients: ["user@broken.example"] });
    expect(sf).toMatchObject({ status: "deferred", dsn: "4.4.3", reason: "Host or domain name not found. Name service error for name=broken.example type=MX: Host not found, try again" });
  });

  test("an MX that is this host loops back to myself (SMTP to port 25)", async () => {
    const b = bench({ smtp_tcp_port: 25 });
    const [r] = await b.deliver({ nexthop: "loop.example", recipients: ["user@loop.example"] });
    expect(r).toEqual({ index: 0, status: "bounced", dsn: "5.4.6", reason: "mail for loop.example loops back to myself", relay: "none" });
  });

  test("the fallback relay is not used when this host is an MX (no mail loops)", async () => {
    const b = bench({ smtp_tcp_port: 25, smtp_fallback_relay: `[127.0.0.1]:${secondary.port}` });
    const [r] = await b.deliver({ nexthop: "loop.example", recipients: ["user@loop.example"] });
    expect(r!.status).toBe("bounced");
    expect(secondary.messages).toHaveLength(0);
  });

  test("the fallback relay takes mail for a domain that cannot be resolved for now", async () => {
    const b = bench({ smtp_fallback_relay: `[127.0.0.1]:${secondary.port}` });
    const [r] = await b.deliver({ nexthop: "broken.example", recipients: ["user@broken.example"] });
    expect(r).toMatchObject({ status: "sent", relay: `127.0.0.1[127.0.0.1]:${secondary.port}` });
  });

  test("disable_dns_lookups: no MX lookup, the system's host lookup (localhost)", async () => {
    const b = bench({ disable_dns_lookups: true });
    dns.clearQueries();
    const [r] = await b.deliver({ nexthop: "localhost", recipients: ["user@localhost"] });
    expect(r).toMatchObject({ status: "sent", relay: `localhost[127.0.0.1]:${secondary.port}` });
    expect(dns.queries).toEqual([]);
  });

  test("smtp_mx_address_limit caps the servers tried", async () => {
    primaryOpts = { onCommand: (v) => (v === "MAIL" ? "421 4.3.2 busy" : undefined) };
    const b = bench({ smtp_mx_address_limit: 1 });
    const [r] = await b.deliver({ nexthop: "example.org", recipients: ["user@example.org"] });
    expect(r).toMatchObject({ status: "deferred", reason: "host mx1.example.org[127.0.0.2] said: 421 4.3.2 busy (in reply to MAIL FROM command)" });
    expect(secondary.messages).toHaveLength(0);
  });
});
