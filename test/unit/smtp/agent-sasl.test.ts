/**
 * SASL client authentication: PLAIN and LOGIN over STARTTLS and implicit
 * TLS, XOAUTH2 with a token from a file or a command, the password table
 * keys, the security options, and failures in Postfix's words.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CERT, KEY, useAgentTests } from "../../helpers/smtp-client-bench.ts";
import type { FakeSmtpOptions } from "../../helpers/smtp-server.ts";

const users = { relayuser: "s3cret pass:word" };
const { server, bench, scratch: scratchDir } = useAgentTests({
  server: { tls: { cert: CERT, key: KEY }, starttls: true, auth: { mechanisms: ["PLAIN", "LOGIN"], users, onlyUnderTls: true } },
  params: { smtp_sasl_auth_enable: true, smtp_tls_security_level: "encrypt", smtp_sasl_security_options: "noanonymous" },
});
const scratch = () => scratchDir("postern-sasl-");

const passwords = (key: string, value = "relayuser:s3cret pass:word") => `inline:{ {${key} = ${value}} }`;

describe("PLAIN and LOGIN", () => {
  test("a smarthost with a login over STARTTLS ([host]:port key)", async () => {
    const s = server();
    const b = bench({ smtp_sasl_password_maps: passwords(`[127.0.0.1]:${s.port}`) });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r!.status).toBe("sent");
    expect(s.messages[0]).toMatchObject({ tls: true, authUser: "relayuser" });
    expect(s.commands.find((c) => c.startsWith("AUTH"))).toStartWith("AUTH PLAIN ");
  });

  test("LOGIN when the server offers only LOGIN", async () => {
    const s = server({ auth: { mechanisms: ["LOGIN"], users } });
    const b = bench({ smtp_sasl_password_maps: passwords("127.0.0.1") });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r!.status).toBe("sent");
    expect(s.messages[0]!.authUser).toBe("relayuser");
    expect(s.commands).toContain("AUTH LOGIN");
  });

  test("over implicit TLS (port 465)", async () => {
    const s = server({ implicitTls: true, starttls: false });
    const b = bench({ smtp_tls_wrappermode: true, smtp_sasl_password_maps: passwords("127.0.0.1") });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r!.status).toBe("sent");
    expect(s.messages[0]).toMatchObject({ tls: true, authUser: "relayuser" });
  });

  test("a wrong password defers with the server's reply (smtp_sasl_auth_soft_bounce)", async () => {
    const s = server();
    const b = bench({ smtp_sasl_password_maps: passwords("127.0.0.1", "relayuser:wrong") });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r).toMatchObject({
      status: "deferred",
      dsn: "4.7.8",
      reason: "SASL authentication failed; server 127.0.0.1[127.0.0.1] said: 535 5.7.8 Error: authentication failed: authentication failure",
      relay: `127.0.0.1[127.0.0.1]:${s.port}`,
    });
    expect(s.transactions).toBe(0);
  });

  test("Postfix's default security options (noplaintext) leave no mechanism; the log says why", async () => {
    const s = server();
    const b = bench({ smtp_sasl_security_options: "noplaintext, noanonymous", smtp_sasl_password_maps: passwords("127.0.0.1") });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.0", reason: "SASL authentication failed; cannot authenticate to server 127.0.0.1[127.0.0.1]: no mechanism available" });
    expect(b.logLines().some((l) => l.includes(`warning: 127.0.0.1[127.0.0.1]:${s.port}: no usable SASL mechanism: server offered PLAIN LOGIN; we have PLAIN LOGIN; excluded: PLAIN (noplaintext), LOGIN (noplaintext)`))).toBe(true);
  });

  test("smtp_sasl_tls_security_options apply under TLS", async () => {
    const s = server();
    const b = bench({ smtp_sasl_security_options: "noplaintext, noanonymous", smtp_sasl_tls_security_options: "noanonymous", smtp_sasl_password_maps: passwords("127.0.0.1") });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r!.status).toBe("sent");
  });

  test("no password for the server: no AUTH", async () => {
    const s = server();
    const b = bench({ smtp_sasl_password_maps: passwords("other.example") });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r!.status).toBe("sent");
    expect(s.commands.some((c) => c.startsWith("AUTH"))).toBe(false);
  });

  test("per sender with smtp_sender_dependent_authentication", async () => {
    const s = server({ auth: { mechanisms: ["PLAIN"], users: { alice: "apass", relayuser: users.relayuser }, onlyUnderTls: true } });
    const b = bench({
      smtp_sender_dependent_authentication: true,
      smtp_sasl_password_maps: `inline:{ {alice@example.test = alice:apass}, {127.0.0.1 = relayuser:s3cret pass:word} }`,
    });
    await b.deliver({ nexthop: `[127.0.0.1]:${s.port}`, sender: "alice@example.test" });
    await b.deliver({ nexthop: `[127.0.0.1]:${s.port}`, sender: "bob@example.test" });
    expect(s.messages.map((m) => `${m.sender} ${m.authUser}`)).toEqual(["alice@example.test alice", "bob@example.test relayuser"]);
  });

  test("authenticated connections are reused only for the same login", async () => {
    const s = server({ starttls: false, auth: { mechanisms: ["PLAIN"], users } });
    const b = bench({ smtp_tls_security_level: "none", smtp_sasl_password_maps: passwords("127.0.0.1") });
    await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(s.connections).toBe(1);
    expect(s.commands.filter((c) => c.startsWith("AUTH"))).toHaveLength(1);
    expect(s.messages.every((m) => m.authUser === "relayuser")).toBe(true);
  });
});

describe("XOAUTH2", () => {
  const oauth = (o: FakeSmtpOptions = {}) => server({ auth: { mechanisms: ["XOAUTH2", "PLAIN", "LOGIN"], users, tokens: { "me@gmail.example": "ya29.token-value" }, onlyUnderTls: true }, ...o });

  test("a token from a file (plain or as JSON with access_token)", async () => {
    for (const content of ["ya29.token-value\n", '{"access_token": "ya29.token-value", "expires_in": 3599}']) {
      const s = oauth();
      const tokenFile = join(scratch(), "token");
      writeFileSync(tokenFile, content);
      const b2 = bench({ smtp_sasl_password_maps: passwords("127.0.0.1", "me@gmail.example:unused"), smtp_sasl_xoauth2_token_file: tokenFile });
      const [r] = await b2.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
      expect(r!.status).toBe("sent");
      expect(s.messages[0]!.authUser).toBe("me@gmail.example");
      expect(s.commands.find((c) => c.startsWith("AUTH"))).toStartWith("AUTH XOAUTH2 ");
    }
  });

  test("a token from a command, which gets the user name", async () => {
    const s = oauth();
    const script = join(scratch(), "get-token");
    writeFileSync(script, '#!/bin/sh\n[ "$SASL_USERNAME" = "me@gmail.example" ] || exit 3\necho ya29.token-value\n');
    chmodSync(script, 0o755);
    const b2 = bench({ smtp_sasl_password_maps: passwords("127.0.0.1", "me@gmail.example:"), smtp_sasl_xoauth2_token_command: script });
    const [r] = await b2.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r!.status).toBe("sent");
    expect(s.messages[0]!.authUser).toBe("me@gmail.example");
  });

  test("a stale token: the server's challenge is answered and its 535 reported", async () => {
    const s = oauth();
    const tokenFile = join(scratch(), "token");
    writeFileSync(tokenFile, "expired-token\n");
    const b2 = bench({ smtp_sasl_password_maps: passwords("127.0.0.1", "me@gmail.example:"), smtp_sasl_xoauth2_token_file: tokenFile, smtp_sasl_mechanism_filter: "xoauth2" });
    const [r] = await b2.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.8", reason: "SASL authentication failed; server 127.0.0.1[127.0.0.1] said: 535 5.7.8 Username and Password not accepted" });
    expect(s.commands).toContain("");
  });

  test("a failing token command defers", async () => {
    const s = oauth();
    const b = bench({ smtp_sasl_password_maps: passwords("127.0.0.1", "me@gmail.example:"), smtp_sasl_xoauth2_token_command: "/bin/false" });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.0" });
    expect(r!.reason).toStartWith("SASL authentication failed; cannot get an XOAUTH2 token for server 127.0.0.1[127.0.0.1]: token command");
  });
});
