/**
 * The SMTP client's TLS levels (none, may, encrypt, verify, secure),
 * smtp_tls_policy_maps, implicit TLS (smtp_tls_wrappermode) and the log
 * lines, against a scripted server with the test certificate (CN and
 * subjectAltName localhost, self-signed).
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type AgentBench, CERT, CERT_FILE, KEY, useAgentTests } from "../../helpers/smtp-client-bench.ts";

const { server, bench, scratch } = useAgentTests({ server: { tls: { cert: CERT, key: KEY }, starttls: true } });

const tlsLines = (b: AgentBench) => b.logLines().filter((l) => l.includes("TLS connection established"));

describe("smtp_tls_security_level", () => {
  test("none (Postfix's default): plaintext even when STARTTLS is offered", async () => {
    const s = server();
    const b = bench();
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r!.status).toBe("sent");
    expect(s.messages[0]!.tls).toBe(false);
    expect(s.commands).not.toContain("STARTTLS");
  });

  test("may: STARTTLS when offered, any certificate, and the Untrusted line", async () => {
    const s = server();
    const b = bench({ smtp_tls_security_level: "may" });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r!.status).toBe("sent");
    expect(s.messages[0]!.tls).toBe(true);
    expect(s.commands.filter((c) => c.startsWith("EHLO"))).toHaveLength(2);
    expect(tlsLines(b)).toHaveLength(1);
    expect(tlsLines(b)[0]).toMatch(new RegExp(`/smtp\\[\\d+\\]: Untrusted TLS connection established to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${s.port}: TLSv1\\.[23] with cipher \\S+( \\(\\d+/\\d+ bits\\))?$`));
  });

  test("may without STARTTLS: plaintext", async () => {
    const s = server({ starttls: false });
    const b = bench({ smtp_tls_security_level: "may" });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r!.status).toBe("sent");
    expect(s.messages[0]!.tls).toBe(false);
  });

  test("may with a broken handshake: the same server again in plaintext", async () => {
    const s = server({ brokenStarttls: (n) => n === 1 });
    const b = bench({ smtp_tls_security_level: "may" });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r!.status).toBe("sent");
    expect(s.connections).toBe(2);
    expect(s.messages[0]!.tls).toBe(false);
    expect(b.logLines().some((l) => l.includes("Cannot start TLS: handshake failure; retrying"))).toBe(true);
  });

  test("encrypt without STARTTLS defers", async () => {
    const s = server({ starttls: false });
    const b = bench({ smtp_tls_security_level: "encrypt" });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.4", reason: "TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]" });
    expect(s.transactions).toBe(0);
  });

  test("encrypt when the server refuses STARTTLS", async () => {
    const s = server({ onCommand: (verb) => (verb === "STARTTLS" ? "454 4.7.0 TLS not available due to local problem" : undefined) });
    const b = bench({ smtp_tls_security_level: "encrypt" });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.0", reason: "TLS is required, but host 127.0.0.1[127.0.0.1] refused to start TLS: 454 4.7.0 TLS not available due to local problem" });
  });

  test("encrypt with a broken handshake defers, no plaintext retry", async () => {
    const s = server({ brokenStarttls: () => true });
    const b = bench({ smtp_tls_security_level: "encrypt" });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.5", reason: "Cannot start TLS: handshake failure" });
    expect(s.connections).toBe(1);
  });

  test("verify with the CA and the server's name: Verified", async () => {
    const s = server();
    const b = bench({ smtp_tls_security_level: "verify", smtp_tls_CAfile: CERT_FILE });
    const [r] = await b.deliver({ nexthop: `[localhost]:${s.port}` });
    expect(r).toMatchObject({ status: "sent", relay: `localhost[127.0.0.1]:${s.port}` });
    expect(tlsLines(b)[0]).toContain(`Verified TLS connection established to localhost[127.0.0.1]:${s.port}: TLSv1.`);
  });

  test("verify with the CA in smtp_tls_CApath", async () => {
    const s = server();
    const dir = scratch("postern-capath-");
    writeFileSync(join(dir, "a1b2c3d4.0"), CERT);
    const b = bench({ smtp_tls_security_level: "verify", smtp_tls_CApath: dir });
    const [r] = await b.deliver({ nexthop: `[localhost]:${s.port}` });
    expect(r!.status).toBe("sent");
    expect(tlsLines(b)[0]).toContain("Verified TLS connection established");
  });

  test("verify without the CA: not trusted, deferred", async () => {
    const s = server();
    const b = bench({ smtp_tls_security_level: "verify" });
    const [r] = await b.deliver({ nexthop: `[localhost]:${s.port}` });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.5", reason: "Server certificate not trusted", relay: `localhost[127.0.0.1]:${s.port}` });
    expect(tlsLines(b)[0]).toContain("Untrusted TLS connection established");
    expect(s.transactions).toBe(0);
  });

  test("verify with the CA but another name: not verified, deferred", async () => {
    const s = server();
    const b = bench({ smtp_tls_security_level: "verify", smtp_tls_CAfile: CERT_FILE });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.5", reason: "Server certificate not verified" });
    expect(tlsLines(b)[0]).toContain("Trusted TLS connection established");
  });

  test("secure matches the next hop", async () => {
    const s = server();
    const b = bench({ smtp_tls_security_level: "secure", smtp_tls_CAfile: CERT_FILE });
    const [r] = await b.deliver({ nexthop: `[localhost]:${s.port}` });
    expect(r!.status).toBe("sent");
    expect(tlsLines(b)[0]).toContain("Verified TLS connection established");
  });

  test("an unknown level is a configuration problem", async () => {
    const s = server();
    const b = bench({ smtp_tls_security_level: "paranoid" });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.0", reason: "client TLS configuration problem" });
  });

  test("TLS connections are not reused unless smtp_tls_connection_reuse = yes", async () => {
    const s = server();
    const b = bench({ smtp_tls_security_level: "may" });
    await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(s.connections).toBe(2);
    const s2 = server();
    const b2 = bench({ smtp_tls_security_level: "may", smtp_tls_connection_reuse: true });
    await b2.deliver({ nexthop: `[127.0.0.1]:${s2.port}` });
    await b2.deliver({ nexthop: `[127.0.0.1]:${s2.port}` });
    expect(s2.connections).toBe(1);
    expect(s2.messages.every((m) => m.tls)).toBe(true);
  });
});

describe("SNI (smtp_tls_servername)", () => {
  test("none by default, as Postfix", async () => {
    const s = server();
    const b = bench({ smtp_tls_security_level: "may" });
    await b.deliver({ nexthop: `[localhost]:${s.port}` });
    expect(s.messages[0]!.tls).toBe(true);
    expect(s.messages[0]!.sni).toBeUndefined();
  });

  test("hostname sends the server's name; a literal name is sent as it is", async () => {
    const s = server();
    const b = bench({ smtp_tls_security_level: "may", smtp_tls_servername: "hostname" });
    await b.deliver({ nexthop: `[localhost]:${s.port}` });
    expect(s.messages[0]!.sni).toBe("localhost");
    const s2 = server();
    const b2 = bench({ smtp_tls_security_level: "may", smtp_tls_servername: "mail.example.net" });
    await b2.deliver({ nexthop: `[127.0.0.1]:${s2.port}` });
    expect(s2.messages[0]!.sni).toBe("mail.example.net");
  });
});

describe("smtp_tls_policy_maps", () => {
  test("a destination's policy overrides the default level", async () => {
    const s = server();
    // the key is the destination as written, port included
    const b2 = bench({ smtp_tls_security_level: "none", smtp_tls_policy_maps: `inline:{ {[127.0.0.1]:${s.port} = encrypt} }` });
    const [r2] = await b2.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r2!.status).toBe("sent");
    expect(s.messages[0]!.tls).toBe(true);
    const plain = server({ starttls: false });
    const b3 = bench({ smtp_tls_security_level: "encrypt", smtp_tls_policy_maps: `inline:{ {[127.0.0.1]:${plain.port} = none} }` });
    const [r3] = await b3.deliver({ nexthop: `[127.0.0.1]:${plain.port}` });
    expect(r3!.status).toBe("sent");
  });

  test("verify with match= names", async () => {
    const s = server();
    const b = bench({ smtp_tls_CAfile: CERT_FILE, smtp_tls_policy_maps: `inline:{ {[127.0.0.1]:${s.port} = verify match=localhost} }` });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r!.status).toBe("sent");
    expect(tlsLines(b)[0]).toContain("Verified TLS connection established");
  });
});

describe("implicit TLS (port 465)", () => {
  test("smtp_tls_wrappermode with encrypt", async () => {
    const s = server({ implicitTls: true, starttls: false });
    const b = bench({ smtp_tls_wrappermode: true, smtp_tls_security_level: "encrypt" });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r!.status).toBe("sent");
    expect(s.messages[0]!.tls).toBe(true);
    expect(s.commands).not.toContain("STARTTLS");
  });

  test("smtp_tls_wrappermode below encrypt is refused with a warning", async () => {
    const s = server({ implicitTls: true, starttls: false });
    const b = bench({ smtp_tls_wrappermode: true, smtp_tls_security_level: "may" });
    const [r] = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}` });
    expect(r!.status).toBe("deferred");
    expect(s.connections).toBe(0);
    expect(b.logLines().some((l) => l.includes('warning: smtp_tls_wrappermode requires "smtp_tls_security_level = encrypt" (or stronger)'))).toBe(true);
  });
});
