/**
 * Text from the network or a local user that reaches the log or an SMTP
 * reply: control characters in an AUTH mechanism name and a sendmail
 * sender never reach the maillog raw (Postfix's printable() on every log
 * line), and a DNS list's TXT record with CRLF and 2,000 characters turns
 * into one bounded, printable reply line.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { startFakeDns } from "../../helpers/fake-dns.ts";
import { run } from "../../helpers/run.ts";
import { HOST, RawSmtp, SmtpdSystem, waitFor } from "../../helpers/smtpd-system.ts";

const systems: SmtpdSystem[] = [];
afterAll(async () => {
  await Promise.all(systems.map((s) => s.cleanup()));
});

/** Controls a terminal acts on (ESC, BEL, backspace), plus a C1 CSI and NUL where the path carries them. */
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f\u0080-\u009f]/;

describe("log lines are printable", () => {
  test("ESC in an AUTH mechanism name and in a sendmail sender becomes ? in the maillog", async () => {
    const sys = new SmtpdSystem({ smtpd_sasl_auth_enable: "yes", smtpd_tls_auth_only: "no" });
    systems.push(sys);
    const pw = await run("postern", ["saslpasswd", "-c", sys.etc, "alice"], { stdin: "wonderland\n" });
    expect(pw.code).toBe(0);
    await sys.start();

    const c = await RawSmtp.connect(sys.port);
    expect(await c.reply()).toMatch(/^220 /);
    expect(await c.cmd("EHLO client.example")).toContain("250-AUTH");
    expect(await c.cmd("AUTH X\x1b]0;owned\x07\x1b[2J")).toMatch(/^535 5\.7\.8 /);
    await c.quit();
    await sys.waitForLog(/SASL X\?\]0;OWNED\?\?\[2J authentication failed: Invalid authentication mechanism/);

    // sendmail refuses such a sender (pickup would), and says so in the log printable too
    const r = await sys.sendmail(["-i", "-f", "esc\x1bred\x07@example.test", "--", `root@${HOST}`], "Subject: esc-sender\n\nbody\n");
    expect(r.code).toBe(65);
    expect(r.stderr).not.toMatch(RAW_CONTROL);
    await sys.waitForLog(/sendmail\[\d+\]: fatal: .*malformed sender address \(a control character\): esc\?red\?@example\.test/);
    expect(sys.log()).not.toMatch(RAW_CONTROL);
  }, 60_000);
});

describe("DNS list TXT text in replies", () => {
  test("a TXT record with CRLF and 2,000 characters gives one printable reply line of at most 512 octets", async () => {
    const long = Array.from({ length: 8 }, () => "x".repeat(250));
    const dns = await startFakeDns(
      {
        "1.0.0.127.evil.test": { A: ["127.0.0.2"], TXT: [["listed\r\n250 2.0.0 injected\r\n", "\x1b[2J", ...long], ["second record"]] },
      },
      { autoStop: false },
    );
    try {
      const sys = new SmtpdSystem({ dns_servers: dns.server, smtpd_client_restrictions: "reject_rbl_client evil.test" });
      systems.push(sys);
      await sys.start();
      const c = await RawSmtp.connect(sys.port);
      expect(await c.reply()).toMatch(/^220 /);
      await c.cmd("EHLO client.example");
      await c.cmd("MAIL FROM:<someone@example.test>");
      const answer = await c.cmd(`RCPT TO:<root@${HOST}>`);
      await c.quit();
      // one line: the CRLF of the TXT text did not start a reply of its own
      expect(answer.split("\r\n")).toEqual([expect.stringMatching(/^554 5\.7\.1 Service unavailable; Client host \[127\.0\.0\.1\] blocked using evil\.test; listed__250 2\.0\.0 injected___\[2Jxxx+$/), ""]);
      expect(answer.length).toBeLessThanOrEqual(512);
      expect(answer.slice(0, -2)).not.toMatch(/[^\x20-\x7e]/);
      await waitFor("the reject log line", () => /NOQUEUE: reject: RCPT from .*blocked using evil\.test/.test(sys.log()));
      expect(sys.log()).not.toMatch(RAW_CONTROL);
    } finally {
      dns.stop();
    }
  }, 60_000);
});
