/**
 * Remote memory exhaustion (issue 9, item 6): the real smtpd is sent the
 * shapes of input that used to grow it by hundreds of megabytes (1,000,000
 * empty lines: +400 MB), and its peak resident size (VmHWM of
 * /proc/PID/status, reset to the current size through /proc/PID/clear_refs
 * before each shape) must rise less than BOUND during the shape. Each
 * message is accepted or refused as Postfix would.
 *
 * (MEMORY_DEBUG=1 prints the sizes.)
 *
 * BOUND: 150 MB above the resident size at the start of the shape. The
 * largest legitimate cost is a 10 MB message, held a few times over while
 * it is read, cleaned up and written (content, queue file image, garbage
 * not yet collected).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { HOST, RawSmtp, SmtpdSystem, waitFor } from "../../helpers/smtpd-system.ts";
import { chmodSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../../helpers/run.ts";

const MB = 1024 * 1024;
const BOUND = 150 * MB;

function statusKb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no ${field} for pid ${pid}`);
  return Number(m[1]) * 1024;
}

let sys: SmtpdSystem;
let early: SmtpdSystem | undefined;
let auth: ReturnType<typeof Bun.listen> | undefined;
let pid: number;

/** Runs `shape`, then returns how far smtpd's peak resident size rose above its size at the start. */
async function peakDuring(shape: () => Promise<void>): Promise<number> {
  // "5" resets the peak resident size (VmHWM) to the current one
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
  const before = statusKb(pid, "VmRSS");
  await shape();
  if (process.env.MEMORY_DEBUG) console.log(`before ${before / MB} MB, peak ${statusKb(pid, "VmHWM") / MB} MB, after ${statusKb(pid, "VmRSS") / MB} MB`);
  return statusKb(pid, "VmHWM") - before;
}

async function transaction(subject: string): Promise<RawSmtp> {
  const c = await RawSmtp.connect(sys.port);
  expect(await c.reply()).toMatch(/^220 /);
  expect(await c.cmd("EHLO client.example")).toMatch(/^250-/);
  expect(await c.cmd("MAIL FROM:<alice@example.org>")).toBe("250 2.1.0 Ok\r\n");
  expect(await c.cmd(`RCPT TO:<root@${HOST}>`)).toBe("250 2.1.5 Ok\r\n");
  void subject;
  return c;
}

/** Sends DATA with `body` (already CRLF, dot-stuffed) and returns the final reply. */
async function data(subject: string, body: Buffer): Promise<string> {
  const c = await transaction(subject);
  expect(await c.cmd("DATA")).toMatch(/^354 /);
  c.send(body);
  c.send(".\r\n");
  const r = await c.reply(120_000);
  await c.quit();
  return r;
}

beforeAll(async () => {
  sys = new SmtpdSystem({ smtpd_hard_error_limit: 100 });
  await sys.start();
  pid = sys.roles().get("smtpd")!;
  expect(pid).toBeGreaterThan(0);
  // one session first, so what every session loads is there before the first shape
  const c = await RawSmtp.connect(sys.port);
  await c.reply();
  await c.quit();
}, 60_000);

afterAll(async () => {
  await sys?.cleanup();
  await early?.cleanup();
  auth?.stop(true);
});

describe(`smtpd's peak memory rises less than ${BOUND / MB} MB during each shape`, () => {
  test("1,000,000 empty lines (2 MB on the wire): accepted", async () => {
    const body = Buffer.concat([Buffer.from("Subject: empty lines\r\n"), Buffer.alloc(2_000_000, "\r\n")]);
    let r = "";
    const peak = await peakDuring(async () => {
      r = await data("empty lines", body);
    });
    expect(r).toMatch(/^250 2\.0\.0 Ok: queued as/);
    expect(peak).toBeLessThan(BOUND);
  }, 180_000);

  test("500,000 tiny headers: accepted", async () => {
    const body = Buffer.concat([Buffer.from("Subject: tiny headers\r\n"), Buffer.alloc(500_000 * 5, "a:b\r\n"), Buffer.from("\r\nbody\r\n")]);
    let r = "";
    const peak = await peakDuring(async () => {
      r = await data("tiny headers", body);
    });
    expect(r).toMatch(/^250 2\.0\.0 Ok: queued as/);
    expect(peak).toBeLessThan(BOUND);
  }, 180_000);

  test("one 8 MB header line: accepted, the header cut at header_size_limit as Postfix's cleanup does", async () => {
    const body = Buffer.concat([Buffer.from("Subject: huge header\r\nX-Huge: "), Buffer.alloc(8 * MB, "x"), Buffer.from("\r\n\r\nafter the huge header\r\n")]);
    let r = "";
    const peak = await peakDuring(async () => {
      r = await data("huge header", body);
    });
    expect(r).toMatch(/^250 2\.0\.0 Ok: queued as/);
    expect(peak).toBeLessThan(BOUND);
    const m = await sys.message("huge header");
    const huge = /\nX-Huge: (x*)\n/.exec(m.text);
    expect(huge).not.toBeNull();
    // header_size_limit = 102400: the rest of the header is dropped
    expect(huge![1]!.length).toBeGreaterThan(90_000);
    expect(huge![1]!.length).toBeLessThanOrEqual(102_400);
    expect(m.text).toContain("\n\nafter the huge header\n");
  }, 180_000);

  test("a 10 MB message of short lines (DATA): accepted", async () => {
    const body = Buffer.concat([Buffer.from("Subject: short lines\r\n\r\n"), Buffer.alloc(3_300_000 * 3, "a\r\n")]);
    let r = "";
    const peak = await peakDuring(async () => {
      r = await data("short lines", body);
    });
    expect(r).toMatch(/^250 2\.0\.0 Ok: queued as/);
    expect(peak).toBeLessThan(BOUND);
  }, 300_000);

  test("a 10 MB message of short lines (one BDAT LAST chunk): accepted", async () => {
    const body = Buffer.concat([Buffer.from("Subject: short chunk\r\n\r\n"), Buffer.alloc(3_300_000 * 3, "b\r\n")]);
    let r = "";
    const peak = await peakDuring(async () => {
      const c = await transaction("short chunk");
      c.send(`BDAT ${body.length} LAST\r\n`);
      c.send(body);
      r = await c.reply(120_000);
      await c.quit();
    });
    expect(r).toMatch(/^250 2\.0\.0 Ok: \d+ bytes queued as/);
    expect(peak).toBeLessThan(BOUND);
  }, 300_000);

  test("over message_size_limit in empty lines (counted with CRLF, as Postfix does): refused with 552 5.3.4, nothing kept", async () => {
    const body = Buffer.concat([Buffer.from("Subject: too big\r\n\r\n"), Buffer.alloc(6_000_000 * 2, "\r\n")]);
    let r = "";
    const peak = await peakDuring(async () => {
      r = await data("too big", body);
    });
    expect(r).toBe("552 5.3.4 Error: message file too big\r\n");
    expect(peak).toBeLessThan(BOUND);
  }, 300_000);

  test("200 MB sent before the session starts: read no further than a window, then 554 5.5.0 after CONNECT", async () => {
    // A session starts once its client's names are known and its SASL backend is ready. This
    // system's Dovecot auth server (a fake one) says nothing until the test lets it, so the session
    // cannot start while the client sends.
    const dir = tempDir("postern-early-");
    chmodSync(dir, 0o755);
    const path = join(dir, "auth");
    let release: () => void = () => {};
    const released = new Promise<void>((r) => (release = r));
    auth = Bun.listen({
      unix: path,
      socket: {
        open(s) {
          void released.then(() => s.write("VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nDONE\n"));
        },
        data() {},
      },
    });
    chmodSync(path, 0o666);
    early = new SmtpdSystem({ smtpd_sasl_auth_enable: "yes", smtpd_sasl_type: "dovecot", smtpd_sasl_path: path });
    // started without waiting for greetings (the first session waits for the auth server)
    await MailSystemStart(early);
    const epid = await waitForSmtpd(early);
    const socket: Socket = connect({ host: "127.0.0.1", port: early.port });
    let input = "";
    let closed = false;
    socket.on("data", (d: Buffer) => (input += d.toString("latin1")));
    socket.on("close", () => (closed = true));
    socket.on("error", () => {});
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    });
    writeFileSync(`/proc/${epid}/clear_refs`, "5");
    const before = statusKb(epid, "VmRSS");
    const chunk = Buffer.alloc(MB, "NOOP\r\n");
    let sent = 0;
    // write while the server takes it: a write it does not drain within 2 s means it stopped reading
    while (sent < 200 * MB && !closed) {
      const drained = socket.write(chunk)
        ? true
        : await new Promise<boolean>((resolve) => {
            const t = setTimeout(() => resolve(false), 2000);
            socket.once("drain", () => {
              clearTimeout(t);
              resolve(true);
            });
          });
      sent += chunk.length;
      if (!drained) break;
    }
    release();
    const until = Date.now() + 30_000;
    while (!closed && Date.now() < until) await Bun.sleep(20);
    socket.destroy();
    const peak = statusKb(epid, "VmHWM") - before;
    expect(input).toMatch(/^220 .*\r\n554 5\.5\.0 Error: SMTP protocol synchronization\r\n$/);
    await early.waitForLog(/improper command pipelining after CONNECT from localhost\[127\.0\.0\.1\]: NOOP/);
    // the client could not push much past the kernel's socket buffers and the read-ahead window
    expect(sent).toBeLessThan(50 * MB);
    expect(peak).toBeLessThan(BOUND);
  }, 120_000);
});

/** `postern start` without SmtpdSystem's wait for every greeting. */
async function MailSystemStart(s: SmtpdSystem): Promise<void> {
  const r = await s.postern(["start"]);
  if (r.code !== 0) throw new Error(`postern start: exit ${r.code}: ${r.stderr}`);
  s.track();
}

/** The smtpd process's pid, once it accepts connections (a probe connects and leaves at once). */
async function waitForSmtpd(s: SmtpdSystem): Promise<number> {
  await waitFor("the smtp service to accept connections", async () => {
    try {
      const c = await RawSmtp.connect(s.port);
      c.destroy();
      return true;
    } catch {
      return false;
    }
  });
  return waitFor("the smtpd process", () => s.roles().get("smtpd"));
}

describe("a client that never reads its replies", () => {
  test("3,000,000 pipelined NOOPs, no reply read: the replies do not pile up; smtpd_timeout ends the session", async () => {
    // junk and error limits out of the way: only the unread replies are left to bound
    const quiet = new SmtpdSystem({ smtpd_junk_command_limit: 100_000_000, smtpd_hard_error_limit: 100_000_000, smtpd_forbid_unauth_pipelining: "no", smtpd_timeout: "3s" });
    try {
      await quiet.start();
      const qpid = quiet.roles().get("smtpd")!;
      const socket: Socket = connect({ host: "127.0.0.1", port: quiet.port });
      let closed = false;
      socket.on("close", () => (closed = true));
      socket.on("error", () => {});
      await new Promise<void>((resolve, reject) => {
        socket.once("connect", () => resolve());
        socket.once("error", reject);
      });
      // never read: the replies stay in the kernel's buffers, then in the server
      socket.pause();
      writeFileSync(`/proc/${qpid}/clear_refs`, "5");
      const before = statusKb(qpid, "VmRSS");
      const batch = Buffer.from("NOOP\r\n".repeat(100_000));
      for (let i = 0; i < 30 && !closed; i++) {
        if (!socket.write(batch)) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 2000);
            socket.once("drain", () => {
              clearTimeout(t);
              resolve();
            });
          });
        }
      }
      await quiet.waitForLog(/postfix\/smtpd\[\d+\]: timeout after NOOP from localhost\[127\.0\.0\.1\]/, 60_000);
      expect(await waitFor("the session's end", () => closed || undefined, 60_000)).toBe(true);
      socket.destroy();
      expect(statusKb(qpid, "VmHWM") - before).toBeLessThan(BOUND);
    } finally {
      await quiet.cleanup();
    }
  }, 120_000);
});

describe("bounds Postfix puts on what one client may hold", () => {
  test("hopcount_limit: 49 Received: headers and ours make 50: 554 5.4.0 Error: too many hops; 48 are accepted", async () => {
    const received = (n: number) => Array.from({ length: n }, (_, i) => `Received: from hop${i}.example by hop${i + 1}.example; Mon, 7 Dec 2026 00:00:00 +0000\r\n`).join("");
    expect(await data("hops 49", Buffer.from(`${received(49)}Subject: hops 49\r\n\r\nloop\r\n`))).toBe("554 5.4.0 Error: too many hops\r\n");
    await sys.waitForLog(/postfix\/cleanup\[\d+\]: warning: NOQUEUE: message rejected: hopcount exceeded from localhost\[127\.0\.0\.1\]/);
    expect(await data("hops 48", Buffer.from(`${received(48)}Subject: hops 48\r\n\r\nno loop\r\n`))).toMatch(/^250 2\.0\.0 Ok: queued as/);
  }, 60_000);

  test("process_limit caps the sessions: one more client waits, counted before any DNS lookup, and gets its session when one ends", async () => {
    // process_limit 2: one smtpd process that serves 2 sessions at once
    const capped = new SmtpdSystem({}, { smtp: { process_limit: 2 } });
    try {
      await capped.start();
      await capped.waitForLog(/: disconnect from localhost\[127\.0\.0\.1\]/);
      const a = await RawSmtp.connect(capped.port);
      const b = await RawSmtp.connect(capped.port);
      expect(await a.reply()).toMatch(/^220 /);
      expect(await b.reply()).toMatch(/^220 /);
      const c = await RawSmtp.connect(capped.port);
      await capped.waitForLog(/warning: service "smtp" has reached its session limit "2" in this process/);
      // the waiting client has no session yet (no "connect from" line for it)
      expect(capped.log().match(/: connect from /g)?.length).toBe(2 + 1 /* start()'s probe */);
      await a.quit();
      // the freed place takes the waiting client
      expect(await c.reply(30_000)).toMatch(/^220 /);
      await c.quit();
      await b.quit();
    } finally {
      await capped.cleanup();
    }
  }, 60_000);
});
