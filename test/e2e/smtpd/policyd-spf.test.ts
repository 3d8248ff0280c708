/**
 * check_policy_service with Debian's postfix-policyd-spf-python, the SPF
 * policy server SMTPD_POLICY_README's users run: a sender whose domain's
 * SPF record fails is refused at RCPT with policyd-spf's 550 5.7.23, one
 * that passes is accepted with its Received-SPF: header prepended.
 *
 * policyd-spf speaks on stdin/stdout (spawn(8) runs it for Postfix), so the
 * test runs it behind a small inet listener: one policyd-spf process per
 * connection. Its SPF lookups go to test/helpers/fake-dns.ts: policyd-spf
 * uses dnspython's default resolver, which reads /etc/resolv.conf; the
 * launcher sets that default resolver to the fake server before it calls
 * policyd-spf's unmodified main() (the machine's resolv.conf is not touched).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { useFakeDns } from "../../helpers/fake-dns.ts";
import { ensureMailOwner, isRoot, message } from "../../helpers/mail-system.ts";
import { RawSmtp, SmtpdSystem } from "../../helpers/smtpd-system.ts";

const POLICYD = "/usr/bin/policyd-spf";
const have = existsSync(POLICYD);
if (!have && process.env.CI === "true") throw new Error(`${POLICYD} is missing: install the Debian package postfix-policyd-spf-python`);

const LAUNCHER = `import sys, dns.resolver
r = dns.resolver.Resolver(configure=False)
r.nameservers = ["127.0.0.1"]
r.port = int(sys.argv.pop(1))
r.timeout = r.lifetime = 5
dns.resolver.default_resolver = r
from spf_engine.policyd_spf import main
main()
`;

/** A listener that runs one policyd-spf per connection on its stdin and stdout. */
async function startSpfListener(dnsPort: number, configFile: string): Promise<{ port: number; pids: Set<number>; stop(): Promise<void> }> {
  const pids = new Set<number>();
  const procs = new Set<ReturnType<typeof Bun.spawn>>();
  const server: Server = createServer((sock) => {
    const proc = Bun.spawn(["/usr/bin/python3", "-c", LAUNCHER, String(dnsPort), configFile], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    procs.add(proc);
    pids.add(proc.pid);
    sock.on("data", (d) => {
      proc.stdin.write(d);
      proc.stdin.flush();
    });
    sock.on("close", () => {
      try {
        proc.stdin.end();
      } catch {}
    });
    sock.on("error", () => {});
    (async () => {
      for await (const chunk of proc.stdout) sock.write(chunk);
      sock.end();
    })().catch(() => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  return {
    port: typeof addr === "object" && addr ? addr.port : 0,
    pids,
    async stop() {
      for (const p of procs) p.kill();
      await Promise.all([...procs].map((p) => p.exited));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe.skipIf(!isRoot || !have)("check_policy_service with policyd-spf", () => {
  const dns = useFakeDns({
    "spf-pass.example": { TXT: ["v=spf1 ip4:127.0.0.1 -all"] },
    "spf-fail.example": { TXT: ["v=spf1 ip4:192.0.2.1 -all"] },
  });
  let sys: SmtpdSystem;
  let spf: Awaited<ReturnType<typeof startSpfListener>>;

  beforeAll(async () => {
    ensureMailOwner();
    sys = new SmtpdSystem({ mynetworks: "10.255.255.0/24" });
    // policyd-spf skips 127.0.0.0/8 by default: the test's client is there, so skip nothing
    const conf = join(sys.dir, "policyd-spf.conf");
    writeFileSync(conf, "debugLevel = 1\nTestOnly = 1\nHELO_reject = Fail\nMail_From_reject = Fail\nskip_addresses = 192.0.2.255/32\nLookup_Time = 5\n", { mode: 0o644 });
    spf = await startSpfListener(dns.port, conf);
    sys.writeConfig({
      smtpd_recipient_restrictions: `check_policy_service { inet:127.0.0.1:${spf.port}, timeout=30s }, permit`,
      smtpd_relay_restrictions: "permit",
      mydestination: "mail.example.test, localhost",
    });
    await sys.start();
  }, 60_000);

  afterAll(async () => {
    await sys?.cleanup();
    await spf?.stop();
  });

  async function session(sender: string, subject: string): Promise<{ rcpt: string; data?: string }> {
    const c = await RawSmtp.connect(sys.port);
    try {
      expect(await c.reply()).toMatch(/^220 /);
      await c.cmd("EHLO client.example");
      expect(await c.cmd(`MAIL FROM:<${sender}>`)).toMatch(/^250 /);
      const rcpt = await c.cmd("RCPT TO:<user@remote.example>", 40_000);
      if (!rcpt.startsWith("250")) return { rcpt };
      expect(await c.cmd("DATA")).toMatch(/^354 /);
      return { rcpt, data: await c.cmd(`${message(subject).replace(/\n/g, "\r\n")}.`) };
    } finally {
      await c.quit();
    }
  }

  test("SPF fail: policyd-spf's 550 5.7.23 refuses the recipient", async () => {
    const r = await session("someone@spf-fail.example", "spf-fail");
    expect(r.rcpt).toMatch(/^550 5\.7\.23 .*SPF fail - not authorized/);
    expect(dns.queriesFor("spf-fail.example", "TXT").length).toBeGreaterThan(0);
  }, 60_000);

  test("SPF pass: accepted, with policyd-spf's Received-SPF: header prepended", async () => {
    const r = await session("someone@spf-pass.example", "spf-pass");
    expect(r.data).toMatch(/^250 /);
    const m = await sys.message("spf-pass");
    expect(m.text).toMatch(/^Received-SPF: Pass \(mailfrom\) identity=mailfrom; client-ip=127\.0\.0\.1;/m);
  }, 60_000);
});
