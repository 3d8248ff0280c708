/**
 * process_limit against the real smtpd (issue 16): Postfix admits that many
 * clients at once, one per smtpd process; postern serves them all in one
 * smtpd process per service. With one process per 20 sessions, each
 * admitting only its share, the kernel's uneven SO_REUSEPORT spread turned
 * clients away with 421 4.3.2 below the limit.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { RawSmtp, SmtpdSystem } from "../../helpers/smtpd-system.ts";

const LIMIT = 40;
let sys: SmtpdSystem;

beforeAll(async () => {
  sys = new SmtpdSystem({ smtpd_client_connection_count_limit: 0 }, { smtp: { process_limit: LIMIT } });
  await sys.start();
}, 60_000);

afterAll(async () => {
  await sys?.cleanup();
});

/** The smtpd processes of the system, by the role in their command line. */
function smtpdProcesses(): number[] {
  return sys.allProcesses().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[1] === "smtpd";
    } catch {
      return false;
    }
  });
}

describe("process_limit", () => {
  test(`${LIMIT} clients at once all get the banner, one more gets 421 4.3.2, from one smtpd process`, async () => {
    const clients = await Promise.all(Array.from({ length: LIMIT }, () => RawSmtp.connect(sys.port)));
    try {
      const banners = await Promise.all(clients.map((c) => c.reply(30_000)));
      expect(banners.filter((b) => !b.startsWith("220 "))).toEqual([]);
      const extra = await RawSmtp.connect(sys.port);
      expect(await extra.reply(30_000)).toBe("421 4.3.2 Service currently unavailable\r\n");
      extra.destroy();
      expect(smtpdProcesses()).toHaveLength(1);
    } finally {
      for (const c of clients) c.destroy();
    }
  }, 90_000);
});
