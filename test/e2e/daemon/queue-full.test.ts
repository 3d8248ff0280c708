/**
 * A full queue file system loses nothing that was acknowledged (issue 9,
 * item 2). The queue directory is a 2 MB tmpfs; message_size_limit is
 * 600 KB, so MAIL FROM needs 900 KB free. Five SMTP sessions pass MAIL
 * while the disk is empty and then send 450 KB each at once, while four
 * sendmail processes submit 450 KB each: more than fits. Every message that
 * got 250 (or sendmail exit 0) must be in the queue (or maildrop/) whole;
 * every other one must have got 451/452 (exit 75); no temporary file may be
 * left. Then, with the disk nearly full, MAIL gets 452, sendmail exits 75,
 * and pickup leaves a maildrop file where it is until there is room again.
 *
 * Root only (mounting a tmpfs); skipped with the reason otherwise.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodeQueueFile, encodeQueueFile } from "../../../src/global/queue/format.ts";
import { run } from "../../helpers/run.ts";
import { CANNOT_MOUNT, mountSmallFs, type SmallFs } from "../../helpers/small-fs.ts";
import { HOST, RawSmtp, SmtpdSystem, waitFor } from "../../helpers/smtpd-system.ts";

const LIMIT = 600_000;
const BODY_SIZE = 450_000;
const QUEUES = ["maildrop", "incoming", "active", "deferred", "hold"];

/** A body of `size` bytes, CRLF lines, every line naming the message. */
function body(tag: string, size = BODY_SIZE): string {
  const line = `${tag} ${"x".repeat(70 - tag.length)}\r\n`;
  return `Subject: ${tag}\r\n\r\n${line.repeat(Math.ceil(size / line.length))}`;
}

/** The message content as queued: LF line ends. */
const stored = (text: string) => text.replaceAll("\r\n", "\n");

/** What follows the header (cleanup adds header lines, never changes the body). */
const bodyOf = (text: string) => text.slice(text.indexOf("\n\n") + 2);

describe.skipIf(CANNOT_MOUNT !== undefined)(`a full queue file system${CANNOT_MOUNT ? ` (skipped: ${CANNOT_MOUNT})` : ""}`, () => {
  let sys: SmtpdSystem;
  let fs: SmallFs;

  beforeAll(async () => {
    sys = new SmtpdSystem({ message_size_limit: LIMIT, queue_minfree: 0 });
    mkdirSync(sys.queue, { mode: 0o755 });
    fs = mountSmallFs("2m", sys.queue);
    await sys.start();
  });

  afterAll(async () => {
    try {
      if (sys.masterPid() !== undefined) await sys.stop();
    } catch {}
    sys.killLeftovers();
    fs?.release();
    await sys.cleanup();
  });

  /** Every queue file (any queue) as [queue/name, decoded content]; throws on a file that does not decode. */
  function queueFiles(): Map<string, string> {
    const out = new Map<string, string>();
    for (const q of QUEUES) {
      for (const name of readdirSync(join(sys.queue, q))) {
        const f = decodeQueueFile(readFileSync(join(sys.queue, q, name)));
        out.set(`${q}/${name}`, Buffer.from(f.content).toString("latin1"));
      }
    }
    return out;
  }

  function temporaryFiles(): string[] {
    return QUEUES.flatMap((q) => readdirSync(join(sys.queue, q)).filter((n) => n.startsWith("t.")).map((n) => `${q}/${n}`));
  }

  test("every acknowledged message is queued whole; the others got 451/452 or exit 75; no temporary file is left", async () => {
    // five sessions pass MAIL, RCPT and DATA while the disk is empty
    const sessions = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const c = await RawSmtp.connect(sys.port);
        expect(await c.reply()).toMatch(/^220 /);
        expect(await c.cmd("EHLO client.example")).toMatch(/^250-/);
        expect(await c.cmd("MAIL FROM:<sender@example.org>")).toBe("250 2.1.0 Ok\r\n");
        expect(await c.cmd(`RCPT TO:<root@${HOST}>`)).toBe("250 2.1.5 Ok\r\n");
        expect(await c.cmd("DATA")).toMatch(/^354 /);
        return c;
      }),
    );
    // then all their contents and four sendmail submissions at once
    const smtpTexts = sessions.map((_, i) => body(`smtp-message-${i}`));
    const smtpReplies = sessions.map((c, i) => {
      c.send(`${smtpTexts[i]}.\r\n`);
      return c.reply(30_000);
    });
    const sendmailTexts = Array.from({ length: 4 }, (_, i) => body(`sendmail-message-${i}`));
    const sendmails = sendmailTexts.map((text) => sys.sendmail(["-i", `root@${HOST}`], stored(text)));
    const replies = await Promise.all(smtpReplies);
    const results = await Promise.all(sendmails);
    for (const c of sessions) await c.quit();
    await sys.stop();

    const files = queueFiles();
    const holding = (tag: string) => [...files.entries()].filter(([, content]) => content.includes(`Subject: ${tag}\n`));
    let accepted = 0;
    let writeErrors = 0;
    replies.forEach((r, i) => {
      const tag = `smtp-message-${i}`;
      const found = holding(tag);
      if (r.startsWith("250 ")) {
        accepted++;
        const id = /queued as ([0-9A-F]+)/.exec(r)![1]!;
        expect(found.map(([name]) => name.split("/")[1])).toEqual([id]);
        expect(bodyOf(found[0]![1]) === bodyOf(stored(smtpTexts[i]!))).toBe(true);
      } else {
        expect(r).toMatch(/^(451 4\.3\.0 Error: queue file write error|452 4\.3\.1 Insufficient system storage)\r\n$/);
        if (r.startsWith("451 ")) writeErrors++;
        expect(found).toEqual([]);
      }
    });
    results.forEach((r, i) => {
      const tag = `sendmail-message-${i}`;
      const found = holding(tag);
      if (r.code === 0) {
        accepted++;
        expect(found.length).toBe(1);
        expect(bodyOf(found[0]![1]) === bodyOf(stored(sendmailTexts[i]!))).toBe(true);
      } else {
        expect(r.code).toBe(75);
        expect(r.stderr).toMatch(/sendmail: fatal: root\(0\): (error writing queue file: no space left on device|Insufficient system storage: )/);
        if (r.stderr.includes("error writing queue file")) writeErrors++;
        expect(found).toEqual([]);
      }
    });
    // more than fits was sent: some got in, and some were refused at the write, not before it
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(9);
    expect(writeErrors).toBeGreaterThan(0);
    expect(temporaryFiles()).toEqual([]);
    expect(readdirSync(join(sys.queue, "corrupt"))).toEqual([]);
    expect(sys.log()).not.toMatch(/to corrupt\/|corrupt queue file/);
  }, 120_000);

  test("with less free space than 1.5 x message_size_limit: MAIL gets 452, sendmail exits 75, pickup leaves maildrop files for later", async () => {
    // fill the disk until a little less than 1.5 x message_size_limit is free
    const free = () => {
      const st = statfsSync(sys.queue);
      return Number(st.bavail) * Number(st.bsize);
    };
    // the first test's messages go: started, the queue manager would deliver
    // and remove them, and the space they free would make room again
    for (const q of QUEUES) for (const name of readdirSync(join(sys.queue, q))) rmSync(join(sys.queue, q, name));
    const filler = join(sys.queue, "filler");
    if (free() > 400_000) writeFileSync(filler, Buffer.alloc(free() - 400_000));
    expect(free()).toBeLessThan(1.5 * LIMIT);
    expect(free()).toBeGreaterThan(200_000);

    await sys.start();
    const c = await RawSmtp.connect(sys.port);
    expect(await c.reply()).toMatch(/^220 /);
    expect(await c.cmd("EHLO client.example")).toMatch(/^250-/);
    expect(await c.cmd("MAIL FROM:<sender@example.org>")).toBe("452 4.3.1 Insufficient system storage\r\n");
    await c.quit();
    await sys.waitForLog(/smtpd\[\d+\]: warning: not enough free space in mail queue: \d+ bytes < 1\.5\*message size limit \(600000\)/);

    const small = await sys.sendmail(["-i", `root@${HOST}`], "Subject: small\n\nsmall\n");
    expect(small.code).toBe(75);
    expect(small.stderr).toMatch(/^sendmail: fatal: root\(0\): Insufficient system storage: not enough free space in mail queue: \d+ bytes < 1\.5\*message size limit \(600000\); try again later\n$/);
    await sys.stop();

    // a maildrop file (as sendmail writes it) waits while the disk is short
    const file = encodeQueueFile({ arrivalTime: Date.now(), sender: "root", recipients: [{ address: `root@${HOST}` }], attributes: { rewrite_context: "local", origin: "sendmail" }, content: Buffer.from("Subject: waiting\n\nwaiting for room\n") });
    writeFileSync(join(sys.queue, "maildrop", "t.test"), file, { mode: 0o640 });
    renameSync(join(sys.queue, "maildrop", "t.test"), join(sys.queue, "maildrop", "ABCDE12345"));
    const pickup = () => run("postern", ["pickup", "--once", "-c", sys.etc]);
    const from = sys.log().length;
    expect((await pickup()).code).toBe(0);
    expect(sys.log().slice(from)).toMatch(/pickup\[\d+\]: warning: not enough free space in mail queue: \d+ bytes < 1\.5\*message size limit \(600000\); leaving mail in maildrop\/ for later/);
    expect(existsSync(join(sys.queue, "maildrop", "ABCDE12345"))).toBe(true);
    expect(sys.queueIds("incoming")).toEqual([]);

    // room again: the next pass takes it
    rmSync(filler, { force: true });
    for (const name of readdirSync(join(sys.queue, "deferred"))) rmSync(join(sys.queue, "deferred", name));
    for (const q of ["incoming", "active"]) for (const name of readdirSync(join(sys.queue, q))) rmSync(join(sys.queue, q, name));
    expect((await pickup()).code).toBe(0);
    expect(existsSync(join(sys.queue, "maildrop", "ABCDE12345"))).toBe(false);
    const [id] = await waitFor("the picked-up message", () => (sys.queueIds("incoming").length ? sys.queueIds("incoming") : undefined));
    expect(Buffer.from(decodeQueueFile(readFileSync(join(sys.queue, "incoming", id!))).content).toString()).toContain("waiting for room");
    expect(temporaryFiles()).toEqual([]);
  }, 60_000);
});
