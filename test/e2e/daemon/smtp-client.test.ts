/**
 * Outbound delivery through the running system (issue 6): a smarthost with a
 * login over STARTTLS and on port 465 (Python's aiosmtpd as the server),
 * Postfix's smtp-sink as a plain relay, MX routing through the fake DNS
 * server, a temporary failure then success on retry, a permanent failure
 * with its bounce, a partial failure, connection reuse, and LMTP. Every
 * server listens on 127.0.0.1 and every name is answered by the fake DNS
 * server: nothing leaves the machine.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync } from "node:fs";
import { join } from "node:path";
import { startFakeDns, type FakeDns } from "../../helpers/fake-dns.ts";
import { startPythonSink, type PythonSink } from "../../helpers/python-sink.ts";
import { ROOT } from "../../helpers/run.ts";
import { FakeSmtpServer } from "../../helpers/smtp-server.ts";
import { ensureMailOwner, HOST, isRoot, MailSystem, mboxMessages, message, waitFor, type Params } from "../../helpers/mail-system.ts";
import { freePort } from "../../helpers/ports.ts";

const CA = join(ROOT, "test/fixtures/tls/localhost.crt");
const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A running system; `prepare` may write files under etc/ and return more parameters first. */
async function system(params: Params, prepare?: (sys: MailSystem) => Params): Promise<MailSystem> {
  ensureMailOwner();
  const sys = new MailSystem({ smtp_tls_loglevel: 1, ...params });
  cleanups.push(() => sys.cleanup());
  const extra = prepare?.(sys);
  if (extra) sys.writeConfig(extra);
  await sys.start();
  return sys;
}

/**
 * smtp_sasl_password_maps with one entry, as a texthash: file under etc/,
 * readable by root only, as on a real system (the queue manager opens it
 * before it drops to mail_owner).
 */
function passwords(entry: string): (sys: MailSystem) => Params {
  return (sys) => {
    const path = sys.etcFile("sasl_passwd", `${entry}\n`);
    chmodSync(path, 0o600);
    return { smtp_sasl_password_maps: `texthash:${path}` };
  };
}

async function sink(opts: Parameters<typeof startPythonSink>[0] = {}): Promise<PythonSink> {
  const s = await startPythonSink(opts);
  cleanups.push(() => s.stop());
  return s;
}

async function dns(zone: Parameters<typeof startFakeDns>[0]): Promise<FakeDns> {
  const d = await startFakeDns(zone, { autoStop: false });
  cleanups.push(() => d.stop());
  return d;
}

/** The sender's (root's, or the invoking user's) mailbox in the test spool. */
function senderBox(sys: MailSystem): string {
  return join(sys.spool, isRoot ? "root" : (process.env.USER ?? "root"));
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("a smarthost with a login", () => {
  test("relayhost = [127.0.0.1]:port, STARTTLS, AUTH PLAIN: status=sent with the server's reply", async () => {
    const py = await sink({ starttls: true, users: { relay: "pa55 word" } });
    const sys = await system({
      relayhost: `[127.0.0.1]:${py.port}`,
      smtp_sasl_auth_enable: true,
      smtp_sasl_security_options: "noanonymous",
      smtp_tls_security_level: "encrypt",
      smtp_tls_CAfile: CA,
    }, passwords(`[127.0.0.1]:${py.port} relay:pa55 word`));
    await sys.send(["friend@example.org"], message("smarthost1", "Through the smarthost.\n"));
    const line = await sys.waitForLog(/postfix\/smtp\[\d+\]: ([0-9A-F]+): to=<friend@example\.org>, relay=(\S+), delay=[\d.]+, delays=[\d.]+\/[\d.]+\/[\d.]+\/[\d.]+, dsn=(\S+), status=(\S+) \((.*)\)$/m);
    expect(line.slice(2)).toEqual([`127.0.0.1[127.0.0.1]:${py.port}`, "2.0.0", "sent", "250 2.0.0 Ok: queued as PY0001"]);
    expect(sys.log()).toMatch(new RegExp(`postfix/smtp\\[\\d+\\]: Trusted TLS connection established to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${py.port}: TLSv1\\.[23] with cipher `));
    const [m] = py.messages();
    expect(m).toMatchObject({ rcpt_tos: ["friend@example.org"], tls: true, auth_user: "relay" });
    expect(m!.mail_from).toEndWith(`@${HOST}`);
    expect(m!.data).toContain("Subject: smarthost1\r\n");
    expect(m!.data).toContain("Through the smarthost.\r\n");
    await sys.waitForEmptyQueue();
  });

  test("the root-only password table opened before the privilege drop still serves after a reload", async () => {
    const py = await sink({ starttls: true, users: { relay: "kept" } });
    const sys = await system({
      relayhost: `[127.0.0.1]:${py.port}`,
      smtp_sasl_auth_enable: true,
      smtp_sasl_security_options: "noanonymous",
      smtp_tls_security_level: "encrypt",
      smtp_tls_CAfile: CA,
    }, passwords(`[127.0.0.1]:${py.port} relay:kept`));
    // a reload retires the start configuration; mail_owner could not open the 0600 file again
    // (the queue manager runs on demand: started now, it opened the table as root before its drop)
    await sys.wakeQueueManager();
    sys.writeConfig({ smtp_tls_loglevel: 2 });
    const reloads = () => sys.log().match(/qmgr\[\d+\]: reload: configuration re-read/g)?.length ?? 0;
    expect((await sys.postern(["reload"])).code).toBe(0);
    await waitFor("the queue manager to re-read its configuration", () => reloads() > 0);
    await sys.send(["afterreload@example.org"], message("after-reload"));
    await sys.waitForLog(/to=<afterreload@example\.org>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent/);
    expect(py.messages()[0]).toMatchObject({ auth_user: "relay" });
  });

  test("on port 465 (smtp_tls_wrappermode), AUTH LOGIN where PLAIN is filtered out", async () => {
    const py = await sink({ implicitTls: true, users: { relay: "secret" } });
    const sys = await system({
      relayhost: `[127.0.0.1]:${py.port}`,
      smtp_sasl_auth_enable: true,
      smtp_sasl_security_options: "noanonymous",
      smtp_sasl_mechanism_filter: "login",
      smtp_tls_wrappermode: true,
      smtp_tls_security_level: "encrypt",
    }, passwords(`[127.0.0.1]:${py.port} relay:secret`));
    await sys.send(["friend465@example.org"], message("smarthost465"));
    await sys.waitForLog(new RegExp(`to=<friend465@example\\.org>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${py.port}, .*status=sent \\(250 2\\.0\\.0 Ok: queued as PY0001\\)`));
    expect(py.messages()[0]).toMatchObject({ tls: true, auth_user: "relay" });
  });

  test("a wrong password: deferred with the server's words, the mail stays queued", async () => {
    const py = await sink({ starttls: true, users: { relay: "right" } });
    const sys = await system({ relayhost: `[127.0.0.1]:${py.port}`, smtp_sasl_auth_enable: true, smtp_sasl_security_options: "noanonymous", smtp_tls_security_level: "encrypt", minimal_backoff_time: "1h", maximal_backoff_time: "1h" }, passwords(`[127.0.0.1]:${py.port} relay:wrong`));
    await sys.send(["authfail@example.org"], message("authfail"));
    await sys.waitForLog(/to=<authfail@example\.org>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*dsn=4\.7\.8, status=deferred \(SASL authentication failed; server 127\.0\.0\.1\[127\.0\.0\.1\] said: 535 5\.7\.8 Authentication credentials invalid\)/);
    // the file moves to deferred/ after the log line (fsync, then the end of the round): wait for it
    await waitFor("the message in deferred/", () => sys.queueIds("deferred").length === 1);
    expect(sys.queueIds("deferred")).toHaveLength(1);
    expect(py.messages()).toEqual([]);
  });
});

describe("Postfix's smtp-sink as the relay", () => {
  test.skipIf(!isRoot)("relayhost without TLS: sent, and several messages share one connection", async () => {
    const port = freePort();
    const proc = Bun.spawn(["/usr/sbin/smtp-sink", "-u", "nobody", "-c", `127.0.0.1:${port}`, "10"], { stdout: "pipe", stderr: "pipe" });
    cleanups.push(() => proc.kill());
    await waitFor("smtp-sink to listen", async () => {
      try {
        const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
        s.end();
        return true;
      } catch {
        return false;
      }
    });
    const sys = await system({ relayhost: `[127.0.0.1]:${port}`, smtp_connection_cache_time_limit: "30s" });
    for (let i = 1; i <= 3; i++) {
      await sys.send([`sink${i}@example.org`], message(`sink${i}`));
      await sys.waitForLog(new RegExp(`to=<sink${i}@example\\.org>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${port}, .*dsn=2\\.0\\.0, status=sent \\(250 2\\.0\\.0 Ok\\)`));
    }
    await sys.waitForEmptyQueue();
    // smtp-sink -c counts finished sessions and messages: three messages, and the one session still open
    proc.kill();
    const counters = [...(await new Response(proc.stdout).text()).matchAll(/sess=(\d+) quit=(\d+) mesg=(\d+)/g)].at(-1)!;
    expect(Number(counters[3])).toBe(3);
    expect(Number(counters[1])).toBeLessThanOrEqual(1);
  });

  test("several messages over one connection (a scripted server counts them)", async () => {
    const server = FakeSmtpServer.start();
    cleanups.push(() => server.stop());
    const sys = await system({ relayhost: `[127.0.0.1]:${server.port}`, smtp_connection_cache_time_limit: "10s" });
    for (let i = 1; i <= 3; i++) {
      await sys.send([`reuse${i}@example.org`], message(`reuse${i}`));
      await sys.waitForLog(new RegExp(`to=<reuse${i}@example\\.org>, .*status=sent`));
    }
    expect(server.transactions).toBe(3);
    expect(server.connections).toBe(1);
  });
});

describe("direct delivery through MX records", () => {
  test("preference order, the next MX when the first cannot be reached, implicit MX", async () => {
    const py = await sink();
    const zone = await dns({
      "example.org": { MX: [[10, "mx1.example.org"], [20, "mx2.example.org"]] },
      "mx1.example.org": { A: ["127.0.0.3"] },
      "mx2.example.org": { A: ["127.0.0.1"] },
      "implicit.example": { A: ["127.0.0.1"] },
    });
    const sys = await system({ dns_servers: zone.server, smtp_tcp_port: py.port });
    await sys.send(["mxuser@example.org", "implicit@implicit.example"], message("mx1"));
    await sys.waitForLog(new RegExp(`postfix/smtp\\[\\d+\\]: connect to mx1\\.example\\.org\\[127\\.0\\.0\\.3\\]:${py.port}: Connection refused`));
    await sys.waitForLog(new RegExp(`to=<mxuser@example\\.org>, relay=mx2\\.example\\.org\\[127\\.0\\.0\\.1\\]:${py.port}, .*status=sent`));
    await sys.waitForLog(new RegExp(`to=<implicit@implicit\\.example>, relay=implicit\\.example\\[127\\.0\\.0\\.1\\]:${py.port}, .*status=sent`));
    expect(zone.queriesFor("example.org", "MX")).not.toHaveLength(0);
    expect(py.messages().flatMap((m) => m.rcpt_tos).sort()).toEqual(["implicit@implicit.example", "mxuser@example.org"]);
  });

  test("null MX and loops back to myself bounce to the sender; a broken domain stays queued", async () => {
    const zone = await dns({
      "null.example": { MX: [[0, "."]] },
      "loop.example": { MX: [[10, "me.loop.example"]] },
      "me.loop.example": { A: ["127.0.0.1"] },
      "broken.example": { rcode: "SERVFAIL" },
    });
    const sys = await system({ dns_servers: zone.server, smtp_tcp_port: 25, inet_interfaces: "127.0.0.1" });
    await sys.send(["x@null.example"], message("nullmx"));
    await sys.send(["y@loop.example"], message("loopmx"));
    await sys.send(["z@broken.example"], message("brokenmx"));
    await sys.waitForLog(/to=<x@null\.example>, relay=none, .*dsn=5\.1\.10, status=bounced \(Domain null\.example does not accept mail \(nullMX\)\)/);
    await sys.waitForLog(/to=<y@loop\.example>, relay=none, .*dsn=5\.4\.6, status=bounced \(mail for loop\.example loops back to myself\)/);
    await sys.waitForLog(/to=<z@broken\.example>, relay=none, .*dsn=4\.4\.3, status=deferred \(Host or domain name not found\. Name service error for name=broken\.example type=MX: Host not found, try again\)/);
    const box = senderBox(sys);
    const bounces = await waitFor("two bounces", () => {
      const m = mboxMessages(box).filter((x) => x.includes("Subject: Undelivered Mail Returned to Sender\n"));
      return m.length >= 2 ? m : undefined;
    });
    const all = bounces.join("\n");
    expect(all).toContain("<x@null.example>: Domain null.example does not accept mail (nullMX)");
    expect(all).toContain("Status: 5.1.10");
    expect(all).toContain("<y@loop.example>: mail for loop.example loops back to myself");
    expect(all).toContain("Status: 5.4.6");
  });
});

describe("failures and retries", () => {
  test("4xx then success on retry: deferred with Postfix's words, shown by mailq, then sent", async () => {
    const py = await sink({ deferRcpt: 1 });
    const sys = await system({ relayhost: `[127.0.0.1]:${py.port}` });
    await sys.send(["later@example.org"], message("retry1"));
    const deferred = await sys.waitForLog(/([0-9A-F]+): to=<later@example\.org>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*dsn=4\.3\.0, status=deferred \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 451 4\.3\.0 <later@example\.org>: try again later \(in reply to RCPT TO command\)\)/);
    const id = deferred[1]!;
    await sys.waitForLog(new RegExp(`${id}: to=<later@example\\.org>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${py.port}, .*status=sent \\(250 2\\.0\\.0 Ok: queued as PY0001\\)`));
    expect(py.messages()).toHaveLength(1);
    await sys.waitForEmptyQueue();
  });

  test("5xx for one of two recipients: the other is delivered, the sender gets a bounce with the remote reply", async () => {
    const py = await sink({ rejectPrefix: "nouser" });
    const sys = await system({ relayhost: `[127.0.0.1]:${py.port}` });
    await sys.send(["nouser@example.org", "someone@example.org"], message("partial1", "Partly delivered.\n"));
    await sys.waitForLog(/to=<nouser@example\.org>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*dsn=5\.1\.1, status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.1\.1 <nouser@example\.org>: Recipient address rejected: User unknown \(in reply to RCPT TO command\)\)/);
    await sys.waitForLog(/to=<someone@example\.org>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent/);
    expect(py.messages().map((m) => m.rcpt_tos)).toEqual([["someone@example.org"]]);
    const bounce = await waitFor("the bounce", () => mboxMessages(senderBox(sys)).find((m) => m.includes("Subject: Undelivered Mail Returned to Sender\n")));
    expect(bounce).toContain("Final-Recipient: rfc822; nouser@example.org");
    expect(bounce).toContain("Action: failed");
    expect(bounce).toContain("Status: 5.1.1");
    expect(bounce).toContain("Remote-MTA: dns; 127.0.0.1");
    expect(bounce).toMatch(/Diagnostic-Code: smtp; 550 5\.1\.1 <nouser@example\.org>: Recipient address\s+rejected: User unknown/);
    expect(bounce).not.toContain("someone@example.org>:");
    await sys.waitForEmptyQueue();
  });

  test("verify without a trusted certificate: deferred, not delivered", async () => {
    const py = await sink({ starttls: true });
    const sys = await system({ relayhost: `[127.0.0.1]:${py.port}`, smtp_tls_security_level: "verify", minimal_backoff_time: "1h", maximal_backoff_time: "1h" });
    await sys.send(["verify@example.org"], message("verify1"));
    await sys.waitForLog(/to=<verify@example\.org>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*dsn=4\.7\.5, status=deferred \(Server certificate not trusted\)/);
    expect(py.messages()).toEqual([]);
  });
});

describe("LMTP", () => {
  test("transport_maps lmtp:inet:127.0.0.1:port with a Python LMTP server", async () => {
    const py = await sink({ lmtp: true });
    const sys = await system({ transport_maps: `inline:{ {lmtp.example = lmtp:inet:127.0.0.1:${py.port}} }` });
    await sys.send(["a@lmtp.example", "b@lmtp.example"], message("lmtp1"));
    await sys.waitForLog(new RegExp(`postfix/lmtp\\[\\d+\\]: [0-9A-F]+: to=<a@lmtp\\.example>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${py.port}, .*status=sent \\(250 2\\.0\\.0 <a@lmtp\\.example> Saved\\)`));
    await sys.waitForLog(/to=<b@lmtp\.example>, .*status=sent \(250 2\.0\.0 <b@lmtp\.example> Saved\)/);
    expect(py.messages()[0]!.rcpt_tos).toEqual(["a@lmtp.example", "b@lmtp.example"]);
  });

  test("local_transport = lmtp:inet:...: local recipients go to the mail store", async () => {
    const py = await sink({ lmtp: true });
    const sys = await system({ local_transport: `lmtp:inet:127.0.0.1:${py.port}` });
    await sys.send([`mailbox@${HOST}`], message("lmtp-local"));
    await sys.waitForLog(new RegExp(`postfix/lmtp\\[\\d+\\]: [0-9A-F]+: to=<mailbox@${esc(HOST)}>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${py.port}, .*status=sent`));
    expect(py.messages()[0]!.rcpt_tos).toEqual([`mailbox@${HOST}`]);
  });

  test("lmtp:unix: a socket the queue manager can reach", async () => {
    let path = "";
    let server: FakeSmtpServer | undefined;
    const sys = await system({}, (s) => {
      path = join(s.dir, "lmtp.sock");
      server = FakeSmtpServer.start({ lmtp: true, unix: path });
      cleanups.push(() => server!.stop());
      chmodSync(path, 0o666);
      return { transport_maps: `inline:{ {unix.example = lmtp:unix:${path}} }` };
    });
    await sys.send(["c@unix.example"], message("lmtp2"));
    await sys.waitForLog(new RegExp(`to=<c@unix\\.example>, relay=${esc(HOST)}\\[${esc(path)}\\], .*status=sent`));
    expect(server!.messages).toHaveLength(1);
  });
});
