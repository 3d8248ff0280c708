/**
 * mailq and postqueue -j side by side with a live Postfix 3.7 (Debian's
 * package): a private instance defers a few messages (its relayhost is a
 * closed port on 127.0.0.1), one is held and one expired with Postfix's
 * postsuper, the instance is stopped, and Postfix's `postqueue -p` and `-j`
 * are captured. postern then lists the same queue situation, built with the
 * queue-file API from Postfix's JSON, and must print the same text.
 *
 * Runs only as root with Postfix installed. The instance listens on no
 * network port (no smtpd in master.cf, inet_interfaces = loopback-only),
 * does no DNS, and is stopped and removed after the test.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { removeDir, run, tempDir } from "../helpers/run.ts";
import { contentOfSize, IS_ROOT, makeQueue, removeQueues, putMessage, type FixtureMessage } from "../helpers/queue-fixture.ts";

afterAll(removeQueues);
import { getpwnam } from "../../src/util/passwd.ts";
import { freePort } from "../helpers/ports.ts";

const POSTFIX = "/usr/sbin/postfix";
const available = IS_ROOT && existsSync(POSTFIX) && existsSync("/usr/sbin/postqueue") && getpwnam("postfix") !== undefined;
const QUEUE_ORDER = ["maildrop", "active", "incoming", "deferred", "hold"];

function sh(argv: string[], env: Record<string, string> = {}, stdin?: string) {
  const r = Bun.spawnSync(argv, { env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", TZ: "UTC", LANG: "C", ...env }, stdin: stdin === undefined ? "ignore" : Buffer.from(stdin) });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

interface PostfixJson {
  queue_name: FixtureMessage["queue"];
  queue_id: string;
  arrival_time: number;
  message_size: number;
  forced_expire: boolean;
  sender: string;
  recipients: Array<{ address: string; delay_reason?: string }>;
}

describe.skipIf(!available)("postern and a live Postfix list the same queue alike", () => {
  let base: string;
  let etc: string;
  let postfixText = "";
  let postfixJson = "";

  beforeAll(async () => {
    base = tempDir("postern-vs-postfix-");
    Bun.spawnSync(["chmod", "755", base]);
    etc = join(base, "etc");
    const data = join(base, "data");
    for (const d of [etc, data, join(base, "spool")]) mkdirSync(d);
    chownSync(data, getpwnam("postfix")!.uid, getpwnam("postfix")!.gid);
    const main = {
      compatibility_level: "3.7",
      queue_directory: join(base, "spool"),
      data_directory: data,
      mail_owner: "postfix",
      setgid_group: "postdrop",
      inet_interfaces: "loopback-only",
      inet_protocols: "ipv4",
      myhostname: "mx.example.test",
      mydomain: "example.test",
      myorigin: "example.test",
      mydestination: "",
      relayhost: `[127.0.0.1]:${freePort()}`,
      smtp_dns_support_level: "disabled",
      hash_queue_names: "flush",
      queue_run_delay: "3600s",
      minimal_backoff_time: "3600s",
      maximal_backoff_time: "7200s",
      maillog_file: join(base, "maillog"),
      maillog_file_prefixes: base,
    };
    writeFileSync(join(etc, "main.cf"), Object.entries(main).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n");
    const services = ["pickup unix n - n 60 1 pickup", "cleanup unix n - n - 0 cleanup", "qmgr unix n - n 300 1 qmgr", "rewrite unix - - n - - trivial-rewrite",
      "bounce unix - - n - 0 bounce", "defer unix - - n - 0 bounce", "trace unix - - n - 0 bounce", "flush unix n - n 1000? 0 flush",
      "smtp unix - - n - - smtp", "showq unix n - n - - showq", "error unix - - n - - error", "retry unix - - n - - error",
      "postlog unix-dgram n - n - 1 postlogd"];
    writeFileSync(join(etc, "master.cf"), services.join("\n") + "\n");
    const env = { MAIL_CONFIG: etc };
    const start = sh([POSTFIX, "-c", etc, "start"]);
    const maillog = () => (existsSync(join(base, "maillog")) ? readFileSync(join(base, "maillog"), "utf8") : "(no log)");
    if (start.code !== 0) throw new Error(`postfix start failed: ${start.stderr}\n${maillog()}`);
    const submit = (args: string[], body: string) => {
      const r = sh(["/usr/sbin/sendmail", "-i", ...args], env, body);
      if (r.code !== 0) throw new Error(`Postfix sendmail failed: ${r.stderr}`);
    };
    const body = (subject: string, lines: number) => `Subject: ${subject}\n\n` + Array.from({ length: lines }, (_, i) => `line ${i}\n`).join("");
    submit(["-f", "alice@example.test", "bob@remote.test", "carol@remote.test"], body("two recipients", 30));
    submit(["-f", "<>", "bounce@remote.test"], body("null sender", 3));
    submit(["-f", "dave@example.test", "erin@remote.test"], body("to hold", 5));
    submit(["-f", "frank@example.test", "gina@remote.test"], body("to expire", 200));
    // wait until the four are deferred, each with its connection-refused reason
    let listing: PostfixJson[] = [];
    for (let i = 0; i < 200; i++) {
      listing = sh(["/usr/sbin/postqueue", "-c", etc, "-j"]).stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
      if (listing.length === 4 && listing.every((m) => m.queue_name === "deferred" && m.recipients.every((r) => r.delay_reason))) break;
      await Bun.sleep(100);
    }
    const idOf = (sender: string) => listing.find((m) => m.sender === sender)!.queue_id;
    sh(["/usr/sbin/postsuper", "-c", etc, "-h", idOf("dave@example.test")]);
    sh(["/usr/sbin/postsuper", "-c", etc, "-e", idOf("frank@example.test")]);
    sh([POSTFIX, "-c", etc, "stop"]);
    // the system is down now: root's postqueue reads the queue directly, as postern's does
    postfixText = sh(["/usr/sbin/postqueue", "-c", etc, "-p"]).stdout;
    postfixJson = sh(["/usr/sbin/postqueue", "-c", etc, "-j"]).stdout;
  }, 60_000);

  afterAll(() => {
    if (etc && existsSync(join(base, "spool", "pid", "master.pid"))) sh([POSTFIX, "-c", etc, "stop"]);
    if (base) removeDir(base);
  });

  test("mailq and postqueue -j", async () => {
    const entries: PostfixJson[] = postfixJson.trim().split("\n").map((l) => JSON.parse(l));
    expect(entries).toHaveLength(4);
    expect(entries.filter((m) => m.queue_name === "hold")).toHaveLength(1);
    expect(entries.filter((m) => m.forced_expire)).toHaveLength(1);
    expect(entries.every((m) => m.recipients.every((r) => r.delay_reason?.includes("Connection refused")))).toBe(true);
    expect(postfixText).toContain("MAILER-DAEMON");
    expect(postfixText).toMatch(/\n {10,}\(connect to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+: Connection refused\)\n/);

    const q = await makeQueue();
    for (const m of entries) {
      putMessage(q, {
        queue: m.queue_name,
        id: m.queue_id,
        arrival: m.arrival_time,
        sender: m.sender === "MAILER-DAEMON" ? "" : m.sender,
        recipients: m.recipients.map((r) => ({ address: r.address })),
        content: contentOfSize(m.message_size, m.queue_id),
        defer: m.recipients.filter((r) => r.delay_reason).map((r) => ({ recipient: r.address, reason: r.delay_reason! })),
        expire: m.forced_expire,
      });
    }
    // Postfix lists a directory in readdir order, postern in queue-ID order
    const rank = (m: PostfixJson) => QUEUE_ORDER.indexOf(m.queue_name) * 1e6;
    const blocks = postfixText.slice(postfixText.indexOf("\n") + 1).split("\n\n");
    const summary = blocks.pop()!;
    const order = entries.map((m, i) => ({ m, i })).sort((a, b) => rank(a.m) - rank(b.m) || a.m.queue_id.localeCompare(b.m.queue_id));
    const expectedText = postfixText.slice(0, postfixText.indexOf("\n") + 1) + order.map(({ i }) => blocks[i]).join("\n\n") + "\n\n" + summary;
    const jsonLines = postfixJson.trim().split("\n");
    const expectedJson = order.map(({ i }) => jsonLines[i] + "\n").join("");

    const text = await run("postqueue", ["-c", q.configDir, "-p"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toBe(expectedText);
    const json = await run("postqueue", ["-c", q.configDir, "-j"]);
    expect(json.stdout).toBe(expectedJson);
  });
});
