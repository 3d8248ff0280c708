/**
 * DKIM signing end to end (issue 15, part 1): keys made with `postern dkim
 * new-key`, mail relayed to a sink (the next hop), each signature checked
 * by an independent verifier (python3-dkim) with the published record.
 *
 * - sendmail (a local submission): 8-bit body, a line longer than the SMTP
 *   client's 998-byte limit, folded headers; From: rewritten by cleanup.
 * - SMTP from a client in mynetworks (a second service whose mynetworks
 *   holds 127.0.0.1), with headers folded by the client and blanks at line
 *   ends: signed, Ed25519 for its domain.
 * - SMTP from a client that logged in (AUTH PLAIN on a "login" service): signed.
 * - SMTP from outside (not mynetworks, not authenticated) to a relay
 *   domain: relayed without a signature.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { isRoot, message } from "../../helpers/mail-system.ts";
import { relayToSink, type RelayToSink } from "../../helpers/relay-sink.ts";
import { RawSmtp, type SmtpdSystem } from "../../helpers/smtpd-system.ts";
import { useFakeDns } from "../../helpers/fake-dns.ts";
import { verifyDkim } from "../../helpers/dkim-verify.ts";
import { bin, run } from "../../helpers/run.ts";
import { createPrivateKey } from "node:crypto";
import { dkimRecordText } from "../../../src/global/dkim/keys.ts";

describe.skipIf(!isRoot)("DKIM signing", () => {
  // every name the servers ask about is unknown, answered at once, on 127.0.0.1
  const dns = useFakeDns({});
  let sys: SmtpdSystem;
  let bench: RelayToSink;
  const records: Record<string, string> = {};
  /** What new-key printed, by selector. */
  const printed: Record<string, string> = {};

  beforeAll(async () => {
    bench = await relayToSink(
      {
        relay_transport: "smtp",
        relay_domains: "sink.example",
        dns_servers: dns.server,
        dkim_sign_maps: "inline:{ example.test=s1, .example.test=s1, signer.example=ed }",
      },
      (s) => {
        // keys as an administrator makes them, before the start (the daemons read them as root then)
        for (const args of [["example.test", "s1"], ["--ed25519", "signer.example", "ed"]]) {
          const r = Bun.spawnSync([bin(), "dkim", "new-key", "-c", s.etc, ...args], { stdout: "pipe", stderr: "pipe" });
          if (r.exitCode !== 0) throw new Error(`dkim new-key ${args.join(" ")}: ${r.stderr.toString()}`);
          printed[args.at(-1)!] = r.stdout.toString();
        }
        const pw = Bun.spawnSync([bin(), "saslpasswd", "-c", s.etc, "alice"], { stdin: Buffer.from("wonderland\n"), stdout: "pipe", stderr: "pipe" });
        if (pw.exitCode !== 0) throw new Error(`saslpasswd: ${pw.stderr.toString()}`);
        return {};
      },
      // "inside" is a service whose mynetworks holds the test's client address; "login" offers AUTH
      { smtp: {}, inside: { mynetworks: "127.0.0.0/8" }, login: { smtpd_sasl_auth_enable: "yes", smtpd_tls_auth_only: "no" } },
    );
    ({ sys } = bench);
    // the verifier gets the record as new-key printed it (its one-line form)
    for (const [d, sel] of [["example.test", "s1"], ["signer.example", "ed"]]) {
      const value = /\nv=DKIM1; [^\n]+/.exec(printed[sel!]!)?.[0].trim();
      if (!value) throw new Error(`new-key printed no record: ${printed[sel!]}`);
      records[`${sel}._domainkey.${d}`] = value;
    }
  }, 60_000);

  afterAll(() => bench?.stop());

  const bytes = (data: string) => Buffer.from(data, "latin1");

  test("new-key: the key is root's, mode 0600, in $config_directory/dkim; a second run refuses (exit 73)", async () => {
    const key = createPrivateKey(readFileSync(join(sys.etc, "dkim", "example.test.s1.key")));
    expect(records["s1._domainkey.example.test"]).toBe(dkimRecordText(key));
    expect(printed.s1).toContain('s1._domainkey.example.test. 3600 IN TXT ( "v=DKIM1; k=rsa; p=');
    expect(printed.s1).toContain('dkim_sign_maps = "inline:{ example.test=s1, .example.test=s1 }"');
    const st = statSync(join(sys.etc, "dkim", "example.test.s1.key"));
    expect(st.uid).toBe(0);
    expect(st.mode & 0o777).toBe(0o600);
    const again = await run("postern", ["dkim", "new-key", "-c", sys.etc, "example.test", "s1"]);
    expect(again.code).toBe(73);
    expect(again.stderr).toContain("exists already");
    const usage = await run("postern", ["dkim", "new-key", "-c", sys.etc]);
    expect(usage.code).toBe(64);
  });

  test("sendmail: 8-bit body, a 1500-byte line and folded headers; the signature verifies at the next hop", async () => {
    const long = "x".repeat(1500);
    const body = `Grüße aus Köln, café  \n${long}\nend\n`;
    await sys.send(["far@sink.example"], `From: joe\nTo: far@sink.example,\n\tother@sink.example\n${message("dkim-local", body, "X-Folded: one\n  two\n")}`, { sender: "joe" });
    const m = await bench.atSink("dkim-local");
    expect(m.data).toContain("d=example.test; s=s1");
    // the long line went out broken the way the client breaks it, and the signature covers that
    expect(m.data).not.toContain(long);
    const v = verifyDkim(bytes(m.data), records);
    expect(v.stderr).toBe("");
    expect(v.results).toEqual([true]);
    expect(sys.log()).toMatch(/cleanup\[\d+\]: [0-9A-F]+: DKIM-Signature field added \(s=s1, d=example.test\)/);
  }, 60_000);

  test("SMTP from mynetworks: headers folded by the client, blanks at line ends; Ed25519 signature verifies", async () => {
    const c = await RawSmtp.connect(sys.ports.inside!);
    await c.reply();
    expect(await c.cmd("EHLO client.example")).toStartWith("250");
    expect(await c.cmd("MAIL FROM:<alice@signer.example> BODY=8BITMIME")).toStartWith("250");
    expect(await c.cmd("RCPT TO:<far@sink.example>")).toStartWith("250");
    expect(await c.cmd("DATA")).toStartWith("354");
    c.send(
      "From:   Alice  <alice@signer.example>  \r\nTo: far@sink.example\r\nSubject: dkim-inside\r\nX-Long: a\r\n\t b\r\n   c\r\n\r\n" +
        "trailing blanks   \r\n\tand  tabs\t\r\n..dot\r\n8-bit: \xe9t\xe9\r\n\r\n\r\n.\r\n",
    );
    expect(await c.reply()).toStartWith("250");
    await c.cmd("QUIT");
    const m = await bench.atSink("dkim-inside");
    expect(m.data).toContain("a=ed25519-sha256");
    expect(m.data).toMatch(/d=signer\.example;\s+s=ed;/);
    expect(verifyDkim(bytes(m.data), records).results).toEqual([true]);
  }, 60_000);

  test("SMTP from a client that logged in (AUTH PLAIN): signed, the signature verifies", async () => {
    const c = await RawSmtp.connect(sys.ports.login!);
    await c.reply();
    expect(await c.cmd("EHLO laptop.example")).toStartWith("250");
    expect(await c.cmd(`AUTH PLAIN ${Buffer.from("\0alice\0wonderland").toString("base64")}`)).toStartWith("235");
    expect(await c.cmd("MAIL FROM:<alice@example.test>")).toStartWith("250");
    expect(await c.cmd("RCPT TO:<far@sink.example>")).toStartWith("250");
    expect(await c.cmd("DATA")).toStartWith("354");
    c.send("From: Alice <alice@example.test>\r\nTo: far@sink.example\r\nSubject: dkim-login\r\n\r\nfrom my laptop\r\n.\r\n");
    expect(await c.reply()).toStartWith("250");
    await c.cmd("QUIT");
    const m = await bench.atSink("dkim-login");
    expect(m.data).toMatch(/d=example\.test;\s+s=s1;/);
    expect(verifyDkim(bytes(m.data), records).results).toEqual([true]);
  }, 60_000);

  test("SMTP from outside relayed to a relay domain: not signed", async () => {
    const c = await RawSmtp.connect(sys.ports.smtp!);
    await c.reply();
    await c.cmd("EHLO outside.example");
    expect(await c.cmd("MAIL FROM:<joe@example.test>")).toStartWith("250");
    expect(await c.cmd("RCPT TO:<far@sink.example>")).toStartWith("250");
    expect(await c.cmd("DATA")).toStartWith("354");
    c.send("From: joe@example.test\r\nSubject: dkim-outside\r\n\r\nrelayed\r\n.\r\n");
    expect(await c.reply()).toStartWith("250");
    await c.cmd("QUIT");
    const m = await bench.atSink("dkim-outside");
    expect(m.data).not.toContain("DKIM-Signature");
  }, 60_000);
});
