/**
 * check_policy_service (SMTPD_POLICY_README) against a policy server
 * written here: Postfix's request attributes, every action a server may
 * answer (evaluated by the access tables' evaluator), connection reuse and
 * its limits, and the default action when the server is down, slow or
 * answers nonsense.
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultsOnlyConfig } from "../../../src/global/config/config.ts";
import type { DnsQuerier } from "../../../src/global/dns/index.ts";
import { formatReply } from "../../../src/smtpd/protocol/reply.ts";
import type { AcceptedRecipient, PolicyResult, SessionView } from "../../../src/smtpd/protocol/types.ts";
import { Anvil } from "../../../src/smtpd/anvil.ts";
import { SmtpdPolicy } from "../../../src/smtpd/policy.ts";
import { hostMatcherFor } from "../../../src/smtpd/restrictions/host-list.ts";
import { closeIdlePolicyConnections, decodeReply, encodeRequest, LINE_LIMIT, REPLY_LIMIT } from "../../../src/smtpd/restrictions/policy-client.ts";
import { waitFor } from "../../helpers/wait.ts";
import { startPolicyServer as startServer, type PolicyServer } from "../../helpers/policy-server.ts";

const action = (a: string) => `action=${a}\n\n`;

const BASE: Record<string, string> = {
  myhostname: "mx.example.test",
  mydomain: "example.test",
  myorigin: "mx.example.test",
  mydestination: "mx.example.test, localhost",
  inet_interfaces: "127.0.0.1",
  mynetworks: "10.0.0.0/8",
  relay_domains: "",
  local_recipient_maps: "",
  alias_maps: "",
  smtpd_relay_restrictions: "",
  smtpd_policy_service_retry_delay: "0s",
};

const noDns: DnsQuerier = { query: async () => ({ status: "nxdomain" }) } as unknown as DnsQuerier;

function smtpd(params: Record<string, string>) {
  const config = defaultsOnlyConfig().withOverrides({ ...BASE, ...params });
  const logs: string[] = [];
  const mailParams = { size: 1234 };
  const view: SessionView = {
    client: { address: "192.0.2.7", port: 40000, name: "client.example.org", reverseName: "client.example.org", nameStatus: "ok" },
    helo: "helo.example.org",
    esmtp: true,
    protocol: "ESMTP",
    tls: { protocol: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", bits: 256 },
    sasl: { method: "PLAIN", username: "alice" },
    sender: "sender@example.org",
    mailParams,
    recipients: [],
    pipelined: false,
    pipeliningAllowed: false,
  };
  const p = new SmtpdPolicy({
    config,
    service: "smtp",
    dns: noDns,
    mynetworks: hostMatcherFor(config, "mynetworks"),
    limitExceptions: hostMatcherFor(config, "smtpd_client_event_limit_exceptions"),
    anvil: new Anvil(60_000),
    names: { name: "client.example.org", nameStatus: "ok", reverseName: "client.example.org", reverseNameStatus: "ok" },
    warn: (t) => logs.push(`warning: ${t}`),
    info: (t) => logs.push(t),
  });
  const rcpt = (address: string): Promise<PolicyResult> => p.rcpt(view, { address, written: address } as AcceptedRecipient);
  return { p, view, rcpt, logs };
}

const text = (r: PolicyResult) => (r.reject ? formatReply(r.reject).trimEnd() : "OK");

let server: PolicyServer | undefined;
afterEach(async () => {
  closeIdlePolicyConnections();
  await server?.stop();
  server = undefined;
});

describe("the request", () => {
  test("Postfix's attributes, one instance per transaction, then the reply's action decides", async () => {
    server = await startServer(() => action("DUNNO"));
    const { rcpt } = smtpd({ smtpd_recipient_restrictions: `check_policy_service ${server.address}`, smtpd_policy_service_policy_context: "ctx1" });
    expect(text(await rcpt("a@mx.example.test"))).toBe("OK");
    expect(text(await rcpt("b@mx.example.test"))).toBe("OK");
    const [first, second] = server.requests;
    expect(Object.fromEntries(first!)).toMatchObject({
      request: "smtpd_access_policy",
      protocol_state: "RCPT",
      protocol_name: "ESMTP",
      client_address: "192.0.2.7",
      client_name: "client.example.org",
      client_port: "40000",
      reverse_client_name: "client.example.org",
      helo_name: "helo.example.org",
      sender: "sender@example.org",
      recipient: "a@mx.example.test",
      recipient_count: "0",
      size: "1234",
      sasl_method: "PLAIN",
      sasl_username: "alice",
      encryption_protocol: "TLSv1.3",
      encryption_cipher: "TLS_AES_256_GCM_SHA384",
      encryption_keysize: "256",
      policy_context: "ctx1",
      compatibility_level: "3.7",
    });
    for (const name of ["queue_id", "instance", "etrn_domain", "sasl_sender", "ccert_subject", "ccert_fingerprint", "server_address", "mail_version"]) expect(first!.has(name)).toBe(true);
    expect(second!.get("recipient")).toBe("b@mx.example.test");
    expect(second!.get("instance")).toBe(first!.get("instance")!);
  });

  test("UTF-8 both ways: an SMTPUTF8 sender reaches the server as sent, a PREPEND with UTF-8 comes back whole", async () => {
    server = await startServer(() => action("PREPEND X-Note: café ✓"));
    const { p, view } = smtpd({ smtpd_recipient_restrictions: `check_policy_service ${server.address}` });
    const r = await p.rcpt({ ...view, sender: "jörg@exämple.org" }, { address: "a@mx.example.test", written: "a@mx.example.test" });
    expect(r.actions).toEqual([{ kind: "prepend", header: "X-Note: café ✓" }]);
    expect(server.requests[0]!.get("sender")).toBe("jörg@exämple.org");
  });

  test("a value holding a newline cannot start an attribute of its own", () => {
    expect(encodeRequest([["sender", "a@b\nrecipient=evil"]])).toBe("sender=a@b?recipient=evil\n\n");
  });

  test("in every list: protocol_state is the command the list answers", async () => {
    server = await startServer(() => action("DUNNO"));
    const srv = server;
    const check = `check_policy_service ${srv.address}`;
    const { p, view } = smtpd({
      smtpd_delay_reject: "no",
      smtpd_client_restrictions: check,
      smtpd_helo_restrictions: check,
      smtpd_sender_restrictions: check,
      smtpd_data_restrictions: check,
      smtpd_etrn_restrictions: check,
    });
    await p.connect(view);
    await p.helo(view, "helo.example.org");
    await p.mail(view, "sender@example.org");
    await p.data({ ...view, recipients: [{ address: "a@x", written: "a@x" }] });
    await p.etrn(view, "relay.example");
    expect(srv.requests.map((r) => r.get("protocol_state"))).toEqual(["CONNECT", "EHLO", "MAIL", "DATA", "ETRN"]);
    expect(srv.requests[3]!.get("recipient_count")).toBe("1");
    expect(srv.requests[4]!.get("etrn_domain")).toBe("relay.example");
  });

  test("END-OF-MESSAGE gets the recipient count and the message's size", async () => {
    server = await startServer(() => action("DUNNO"));
    const { p, view } = smtpd({ smtpd_end_of_data_restrictions: `check_policy_service ${server.address}` });
    const withRcpts = { ...view, recipients: [{ address: "a@x", written: "a@x" }, { address: "b@x", written: "b@x" }] };
    expect(text(await p.endOfData(withRcpts, 4321))).toBe("OK");
    expect(server.requests[0]!.get("protocol_state")).toBe("END-OF-MESSAGE");
    expect(server.requests[0]!.get("recipient_count")).toBe("2");
    expect(server.requests[0]!.get("size")).toBe("4321");
  });
});

describe("the actions a policy server may answer", () => {
  const answers: Record<string, string> = {
    "ok@mx.example.test": "OK",
    "dunno@mx.example.test": "DUNNO",
    "reject@mx.example.test": "REJECT go away",
    "defer@mx.example.test": "DEFER try later",
    "code@mx.example.test": "550 5.7.0 custom text",
    "soft@mx.example.test": "421 4.7.0 busy",
    "dip@mx.example.test": "DEFER_IF_PERMIT greylisted",
    "dir@mx.example.test": "DEFER_IF_REJECT maybe",
    "prepend@mx.example.test": "PREPEND X-Policy: checked",
    "hold@mx.example.test": "HOLD",
    "discard@mx.example.test": "DISCARD",
    "filter@mx.example.test": "FILTER smtp:[127.0.0.1]:10025",
    "redirect@mx.example.test": "REDIRECT other@elsewhere.example",
    "bcc@mx.example.test": "BCC copy@elsewhere.example",
    "warn@mx.example.test": "WARN looks odd",
    "info@mx.example.test": "INFO noted",
    "restriction@mx.example.test": "reject_unauth_destination",
    "relay@other.example": "reject_unauth_destination",
  };

  async function run(address: string, after = "permit") {
    server ??= await startServer((req) => action(answers[req.get("recipient")!] ?? "DUNNO"));
    const w = smtpd({ smtpd_recipient_restrictions: `check_policy_service ${server.address}, ${after}` });
    return { r: await w.rcpt(address), logs: w.logs };
  }

  test("OK and DUNNO", async () => {
    expect(text((await run("ok@mx.example.test", "reject")).r)).toBe("OK");
    expect(text((await run("dunno@mx.example.test", "reject")).r)).toBe("554 5.7.1 <dunno@mx.example.test>: Recipient address rejected: Access denied");
  });

  test("REJECT, DEFER and reply codes, with Postfix's texts", async () => {
    expect(text((await run("reject@mx.example.test")).r)).toBe("554 5.7.1 <reject@mx.example.test>: Recipient address rejected: go away");
    expect(text((await run("defer@mx.example.test")).r)).toBe("450 4.7.1 <defer@mx.example.test>: Recipient address rejected: try later");
    expect(text((await run("code@mx.example.test")).r)).toBe("550 5.7.0 <code@mx.example.test>: Recipient address rejected: custom text");
    expect(text((await run("soft@mx.example.test")).r)).toBe("421 4.7.0 <soft@mx.example.test>: Recipient address rejected: busy");
  });

  test("DEFER_IF_PERMIT and DEFER_IF_REJECT", async () => {
    expect(text((await run("dip@mx.example.test")).r)).toBe("450 4.7.1 <dip@mx.example.test>: Recipient address rejected: greylisted");
    expect(text((await run("dip@mx.example.test", "reject")).r)).toBe("554 5.7.1 <dip@mx.example.test>: Recipient address rejected: Access denied");
    expect(text((await run("dir@mx.example.test", "reject")).r)).toBe("450 4.7.1 <dir@mx.example.test>: Recipient address rejected: Access denied");
  });

  test("PREPEND, HOLD, DISCARD, FILTER, REDIRECT and BCC become the message's actions", async () => {
    expect((await run("prepend@mx.example.test")).r.actions).toEqual([{ kind: "prepend", header: "X-Policy: checked" }]);
    expect((await run("hold@mx.example.test")).r.actions?.[0]).toMatchObject({ kind: "hold" });
    expect((await run("discard@mx.example.test")).r.actions?.[0]).toMatchObject({ kind: "discard" });
    expect((await run("filter@mx.example.test")).r.actions).toEqual([
      { kind: "filter", filter: "smtp:[127.0.0.1]:10025", reason: "<filter@mx.example.test>: Recipient address triggers FILTER smtp:[127.0.0.1]:10025", stage: "RCPT", subject: "filter@mx.example.test" },
    ]);
    expect((await run("redirect@mx.example.test")).r.actions?.[0]).toMatchObject({ kind: "redirect", address: "other@elsewhere.example" });
    expect((await run("bcc@mx.example.test")).r.actions?.[0]).toMatchObject({ kind: "bcc", address: "copy@elsewhere.example" });
  });

  test("WARN and INFO log and let the list go on", async () => {
    const w = await run("warn@mx.example.test", "reject");
    expect(text(w.r)).toMatch(/^554 /);
    expect(w.logs.some((l) => l.includes("looks odd"))).toBe(true);
    const i = await run("info@mx.example.test");
    expect(text(i.r)).toBe("OK");
    expect(i.logs.some((l) => l.includes("noted"))).toBe(true);
  });

  test("a restriction name is evaluated in place", async () => {
    expect(text((await run("restriction@mx.example.test")).r)).toBe("OK");
    expect(text((await run("relay@other.example")).r)).toBe("554 5.7.1 <relay@other.example>: Relay access denied");
  });
});

describe("connections", () => {
  test("one connection serves request after request", async () => {
    server = await startServer(() => action("DUNNO"));
    const { rcpt } = smtpd({ smtpd_recipient_restrictions: `check_policy_service ${server.address}` });
    for (let i = 0; i < 5; i++) await rcpt(`u${i}@mx.example.test`);
    expect(server.requests.length).toBe(5);
    expect(server.connections).toBe(1);
  });

  test("smtpd_policy_service_request_limit closes the connection after that many requests", async () => {
    server = await startServer(() => action("DUNNO"));
    const { rcpt } = smtpd({ smtpd_recipient_restrictions: `check_policy_service ${server.address}`, smtpd_policy_service_request_limit: "2" });
    for (let i = 0; i < 5; i++) await rcpt(`u${i}@mx.example.test`);
    expect(server.connections).toBe(3);
  });

  test("max_idle closes an idle connection; the next request opens a new one", async () => {
    server = await startServer(() => action("DUNNO"));
    const srv = server;
    const { rcpt } = smtpd({ smtpd_recipient_restrictions: `check_policy_service { ${srv.address}, max_idle=1s }` });
    await rcpt("a@mx.example.test");
    await waitFor("the idle connection closed", () => srv.closed === 1, 10_000);
    await rcpt("b@mx.example.test");
    expect(srv.connections).toBe(2);
  });

  test("max_ttl: a connection older than it is not used again", async () => {
    server = await startServer(() => action("DUNNO"));
    const { rcpt } = smtpd({ smtpd_recipient_restrictions: `check_policy_service { ${server.address}, max_ttl=0s }` });
    await rcpt("a@mx.example.test");
    await rcpt("b@mx.example.test");
    expect(server.connections).toBe(2);
  });

  test("a unix socket", async () => {
    const dir = mkdtempSync(join(tmpdir(), "postern-policy-"));
    try {
      server = await startServer(() => action("REJECT unix says no"), join(dir, "policy"));
      const { rcpt } = smtpd({ smtpd_recipient_restrictions: `check_policy_service ${server.address}` });
      expect(text(await rcpt("a@mx.example.test"))).toBe("554 5.7.1 <a@mx.example.test>: Recipient address rejected: unix says no");
    } finally {
      await server?.stop();
      server = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("when the server cannot answer", () => {
  const closedPort = async () => {
    const s = await startServer(() => undefined);
    const address = s.address;
    await s.stop();
    return address;
  };

  test("down: smtpd_policy_service_default_action, after try_limit attempts", async () => {
    const address = await closedPort();
    const { rcpt, logs } = smtpd({ smtpd_recipient_restrictions: `check_policy_service ${address}, permit` });
    expect(text(await rcpt("a@mx.example.test"))).toBe("451 4.3.5 <a@mx.example.test>: Recipient address rejected: Server configuration problem");
    expect(logs).toContain(`warning: problem talking to server ${address}: Connection refused`);
  });

  test("the entry's default_action overrides the parameter; the list goes on after DUNNO", async () => {
    const address = await closedPort();
    const { rcpt } = smtpd({ smtpd_recipient_restrictions: `check_policy_service { ${address}, default_action=DUNNO }, reject` });
    expect(text(await rcpt("a@mx.example.test"))).toMatch(/^554 5.7.1 .*Access denied$/);
    const { rcpt: r2 } = smtpd({ smtpd_recipient_restrictions: `check_policy_service ${address}, permit`, smtpd_policy_service_default_action: "DUNNO" });
    expect(text(await r2("a@mx.example.test"))).toBe("OK");
  });

  test("timeout: a server that never answers gets the default action; try_limit counts the attempts", async () => {
    server = await startServer(() => undefined);
    const { rcpt } = smtpd({ smtpd_recipient_restrictions: `check_policy_service { ${server.address}, timeout=1s, try_limit=2 }, permit` });
    expect(text(await rcpt("a@mx.example.test"))).toMatch(/^451 4.3.5 /);
    expect(server.requests.length).toBe(2);
  });

  test("a reply without an action, a malformed one or an oversized one gets the default action", async () => {
    for (const bad of ["hello=world\n\n", "no equals sign\n\n", `action=${"x".repeat(LINE_LIMIT + 10)}\n\n`, `${"a=b\n".repeat(REPLY_LIMIT / 4 + 10)}\n`]) {
      server = await startServer(() => bad);
      const { rcpt } = smtpd({ smtpd_recipient_restrictions: `check_policy_service { ${server.address}, try_limit=1 }, permit` });
      expect(text(await rcpt("a@mx.example.test"))).toMatch(/^451 4.3.5 /);
      closeIdlePolicyConnections();
      await server.stop();
      server = undefined;
    }
  });

  test("a reply text with a CR or beyond 510 characters stays one bounded reply line", async () => {
    server = await startServer(() => action(`REJECT bad\r250 2.0.0 Ok ${"x".repeat(600)}`));
    const { rcpt } = smtpd({ smtpd_recipient_restrictions: `check_policy_service ${server.address}` });
    const wire = formatReply((await rcpt("a@mx.example.test")).reject!);
    expect(wire).toStartWith("554 5.7.1 <a@mx.example.test>: Recipient address rejected: bad 250 2.0.0 Ok x");
    expect(wire.length).toBe(512);
    expect(wire.indexOf("\r")).toBe(510);
  });

  test("a bad service name is a configuration error", async () => {
    const { rcpt, logs } = smtpd({ smtpd_recipient_restrictions: "check_policy_service tcp:nowhere, permit" });
    expect(text(await rcpt("a@mx.example.test"))).toBe("451 4.3.5 Server configuration error");
    expect(logs.some((l) => l.includes("expected inet:host:port or unix:pathname"))).toBe(true);
  });
});

describe("the reply decoder", () => {
  test("waits for the empty line; refuses data after it", () => {
    expect(decodeReply("action=OK\n")).toBeUndefined();
    expect(decodeReply("action=OK\n\n")?.get("action")).toBe("OK");
    expect(() => decodeReply("action=OK\n\naction=REJECT\n\n")).toThrow();
  });
});

afterAll(() => closeIdlePolicyConnections());
