/**
 * An acknowledged message whose EHLO name holds U+00A0 is delivered, not
 * moved to corrupt/. smtpd reads command lines one character per byte and
 * keeps 8-bit HELO names (SMTPUTF8 on), so the name reached the queue file's
 * helo attribute as U+00A0, which the queue-file decoder refused as "bad
 * attribute record" (found by test/fuzz/queue-file.test.ts).
 */
import { afterAll, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { HOST, RawSmtp, SmtpdSystem } from "../../helpers/smtpd-system.ts";

const sys = new SmtpdSystem({ default_transport: "discard:", local_transport: "discard:", relay_transport: "discard:" });
afterAll(() => sys.cleanup());

test("a message from a client whose EHLO name holds U+00A0 is delivered, not moved to corrupt/", async () => {
  await sys.start();
  const c = await RawSmtp.connect(sys.port);
  try {
    expect(await c.reply()).toStartWith("220 ");
    // U+00A0 in UTF-8 (0xC2 0xA0): the name holds U+00A0 whether command lines are read as latin1 or as UTF-8
    expect(await c.cmd("EHLO client\xc2\xa0name.example")).toStartWith("250-");
    expect(await c.cmd("MAIL FROM:<sender@example.test>")).toBe("250 2.1.0 Ok\r\n");
    expect(await c.cmd(`RCPT TO:<root@${HOST}>`)).toBe("250 2.1.5 Ok\r\n");
    expect(await c.cmd("DATA")).toStartWith("354 ");
    c.send("Subject: nbsp helo\r\n\r\nbody\r\n.\r\n");
    const id = /^250 2\.0\.0 Ok: queued as ([0-9A-F]+)\r\n$/.exec(await c.reply())?.[1];
    expect(id).toBeDefined();
    await c.quit();
    const outcome = await sys.waitForLog(new RegExp(`${id}: (?:to=<root@${HOST.replace(/\./g, "\\.")}>.*status=(\\w+)|(moving corrupt queue file.*))`));
    expect(outcome[2]).toBeUndefined();
    expect(outcome[1]).toBe("sent");
    expect(readdirSync(join(sys.queue, "corrupt"))).toEqual([]);
  } finally {
    c.destroy();
  }
}, 60_000);
