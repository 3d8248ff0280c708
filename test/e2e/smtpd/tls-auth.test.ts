/**
 * STARTTLS, implicit TLS and AUTH end to end, and the submission and smtps
 * services with Postfix's example overrides: a certificate from `postern
 * tls new-server-cert`, users from `postern saslpasswd`, clients swaks,
 * Python's smtplib and raw sockets. Also DNS lists against the fake DNS
 * server.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, tempDir } from "../../helpers/run.ts";
import { startFakeDns } from "../../helpers/fake-dns.ts";
import { HOST, RawSmtp, SmtpdSystem, freePort, isRoot, python, swaks, type ServiceTable } from "../../helpers/smtpd-system.ts";

const systems: SmtpdSystem[] = [];
afterAll(async () => {
  await Promise.all(systems.map((s) => s.cleanup()));
});

/** A system with a fresh self-signed certificate and the user alice (password "wonderland"). */
async function tlsSystem(params: Record<string, string | number | boolean> = {}, services: Record<string, ServiceTable> = { smtp: {} }): Promise<SmtpdSystem> {
  const sys = new SmtpdSystem({}, services);
  systems.push(sys);
  const cert = await run("postern", ["tls", "new-server-cert", "-c", sys.etc, "-q", "localhost"]);
  expect(cert.code).toBe(0);
  const [key, crt] = cert.stdout.trim().split("\n");
  const pw = await run("postern", ["saslpasswd", "-c", sys.etc, "alice"], { stdin: "wonderland\n" });
  expect(pw).toEqual({ code: 0, stdout: "", stderr: "" });
  sys.writeConfig({
    smtpd_tls_security_level: "may",
    smtpd_tls_cert_file: crt!,
    smtpd_tls_key_file: key!,
    smtpd_sasl_auth_enable: "yes",
    smtpd_tls_auth_only: "yes",
    smtpd_tls_loglevel: 1,
    ...params,
  });
  await sys.start();
  return sys;
}

async function greeted(port: number): Promise<RawSmtp> {
  const c = await RawSmtp.connect(port);
  expect(await c.reply()).toMatch(/^220 /);
  return c;
}

describe("STARTTLS and AUTH on the smtp service", () => {
  test("swaks with STARTTLS and AUTH PLAIN: relayed mail is queued, TLS and login in header, queue file and log", async () => {
    const sys = await tlsSystem({ smtpd_tls_received_header: "yes" });
    const r = await swaks(["--server", `127.0.0.1:${sys.port}`, "--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "wonderland", "--from", "alice@example.org", "--to", "friend@remote.example", "--h-Subject", "over tls"]);
    expect(r.code).toBe(0);
    const m = await sys.message("over tls");
    expect(m.text).toMatch(/^Received: from \S+ \(localhost \[127\.0\.0\.1\]\)\n\t\(using TLSv1\.[23] with cipher \S+ \(\d+\/\d+ bits\)\)\n\t\(No client certificate requested\)\n\tby \S+ \(postern\) with ESMTPSA id [0-9A-F]+\n\tfor <friend@remote\.example>; /);
    expect(m.attributes).toMatchObject({ sasl_method: "PLAIN", sasl_username: "alice" });
    await sys.waitForLog(new RegExp(`${m.id}: client=localhost\\[127\\.0\\.0\\.1\\], sasl_method=PLAIN, sasl_username=alice\\n`));
    await sys.waitForLog(/Anonymous TLS connection established from localhost\[127\.0\.0\.1\]: TLSv1\.[23] with cipher /);
  });

  test("AUTH only after STARTTLS (smtpd_tls_auth_only); LOGIN; a wrong password is 535 5.7.8", async () => {
    const sys = await tlsSystem();
    const c = await greeted(sys.port);
    const ehlo = await c.cmd("EHLO client.example");
    expect(ehlo).toContain("250-STARTTLS\r\n");
    expect(ehlo).not.toContain("AUTH");
    expect(await c.cmd(`AUTH PLAIN ${Buffer.from("\0alice\0wonderland").toString("base64")}`)).toBe("538 5.7.11 Encryption required for requested authentication mechanism\r\n");
    expect(await c.cmd("STARTTLS")).toBe("220 2.0.0 Ready to start TLS\r\n");
    await c.upgrade();
    const secure = await c.cmd("EHLO client.example");
    expect(secure).toContain("250-AUTH PLAIN LOGIN\r\n");
    expect(secure).not.toContain("STARTTLS");
    expect(await c.cmd(`AUTH PLAIN ${Buffer.from("\0alice\0wrong").toString("base64")}`)).toBe("535 5.7.8 Error: authentication failed: authentication failure\r\n");
    expect(await c.cmd("AUTH LOGIN")).toBe("334 VXNlcm5hbWU6\r\n");
    expect(await c.cmd(Buffer.from("alice").toString("base64"))).toBe("334 UGFzc3dvcmQ6\r\n");
    expect(await c.cmd(Buffer.from("wonderland").toString("base64"))).toBe("235 2.7.0 Authentication successful\r\n");
    expect(await c.cmd("MAIL FROM:<alice@example.org>")).toBe("250 2.1.0 Ok\r\n");
    expect(await c.cmd("RCPT TO:<friend@remote.example>")).toBe("250 2.1.5 Ok\r\n");
    await c.quit();
    await sys.waitForLog(/warning: localhost\[127\.0\.0\.1\]: SASL PLAIN authentication failed: authentication failure/);
  });

  test("Python smtplib: starttls() and login(); without login relaying is refused", async () => {
    const sys = await tlsSystem();
    const script = `
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1])); s.starttls(context=ctx); s.ehlo("py.example")
try:
    s.sendmail("x@example.org", ["y@remote.example"], "Subject: no\\r\\n\\r\\nx\\r\\n")
except smtplib.SMTPRecipientsRefused as e:
    print("refused", e.recipients["y@remote.example"][0], e.recipients["y@remote.example"][1].decode())
try:
    s.login("alice", "bad")
except smtplib.SMTPAuthenticationError as e:
    print("auth", e.smtp_code)
s.login("alice", "wonderland")
s.sendmail("alice@example.org", ["y@remote.example"], "Subject: smtplib tls\\r\\n\\r\\nx\\r\\n")
s.quit()
print("sent")
`;
    const r = await python(script, [String(sys.port)]);
    expect(r.out).toBe("refused 454 4.7.1 <y@remote.example>: Relay access denied\nauth 535\nsent\n");
    expect((await sys.message("smtplib tls")).attributes.sasl_username).toBe("alice");
  });

  test("plaintext pipelined after STARTTLS is never executed (CVE-2011-0411)", async () => {
    // with the default smtpd_forbid_unauth_pipelining the attempt ends the session at once
    const strict = await tlsSystem();
    const a = await greeted(strict.port);
    await a.cmd("EHLO client.example");
    a.send("STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n");
    expect(await a.reply()).toBe("554 5.5.0 Error: SMTP protocol synchronization\r\n");
    expect(await a.waitClosed()).toBe(true);
    // without it, the injected command is discarded: the first reply after TLS answers our EHLO
    const lax = await tlsSystem({ smtpd_forbid_unauth_pipelining: "no" });
    const b = await greeted(lax.port);
    await b.cmd("EHLO client.example");
    b.send("STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n");
    expect(await b.reply()).toBe("220 2.0.0 Ready to start TLS\r\n");
    await b.upgrade();
    expect(await b.cmd("EHLO client.example")).toMatch(/^250-/);
    expect(await b.cmd("RCPT TO:<x@remote.example>")).toBe("503 5.5.1 Error: need MAIL command\r\n");
    await b.quit();
    await lax.waitForLog(/disconnect from localhost\[127\.0\.0\.1\] ehlo=2 starttls=1 rcpt=0\/1 quit=1 commands=4\/5/);
  });

  test("smtpd_tls_protocols: a TLS 1.2 client is served by default, refused with >=TLSv1.3", async () => {
    const upgradeWith = async (port: number) => {
      const c = await greeted(port);
      await c.cmd("EHLO client.example");
      expect(await c.cmd("STARTTLS")).toBe("220 2.0.0 Ready to start TLS\r\n");
      try {
        await c.upgrade({ minVersion: "TLSv1.2", maxVersion: "TLSv1.2" });
        return (await c.cmd("EHLO client.example")).startsWith("250-") ? "served" : "no reply";
      } catch {
        return "refused";
      } finally {
        c.destroy();
      }
    };
    expect(await upgradeWith((await tlsSystem()).port)).toBe("served");
    expect(await upgradeWith((await tlsSystem({ smtpd_tls_protocols: ">=TLSv1.3" })).port)).toBe("refused");
  });
});

describe("the submission and smtps services (Postfix's example overrides)", () => {
  test("submission: STARTTLS first, then AUTH; unauthenticated relaying is refused; its own syslog_name", async () => {
    const sys = await tlsSystem({ smtpd_tls_auth_only: "no", smtpd_sasl_auth_enable: "no" }, { smtp: {}, submission: {} });
    const port = sys.ports.submission!;
    const c = await greeted(port);
    expect(await c.cmd("EHLO client.example")).toContain("250-STARTTLS\r\n");
    expect(await c.cmd("MAIL FROM:<alice@example.org>")).toBe("530 5.7.0 Must issue a STARTTLS command first\r\n");
    expect(await c.cmd("STARTTLS")).toBe("220 2.0.0 Ready to start TLS\r\n");
    await c.upgrade();
    expect(await c.cmd("EHLO client.example")).toContain("250-AUTH PLAIN LOGIN\r\n");
    expect(await c.cmd("MAIL FROM:<alice@example.org>")).toBe("250 2.1.0 Ok\r\n");
    expect(await c.cmd("RCPT TO:<friend@remote.example>")).toBe("554 5.7.1 <friend@remote.example>: Recipient address rejected: Access denied\r\n");
    expect(await c.cmd("RSET")).toBe("250 2.0.0 Ok\r\n");
    expect(await c.cmd(`AUTH PLAIN ${Buffer.from("\0alice\0wonderland").toString("base64")}`)).toBe("235 2.7.0 Authentication successful\r\n");
    expect(await c.cmd("MAIL FROM:<alice@example.org>")).toBe("250 2.1.0 Ok\r\n");
    expect(await c.cmd("RCPT TO:<friend@remote.example>")).toBe("250 2.1.5 Ok\r\n");
    await c.quit();
    await sys.waitForLog(/ postfix\/submission\/smtpd\[\d+\]: disconnect from localhost\[127\.0\.0\.1\] /);
    // the smtp service keeps the main settings: no AUTH there
    const p = await greeted(sys.port);
    expect(await p.cmd("EHLO client.example")).not.toContain("AUTH");
    await p.quit();
  });

  test("smtps: implicit TLS from the first byte, AUTH and relaying with swaks", async () => {
    const sys = await tlsSystem({ smtpd_tls_security_level: "", smtpd_tls_auth_only: "no", smtpd_sasl_auth_enable: "no" }, { smtps: {} });
    const r = await swaks(["--server", `127.0.0.1:${sys.ports.smtps}`, "--tlsc", "--auth", "LOGIN", "--auth-user", "alice", "--auth-password", "wonderland", "--from", "alice@example.org", "--to", "friend@remote.example", "--h-Subject", "over smtps"]);
    expect(r.code).toBe(0);
    const m = await sys.message("over smtps");
    expect(m.text).toMatch(/ with ESMTPSA id /);
    expect(m.attributes.sasl_method).toBe("LOGIN");
    await sys.waitForLog(/ postfix\/smtps\/smtpd\[\d+\]: [0-9A-F]+: client=localhost\[127\.0\.0\.1\], sasl_method=LOGIN, sasl_username=alice/);
  });
});

describe("certificates by name (tls_server_sni_maps)", () => {
  test("STARTTLS and implicit TLS present the certificate for the name asked, the default one otherwise", async () => {
    const keys = tempDir("postern-sni-");
    const pem = join(keys, "other.pem");
    const made = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other.example", "-keyout", join(keys, "k"), "-out", join(keys, "c")], { stdout: "ignore", stderr: "ignore" });
    expect(made.exitCode).toBe(0);
    writeFileSync(pem, readFileSync(join(keys, "k"), "utf8") + readFileSync(join(keys, "c"), "utf8"));
    chmodSync(pem, 0o600);
    const sys = await tlsSystem({ tls_server_sni_maps: `inline:{ {other.example = ${pem}} }` }, { smtp: {}, smtps: { listen: `127.0.0.1:${freePort()}` } });
    const subject = async (servername: string) => {
      const c = await greeted(sys.port);
      await c.cmd("EHLO client.example");
      expect(await c.cmd("STARTTLS")).toBe("220 2.0.0 Ready to start TLS\r\n");
      await c.upgrade({ servername });
      const cn = String((c.tls!.getPeerCertificate() as { subject?: { CN?: string } }).subject?.CN);
      // the session goes on over TLS
      expect(await c.cmd("EHLO client.example")).toContain("250-AUTH PLAIN LOGIN\r\n");
      await c.quit();
      return cn;
    };
    expect(await subject("other.example")).toBe("other.example");
    expect(await subject("localhost")).toBe("localhost");
    const s = await RawSmtp.connect(sys.ports.smtps!, { implicitTls: true, servername: "other.example" });
    expect(await s.reply()).toMatch(/^220 /);
    expect(String((s.tls!.getPeerCertificate() as { subject?: { CN?: string } }).subject?.CN)).toBe("other.example");
    await s.quit();
    // served through node:tls, on the sockets the master holds: both services' smtpd were started on demand with them
    const smtpds = sys.processTree().flatMap((pid) => {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        return argv[1] === "smtpd" ? [argv] : [];
      } catch {
        return [];
      }
    });
    expect(smtpds.map((argv) => [argv.includes("--on-demand"), argv[argv.indexOf("-s") + 1]])).toEqual([
      [true, "1"],
      [true, "1"],
    ]);
    rmSync(keys, { recursive: true, force: true });
  });
});

describe("commands", () => {
  test("saslpasswd: argon2id by default, bcrypt with -b, -d removes; the file is private", async () => {
    const sys = new SmtpdSystem();
    systems.push(sys);
    expect((await run("postern", ["saslpasswd", "-c", sys.etc, "bob"], { stdin: "one\n" })).code).toBe(0);
    expect((await run("postern", ["saslpasswd", "-c", sys.etc, "-b", "carol"], { stdin: "two\n" })).code).toBe(0);
    const file = join(sys.etc, "sasl_users");
    const text = await Bun.file(file).text();
    expect(text).toMatch(/^bob \$argon2id\$\S+\ncarol \$2[aby]\$10\$\S+\n$/);
    expect(await Bun.password.verify("one", text.split("\n")[0]!.split(" ")[1]!)).toBe(true);
    const st = statSync(file);
    expect(st.mode & 0o777).toBe(isRoot ? 0o640 : 0o600);
    expect((await run("postern", ["saslpasswd", "-c", sys.etc, "-d", "bob"])).code).toBe(0);
    expect(await Bun.file(file).text()).toMatch(/^carol \$2/);
    const missing = await run("postern", ["saslpasswd", "-c", sys.etc, "-d", "nobody"]);
    expect(missing.code).toBe(66);
    expect(missing.stderr).toContain(`no user "nobody" in ${file}`);
  });

  test("tls new-server-cert prints the parameters for a new key and certificate", async () => {
    const sys = new SmtpdSystem();
    systems.push(sys);
    const r = await run("postern", ["tls", "new-server-cert", "-c", sys.etc]);
    expect(r.code).toBe(0);
    const m = /^smtpd_tls_cert_file = "(.+)"\nsmtpd_tls_key_file = "(.+)"\n$/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(statSync(m![2]!).mode & 0o777).toBe(0o600);
    const x = Bun.spawnSync(["openssl", "x509", "-in", m![1]!, "-noout", "-subject"], { stdout: "pipe" });
    expect(x.stdout.toString()).toContain(`CN = ${HOST}`);
  });
});

describe("DNS lists with the fake DNS server", () => {
  test("reject_rbl_client and reject_rhsbl_sender refuse listed clients and senders", async () => {
    const dns = await startFakeDns(
      {
        "1.0.0.127.zen.test": { A: ["127.0.0.2"], TXT: ["https://zen.test/lookup?127.0.0.1"] },
        "listed.example.dbl.test": { A: ["127.0.1.2"] },
      },
      { autoStop: false },
    );
    try {
      const sys = new SmtpdSystem({
        dns_servers: dns.server,
        smtpd_client_restrictions: "reject_rbl_client zen.test",
        smtpd_sender_restrictions: "reject_rhsbl_sender dbl.test",
      });
      systems.push(sys);
      await sys.start();
      const c = await greeted(sys.port);
      await c.cmd("EHLO client.example");
      await c.cmd("MAIL FROM:<someone@listed.example>");
      expect(await c.cmd(`RCPT TO:<root@${HOST}>`)).toBe("554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.test; https://zen.test/lookup?127.0.0.1\r\n");
      await c.quit();
      expect(dns.queriesFor("1.0.0.127.zen.test", "A").length).toBeGreaterThan(0);
      sys.writeConfig({ smtpd_client_restrictions: "" });
      await sys.postern(["reload"]);
      // the smtpd processes restart on the new configuration: ask until a new session answers by it
      let answer = "";
      for (const deadline = Date.now() + 20_000; Date.now() < deadline; ) {
        const d = await greeted(sys.port);
        await d.cmd("EHLO client.example");
        await d.cmd("MAIL FROM:<someone@listed.example>");
        answer = await d.cmd(`RCPT TO:<root@${HOST}>`);
        await d.quit();
        if (!answer.includes("zen.test")) break;
      }
      expect(answer).toBe("554 5.7.1 Service unavailable; Sender address [listed.example] blocked using dbl.test\r\n");
    } finally {
      dns.stop();
    }
  });
});
