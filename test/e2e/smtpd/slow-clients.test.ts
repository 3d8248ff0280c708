/**
 * Slow clients (issue 9, item 12) against the real smtpd: with
 * smtpd_per_request_deadline a client that trickles a byte now and then is
 * cut off after smtpd_timeout for the whole command (it used to hold its
 * session as long as each byte came within smtpd_timeout of the last); a
 * process that reached its session cap goes under stress, and sessions
 * that start then get the stress defaults (`${stress?{x}:{y}}`), as
 * Postfix's master gives new smtpd processes `-o stress=yes`.
 *
 * Timeouts are short configured ones; the only sleeps are the client's own
 * pauses between the bytes it trickles.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { run } from "../../helpers/run.ts";
import { RawSmtp, SmtpdSystem, waitFor } from "../../helpers/smtpd-system.ts";

let sys: SmtpdSystem;

beforeAll(async () => {
  sys = new SmtpdSystem({ smtpd_hard_error_limit: 100 }, {
    smtp: { smtpd_timeout: "1s", smtpd_per_request_deadline: "yes" },
    // one process with two sessions; under stress its sessions time out after 1 s instead of 300 s
    busy: { process_limit: 2, smtpd_timeout: "${stress?{1}:{300}}s", syslog_name: "postfix/busy" },
  });
  await sys.start();
}, 60_000);

afterAll(async () => {
  await sys?.cleanup();
});

/** Sends `text` a byte at a time, `every` ms apart, until it is all out or the server has closed. */
async function trickle(c: RawSmtp, text: string, every: number): Promise<void> {
  for (let i = 0; i < text.length && !c.closed; i++) {
    c.send(text[i]!);
    await Bun.sleep(every);
  }
}

describe("slow clients", () => {
  test("smtpd_per_request_deadline = yes: a command trickled a byte every 100 ms is cut off after smtpd_timeout with 421 4.4.2", async () => {
    const c = await RawSmtp.connect(sys.ports.smtp!);
    expect(await c.reply()).toMatch(/^220 /);
    const started = performance.now();
    // 60 bytes: 6 s for one command line, each byte well within the 1 s smtpd_timeout of the one before
    const sending = trickle(c, `NOOP ${"x".repeat(53)}\r\n`, 100);
    expect(await c.reply(30_000)).toBe(`421 4.4.2 ${sys.params.myhostname} Error: timeout exceeded\r\n`);
    await sending;
    expect(await c.waitClosed()).toBe(true);
    // cut off before the line was complete
    expect(performance.now() - started).toBeLessThan(6000);
    await sys.waitForLog(/postfix\/smtpd\[\d+\]: timeout after CONNECT from localhost\[127\.0\.0\.1\]/);
    c.destroy();
  }, 60_000);

  test("a process at its session cap goes under stress: a session that starts then gets smtpd_timeout = ${stress?{1}:{300}}s", async () => {
    const port = sys.ports.busy!;
    const greeted = (what: string) =>
      waitFor(what, async () => {
        const x = await RawSmtp.connect(port);
        if ((await x.reply()).startsWith("220 ")) return x;
        x.destroy();
        return undefined;
      });
    // start() probed the service: once that session is gone both slots are free
    await sys.waitForLog(/postfix\/busy\/smtpd\[\d+\]: disconnect from localhost\[127\.0\.0\.1\]/);
    const a1 = await greeted("the first slot");
    const a2 = await greeted("the second slot");
    // one more waits for a place
    const c = await RawSmtp.connect(port);
    await sys.waitForLog(/postfix\/busy\/smtpd\[\d+\]: warning: service "busy" has reached its session limit "2" in this process/);
    await a2.quit();
    // its session starts then, under stress: silent, it is timed out after 1 s
    expect(await c.reply(30_000)).toMatch(/^220 /);
    expect(await c.reply(30_000)).toBe(`421 4.4.2 ${sys.params.myhostname} Error: timeout exceeded\r\n`);
    expect(await c.waitClosed()).toBe(true);
    c.destroy();
    // a session that started before the stress keeps its 300 s
    expect(await a1.cmd("NOOP")).toBe("250 2.0.0 Ok\r\n");
    await a1.quit();
  }, 60_000);
});

describe("implicit TLS (smtps): connections that never start the handshake", () => {
  test("count against the session cap from the accept, and are closed after smtpd_starttls_timeout; a handshaken one beyond the cap waits for its banner", async () => {
    // two sessions, and two more connections at most waiting (max(process_limit, default_process_limit))
    const tls = new SmtpdSystem({}, { smtps: { process_limit: 2, default_process_limit: 1, smtpd_starttls_timeout: "5s" } });
    try {
      const cert = await run("postern", ["tls", "new-server-cert", "-c", tls.etc, "-q", "localhost"]);
      expect(cert.code).toBe(0);
      const [key, crt] = cert.stdout.trim().split("\n");
      tls.writeConfig({ smtpd_tls_cert_file: crt!, smtpd_tls_key_file: key! });
      await tls.start();
      await tls.waitForLog(/postfix\/smtps\/smtpd\[\d+\]: disconnect from localhost\[127\.0\.0\.1\]/);
      const silent = async () => {
        const s: Socket = connect({ host: "127.0.0.1", port: tls.ports.smtps! });
        const state = { closed: false };
        s.on("close", () => (state.closed = true));
        s.on("error", () => {});
        // a refused connection may be reset before the client sees it open
        await new Promise<void>((resolve) => {
          s.once("connect", () => resolve());
          s.once("close", () => resolve());
        });
        return { s, state };
      };
      // two connections that say nothing take both places, two more wait; one more is closed at once
      const a = await silent();
      const b = await silent();
      const w1 = await silent();
      const w2 = await silent();
      const c = await waitFor("a connection closed at the cap", async () => {
        const x = await silent();
        await waitFor("its close", () => x.state.closed || undefined, 2000).catch(() => undefined);
        if (x.state.closed) return x;
        x.s.destroy();
        return undefined;
      });
      expect(c.state.closed).toBe(true);
      expect(a.state.closed || b.state.closed).toBe(false);
      // smtpd_starttls_timeout then closes the silent two
      expect(await waitFor("the silent connections to be closed", () => (a.state.closed && b.state.closed) || undefined, 30_000)).toBe(true);
      // the waiting ones have the handshake timeout too
      expect(await waitFor("the waiting connections to be closed", () => (w1.state.closed && w2.state.closed) || undefined, 30_000)).toBe(true);
      for (const x of [a, b, c, w1, w2]) x.s.destroy();
      await tls.waitForLog(/warning: service "smtps" has reached its session limit "2" in this process/);
      // a client beyond the cap that completes its handshake waits for its banner until a session ends
      const t1 = await RawSmtp.connect(tls.ports.smtps!, { implicitTls: true });
      const t2 = await RawSmtp.connect(tls.ports.smtps!, { implicitTls: true });
      try {
        expect(await t1.reply()).toMatch(/^220 /);
        expect(await t2.reply()).toMatch(/^220 /);
        const t3 = await RawSmtp.connect(tls.ports.smtps!, { implicitTls: true });
        try {
          await t1.quit();
          expect(await t3.reply(30_000)).toMatch(/^220 /);
          expect(await t3.cmd("EHLO waited.example")).toMatch(/^250-/);
        } finally {
          t3.destroy();
        }
      } finally {
        t1.destroy();
        t2.destroy();
      }
    } finally {
      await tls.cleanup();
    }
  }, 60_000);
});
