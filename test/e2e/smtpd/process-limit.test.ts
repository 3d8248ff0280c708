/**
 * process_limit against the real smtpd (issue 16): Postfix admits that many
 * clients at once, one per smtpd process; postern serves them all in one
 * smtpd process per service. With one process per 20 sessions, each
 * admitting only its share, the kernel's uneven SO_REUSEPORT spread turned
 * clients away with 421 4.3.2 below the limit.
 *
 * Beyond the limit a client waits, as in the listen queue of Postfix's
 * master: no banner until a session ends, then the oldest waiting client
 * still connected gets its 220; at most max(process_limit,
 * default_process_limit) wait, and one more gets 421 4.3.2 (it used to get
 * 421 at once).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { RawSmtp, SmtpdSystem, waitFor } from "../../helpers/smtpd-system.ts";

const LIMIT = 40;
let sys: SmtpdSystem;

beforeAll(async () => {
  sys = new SmtpdSystem({ smtpd_client_connection_count_limit: 0 }, {
    smtp: { process_limit: LIMIT },
    // two sessions, and two clients at most waiting for one (max(process_limit, default_process_limit))
    small: { process_limit: 2, default_process_limit: 1, syslog_name: "postfix/small" },
  });
  await sys.start();
}, 60_000);

afterAll(async () => {
  await sys?.cleanup();
});

/** The smtpd processes of a service, by the role and service in their command line. */
function smtpdProcesses(service: string): number[] {
  return sys.allProcesses().filter((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      return argv[1] === "smtpd" && argv[argv.indexOf("--service") + 1] === service;
    } catch {
      return false;
    }
  });
}

/**
 * What the server says within a short while: "" when nothing (the client
 * waits). Only ever paired with a later check that the banner does come.
 */
async function saysWithin(c: RawSmtp, ms: number): Promise<string> {
  try {
    return await c.reply(ms);
  } catch {
    return "";
  }
}

describe("process_limit", () => {
  test(`${LIMIT} clients at once all get the banner from one smtpd process; one more waits for a free session`, async () => {
    const clients = await Promise.all(Array.from({ length: LIMIT }, () => RawSmtp.connect(sys.port)));
    try {
      const banners = await Promise.all(clients.map((c) => c.reply(30_000)));
      expect(banners.filter((b) => !b.startsWith("220 "))).toEqual([]);
      const extra = await RawSmtp.connect(sys.port);
      clients.push(extra);
      expect(await saysWithin(extra, 1000)).toBe("");
      await clients[0]!.quit();
      expect(await extra.reply(30_000)).toMatch(/^220 /);
      expect(smtpdProcesses("smtp")).toHaveLength(1);
      await sys.waitForLog(/postfix\/smtpd\[\d+\]: warning: service "smtp" has reached its session limit "40" in this process: new clients may experience noticeable delays/);
    } finally {
      for (const c of clients) c.destroy();
    }
  }, 90_000);

  test("beyond the limit clients wait in arrival order; one that leaves frees its place; beyond the line 421 4.3.2", async () => {
    const port = sys.ports.small!;
    // start() probed the service: once that session is gone both places are free
    await sys.waitForLog(/postfix\/small\/smtpd\[\d+\]: disconnect from localhost\[127\.0\.0\.1\]/);
    const all: RawSmtp[] = [];
    const open = async () => {
      const c = await RawSmtp.connect(port);
      all.push(c);
      return c;
    };
    try {
      const a = await open();
      const b = await open();
      expect(await a.reply()).toMatch(/^220 /);
      expect(await b.reply()).toMatch(/^220 /);
      // two wait, without a banner
      const c = await open();
      const d = await open();
      expect(await saysWithin(c, 500)).toBe("");
      expect(await saysWithin(d, 500)).toBe("");
      // the line is full: one more is refused at once
      const refused = await open();
      expect(await refused.reply()).toBe("421 4.3.2 Service currently unavailable\r\n");
      expect(await refused.waitClosed()).toBe(true);
      // c leaves the line: a newcomer then waits instead of being refused
      c.destroy();
      const e = await waitFor("a place in the line after a waiting client left", async () => {
        const x = await open();
        if ((await saysWithin(x, 500)) === "") return x;
        x.destroy();
        return undefined;
      });
      // a session ends: the oldest waiting client still connected (d, not the gone c) is served, e still waits
      await a.quit();
      expect(await d.reply(30_000)).toMatch(/^220 /);
      expect(await saysWithin(e, 500)).toBe("");
      expect(await d.cmd("EHLO waiting.example")).toMatch(/^250-/);
      await b.quit();
      expect(await e.reply(30_000)).toMatch(/^220 /);
      await d.quit();
      await e.quit();
      // the clients that waited got their session, with the usual reverse lookup ("connect from" with the name)
      await sys.waitForLog(/postfix\/small\/smtpd\[\d+\]: warning: service "small" has reached its session limit "2" in this process/);
      const connects = sys.log().match(/postfix\/small\/smtpd\[\d+\]: connect from localhost\[127\.0\.0\.1\]/g) ?? [];
      // start()'s probe, a, b, d, e (the refused ones and c never got a session)
      expect(connects.length).toBe(5);
    } finally {
      for (const c of all) c.destroy();
    }
  }, 90_000);
});
