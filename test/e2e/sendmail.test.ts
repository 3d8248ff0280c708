/**
 * sendmail end to end, through the built executable: every option checked by
 * its effect on the queued message (the maildrop file, and the incoming file
 * after `postern pickup --once`), its exit status and its message. The mail
 * system is never started: sendmail must queue durably without it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bin, cleanEnv, configDir, removeDir, run, type RunResult } from "../helpers/run.ts";
import { waitFor } from "../helpers/wait.ts";
import { readQueueFile } from "../../src/global/queue/store.ts";
import type { QueueFile } from "../../src/global/queue/format.ts";
import { readDeliveryLog } from "../../src/global/queue/delivery-log.ts";
import { getpwuid } from "../../src/util/passwd.ts";

const isRoot = process.getuid?.() === 0;
/** The login name of the user running the tests: sendmail's default sender. */
const LOGIN = getpwuid(process.getuid?.() ?? 0)?.name ?? "root";
const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

interface Instance {
  dir: string;
  queue: string;
  maillog: string;
}

/** A private configuration and queue, prepared by `postern check`. */
async function instance(extra = ""): Promise<Instance> {
  const dir = configDir();
  dirs.push(dir);
  const queue = join(dir, "queue");
  const maillog = join(dir, "maillog");
  writeFileSync(
    join(dir, "postern.toml"),
    [
      `queue_directory = "${queue}"`,
      `maillog_file = "${maillog}"`,
      // as root the queue's owner must be a real user other than root
      'mail_owner = "nobody"',
      'myhostname = "host.example.org"',
      'myorigin = "origin.example"',
      extra,
    ].join("\n") + "\n",
  );
  const r = await run("postern", ["check", "-c", dir]);
  expect(r.code).toBe(0);
  // pickup runs as mail_owner: the way to the queue must be open to it
  chmodSync(dir, 0o755);
  return { dir, queue, maillog };
}

function sendmail(inst: Instance, args: string[], stdin = "Subject: test\n\nbody\n", env: Record<string, string> = {}): Promise<RunResult> {
  return run("sendmail", ["-C", inst.dir, ...args], { stdin, env });
}

function queued(inst: Instance, queue = "maildrop"): string[] {
  return readdirSync(join(inst.queue, queue)).filter((n) => /^[0-9A-F]{6,}$/.test(n));
}

/** The one message in maildrop/ (decoded), or a failure. */
function onlyMaildrop(inst: Instance): QueueFile & { id: string } {
  const ids = queued(inst);
  expect(ids.length).toBe(1);
  return { id: ids[0]!, ...readQueueFile(join(inst.queue, "maildrop", ids[0]!)) };
}

/** Runs pickup once and returns the one new incoming message. */
async function pickedUp(inst: Instance): Promise<QueueFile & { id: string; text: string }> {
  const before = new Set(queued(inst, "incoming"));
  const r = await run("postern", ["pickup", "--once", "-c", inst.dir]);
  expect(r.code).toBe(0);
  expect(queued(inst)).toEqual([]);
  const ids = queued(inst, "incoming").filter((i) => !before.has(i));
  expect(ids.length).toBe(1);
  const file = readQueueFile(join(inst.queue, "incoming", ids[0]!));
  return { id: ids[0]!, ...file, text: Buffer.from(file.content).toString("utf8") };
}

const content = (f: QueueFile) => Buffer.from(f.content).toString("utf8");
const addresses = (f: QueueFile) => f.recipients.map((r) => r.address);

let shared: Instance;
beforeAll(async () => {
  shared = await instance();
});

describe("recipients and the message", () => {
  test("recipients as arguments; an argument may hold a list with display names", async () => {
    const inst = await instance();
    const r = await sendmail(inst, ["bob", "Carol C <carol@example.com>, dave"]);
    expect(r).toEqual({ code: 0, stdout: "", stderr: "" });
    const f = onlyMaildrop(inst);
    expect(addresses(f)).toEqual(["bob", "carol@example.com", "dave"]);
    expect(f.sender).toBe(LOGIN);
    expect(content(f)).toBe("Subject: test\n\nbody\n");
    const mode = statSync(join(inst.queue, "maildrop", f.id)).mode & 0o777;
    expect(mode).toBe(0o640);
  });

  test("-- ends the options: a later word that looks like an option is a recipient", async () => {
    const inst = await instance();
    expect((await sendmail(inst, ["-i", "--", "-t", "-fx"])).code).toBe(0);
    expect(addresses(onlyMaildrop(inst))).toEqual(["-t", "-fx"]);
  });

  test("a line with a single dot ends the message; -i and -oi keep it", async () => {
    const input = "Subject: dot\n\nbefore\n.\nafter\n";
    for (const [args, body] of [
      [[], "Subject: dot\n\nbefore\n"],
      [["-i"], input],
      [["-oi"], input],
    ] as const) {
      const inst = await instance();
      expect((await sendmail(inst, [...args, "bob"], input)).code).toBe(0);
      expect(content(onlyMaildrop(inst))).toBe(body);
    }
  });

  test("CRLF input is stored with LF; a leading From_ line is removed; a last line gets its newline", async () => {
    const inst = await instance();
    expect((await sendmail(inst, ["bob"], "From someone Mon Jan  1 00:00:00 2024\r\nSubject: crlf\r\n\r\nline\r\nlast")).code).toBe(0);
    expect(content(onlyMaildrop(inst))).toBe("Subject: crlf\n\nline\nlast\n");
  });

  test("an empty message is queued", async () => {
    const inst = await instance();
    expect((await sendmail(inst, ["bob"], "")).code).toBe(0);
    const f = await pickedUp(inst);
    expect(f.text).toMatch(/^Received: by host\.example\.org \(postern, from userid \d+\)\n\tid [0-9A-F]+; .*\nMessage-Id: <\d{14}\.[0-9A-F]+@host\.example\.org>\nDate: .*\nFrom: .*\n$/);
  });
});

describe("-t", () => {
  test("recipients from To, Cc and Bcc plus the command line; Bcc is gone from the queued copy", async () => {
    const inst = await instance();
    const msg = 'To: alice, "Bob B" <bob@example.com>\nCc: carol\nBcc: secret@example.com\nSubject: t\n\nbody\n';
    expect((await sendmail(inst, ["-t", "extra@example.com"], msg)).code).toBe(0);
    expect(addresses(onlyMaildrop(inst))).toEqual(["extra@example.com", "alice", "bob@example.com", "carol", "secret@example.com"]);
    const f = await pickedUp(inst);
    expect(addresses(f)).toEqual(["extra@example.com", "alice@origin.example", "bob@example.com", "carol@origin.example", "secret@example.com"]);
    expect(f.text).toContain('To: alice@origin.example, "Bob B" <bob@example.com>\nCc: carol@origin.example\nSubject: t\n');
    expect(f.text).not.toContain("Bcc");
    expect(f.text).not.toContain("secret");
  });

  test("the first Resent- block gives the recipients of a resent message; Resent-Bcc is removed", async () => {
    const inst = await instance();
    const msg = "Resent-From: me\nResent-To: new@example.com\nResent-Bcc: hidden@example.com\nFrom: orig@example.com\nTo: old@example.com\n\nbody\n";
    expect((await sendmail(inst, ["-t"], msg)).code).toBe(0);
    expect(addresses(onlyMaildrop(inst))).toEqual(["new@example.com", "hidden@example.com"]);
    const f = await pickedUp(inst);
    expect(f.text).not.toContain("Resent-Bcc");
    expect(f.text).toMatch(/\nResent-Message-Id: <.*>\nResent-Date: /);
  });

  test("no recipient in the headers: exit 64 with Postfix's message", async () => {
    const inst = await instance();
    const r = await sendmail(inst, ["-t"], "Subject: nobody\n\nbody\n");
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/^sendmail: fatal: \S+\(\d+\): No recipient addresses found in message header\n$/);
    expect(queued(inst)).toEqual([]);
  });
});

describe("sender and full name", () => {
  const cases: Array<[string[], string]> = [
    [["-fuser@example.com"], "user@example.com"],
    [["-f", "user@example.com"], "user@example.com"],
    [["-r", "other@example.com"], "other@example.com"],
    [["-f", "Some One <so@example.com>"], "so@example.com"],
    [["-f", ""], ""],
    [["-f", "<>"], ""],
  ];
  for (const [args, sender] of cases) {
    test(`${args.map((a) => JSON.stringify(a)).join(" ")} -> <${sender}>`, async () => {
      const inst = await instance();
      expect((await sendmail(inst, [...args, "bob"])).code).toBe(0);
      expect(onlyMaildrop(inst).sender).toBe(sender);
    });
  }

  test("a malformed -f: the first address, with Postfix's warning", async () => {
    const inst = await instance();
    const r = await sendmail(inst, ["-f", "a b c", "bob"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("sendmail: warning: -f option specified malformed sender: a b c\n");
    expect(onlyMaildrop(inst).sender).toBe("a");
  });

  test("-F gives the full name of the generated From:, over NAME", async () => {
    const inst = await instance();
    expect((await sendmail(inst, ["-F", "Full, Name", "-f", "joe", "bob"], "Subject: x\n\nb\n", { NAME: "From Env" })).code).toBe(0);
    const f = await pickedUp(inst);
    expect(f.text).toContain('\nFrom: "Full, Name" <joe@origin.example>\n');
    expect(f.sender).toBe("joe@origin.example");
  });

  test("NAME gives the full name when there is no -F", async () => {
    const inst = await instance();
    expect((await sendmail(inst, ["-f", "joe", "bob"], "Subject: x\n\nb\n", { NAME: "From Env" })).code).toBe(0);
    expect((await pickedUp(inst)).text).toContain("\nFrom: From Env <joe@origin.example>\n");
  });

  test("a message with a From: keeps it (the full name is not used)", async () => {
    const inst = await instance();
    expect((await sendmail(inst, ["-F", "Unused", "bob"], "From: Me <me@example.com>\n\nb\n")).code).toBe(0);
    const f = await pickedUp(inst);
    expect(f.text).toContain("\nFrom: Me <me@example.com>\n");
    expect(f.text).not.toContain("Unused");
  });
});

describe("DSN and body options", () => {
  test("-N, -R, -V, -B and -XV are recorded in the envelope", async () => {
    const inst = await instance();
    const r = await sendmail(inst, ["-N", "success,delay", "-R", "hdrs", "-V", "envid-42", "-B", "8BITMIME", "-XV", "-f", "owner-list@example.com", "bob", "carol"]);
    expect(r.code).toBe(0);
    const f = onlyMaildrop(inst);
    expect(f.recipients.map((x) => x.notify)).toEqual([["SUCCESS", "DELAY"], ["SUCCESS", "DELAY"]]);
    expect(f.attributes).toMatchObject({ ret: "HDRS", envid: "envid-42", encoding: "8BITMIME", verp: "+=" });
    const g = await pickedUp(inst);
    expect(g.recipients.map((x) => x.notify)).toEqual([["SUCCESS", "DELAY"], ["SUCCESS", "DELAY"]]);
    expect(g.attributes).toMatchObject({ ret: "HDRS", envid: "envid-42", encoding: "8BITMIME", verp: "+=" });
  });

  test("-N never", async () => {
    const inst = await instance();
    expect((await sendmail(inst, ["-N", "never", "bob"])).code).toBe(0);
    expect(onlyMaildrop(inst).recipients[0]!.notify).toEqual(["NEVER"]);
  });

  test("a bad -N is ignored with Postfix's warnings", async () => {
    const inst = await instance();
    const r = await sendmail(inst, ["-N", "bogus", "bob"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('sendmail: warning: unknown DSN NOTIFY command value "bogus" in "bogus"\nsendmail: warning: bad -N option value -- ignored\n');
    expect(onlyMaildrop(inst).recipients[0]!.notify).toBeUndefined();
  });

  test("-XV needs a sender", async () => {
    const inst = await instance();
    const r = await sendmail(inst, ["-f", "", "-XV", "bob"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toBe("sendmail: fatal: (" + (process.getuid?.() ?? 0) + "): -V option requires non-null sender address\n");
  });

  test("options Postfix accepts and ignores change nothing", async () => {
    const inst = await instance();
    const r = await sendmail(inst, ["-oem", "-odb", "-odi", "-oQ/tmp/x", "-om", "-o7", "-L", "label", "-O", "opt=val", "-h", "5", "-m", "-U", "-Ac", "-Am", "-oA/etc/aliases", "bob"]);
    expect(r).toEqual({ code: 0, stdout: "", stderr: "" });
    const f = onlyMaildrop(inst);
    expect(addresses(f)).toEqual(["bob"]);
    expect(f.attributes).toEqual({ rewrite_context: "local", origin: "sendmail", ...(f.attributes.full_name !== undefined ? { full_name: f.attributes.full_name } : {}) });
  });

  test("-v asks for a delivery report: Postfix's notice, attribute record=yes", async () => {
    const inst = await instance();
    const r = await sendmail(inst, ["-v", "-f", "me", "bob"]);
    expect(r).toEqual({ code: 0, stdout: "Mail Delivery Status Report will be mailed to <me>.\n", stderr: "" });
    expect(onlyMaildrop(inst).attributes.record).toBe("yes");
  });

  test("-G is a gateway submission: headers are left as they are", async () => {
    const inst = await instance();
    expect((await sendmail(inst, ["-G", "bob"], "To: bob\nSubject: x\n\nb\n")).code).toBe(0);
    expect(onlyMaildrop(inst).attributes.rewrite_context).toBe("remote");
    const f = await pickedUp(inst);
    expect(f.text).toContain("\nTo: bob\n");
    expect(f.text).not.toContain("Message-Id");
  });
});

describe("modes", () => {
  test("-bm is the default mode", async () => {
    const inst = await instance();
    expect((await sendmail(inst, ["-bm", "bob"])).code).toBe(0);
    expect(addresses(onlyMaildrop(inst))).toEqual(["bob"]);
  });

  test("-bv queues a probe marked verify=yes instead of reading a message", async () => {
    const inst = await instance();
    const r = await sendmail(inst, ["-bv", "-f", "me", "bob", "carol"], "this is not read\n");
    expect(r).toEqual({ code: 0, stdout: "Mail Delivery Status Report will be mailed to <me>.\n", stderr: "" });
    const f = onlyMaildrop(inst);
    expect(f.attributes.verify).toBe("yes");
    expect(content(f)).toBe("From: me\nSubject: probe\nTo:\tbob,\n\tcarol\n");
    expect((await pickedUp(inst)).attributes.verify).toBe("yes");
  });

  test("-bp lists the queue, maildrop included", async () => {
    const inst = await instance();
    expect((await sendmail(inst, ["bob"])).code).toBe(0);
    const id = onlyMaildrop(inst).id;
    const r = await sendmail(inst, ["-bp"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(id);
    expect(r.stdout).toMatch(/-- \d+ Kbytes in 1 Request\.\n$/);
  });

  test("-q while the mail system is down: exit 69 with Postfix's message", async () => {
    const r = await sendmail(shared, ["-q"]);
    expect(r.code).toBe(69);
    expect(r.stderr).toBe("sendmail: fatal: Cannot flush mail queue - mail system is down\n");
  });

  test("-qR site and -qI id ask for a flush too", async () => {
    for (const args of [["-qRexample.com"], ["-qR", "example.com"], ["-qIABCDEF123"]]) {
      const r = await sendmail(shared, args);
      expect(r.code).toBe(69);
      expect(r.stderr).toContain("Cannot flush mail queue - mail system is down");
    }
  });

  test("-q<interval> is accepted and ignored: exit 0, nothing read or queued", async () => {
    const inst = await instance();
    expect(await sendmail(inst, ["-q30m"])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(queued(inst)).toEqual([]);
  });

  test("-bs: an SMTP session on stdin/stdout (the SMTP server's engine) queues into maildrop", async () => {
    const inst = await instance();
    const session = "EHLO me\r\nMAIL FROM:<u@example.com> RET=HDRS\r\nRCPT TO:<a@example.com> NOTIFY=NEVER\r\nDATA\r\nSubject: bs\r\n\r\n..hello\r\n.\r\nQUIT\r\n";
    const r = await sendmail(inst, ["-bs"], session);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^220 host\.example\.org ESMTP postern\r\n250-host\.example\.org\r\n/);
    expect(r.stdout).toMatch(/\r\n250 2\.1\.0 Ok\r\n250 2\.1\.5 Ok\r\n354 End data with <CR><LF>\.<CR><LF>\r\n250 2\.0\.0 Ok: queued as ([0-9A-F]+)\r\n221 2\.0\.0 Bye\r\n$/);
    const f = onlyMaildrop(inst);
    expect(r.stdout).toContain(`queued as ${f.id}\r\n`);
    expect(f.sender).toBe("u@example.com");
    expect(f.recipients).toEqual([{ address: "a@example.com", notify: ["NEVER"] }]);
    expect(f.attributes.ret).toBe("HDRS");
    expect(content(f)).toMatch(/^Received: from me \(localhost \[127\.0\.0\.1\]\)\n\tby host\.example\.org \(postern\) with ESMTP id [0-9A-F]+\n\tfor <a@example\.com>; .*\nSubject: bs\n\n\.hello\n$/);
  });

  test("-bi and -I rebuild the alias databases (newaliases); -oA names another one", async () => {
    const inst = await instance();
    const aliases = join(inst.dir, "aliases");
    const other = join(inst.dir, "other-aliases");
    writeFileSync(aliases, "postmaster: root\n");
    writeFileSync(other, "abuse: root\n");
    writeFileSync(join(inst.dir, "postern.toml"), readFileSync(join(inst.dir, "postern.toml"), "utf8") + `alias_database = "hash:${aliases}"\n`);
    expect(existsSync(`${aliases}.sqlite`)).toBe(false);
    expect((await sendmail(inst, ["-bi"])).code).toBe(0);
    expect(existsSync(`${aliases}.sqlite`)).toBe(true);
    rmSync(`${aliases}.sqlite`);
    expect((await sendmail(inst, ["-I"])).code).toBe(0);
    expect(existsSync(`${aliases}.sqlite`)).toBe(true);
    expect((await sendmail(inst, ["-bi", `-oAhash:${other}`])).code).toBe(0);
    expect(existsSync(`${other}.sqlite`)).toBe(true);
  });

  test("modes that take no recipients say so", async () => {
    for (const [args, text] of [
      [["-bp", "bob"], "display queue mode requires no recipient"],
      [["-bd", "bob"], "daemon mode requires no recipient"],
      [["-q", "bob"], "flush queue mode requires no recipient"],
      [["-qRsite", "bob"], "flush site requires no recipient"],
      [["-bi", "bob"], "alias initialization mode requires no recipient"],
    ] as const) {
      const r = await sendmail(shared, [...args]);
      expect(r.code).toBe(64);
      expect(r.stderr).toBe(`sendmail: fatal: ${text}\n`);
    }
  });
});

describe("errors and exit status", () => {
  test("an unknown option: exit 64, getopt's complaint and the usage", async () => {
    const inst = await instance();
    const r = await sendmail(inst, ["-z", "bob"]);
    expect(r).toEqual({ code: 64, stdout: "", stderr: "sendmail: invalid option -- 'z'\nsendmail: fatal: usage: sendmail [options]\n" });
    expect(queued(inst)).toEqual([]);
    expect(readFileSync(inst.maillog, "utf8")).toMatch(/postfix\/sendmail\[\d+\]: fatal: usage: sendmail \[options\]\n$/);
  });

  test("no recipients: exit 64 with Postfix's message", async () => {
    const r = await sendmail(shared, []);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/^sendmail: fatal: \S+\(\d+\): Recipient addresses must be specified on the command line or via the -t option\n$/);
  });

  test("-t with -bv: exit 64", async () => {
    const r = await sendmail(shared, ["-t", "-bv", "bob"]);
    expect(r).toEqual({ code: 64, stdout: "", stderr: "sendmail: fatal: -t option cannot be used with -bv\n" });
  });

  test("a message over message_size_limit: exit 65, nothing queued", async () => {
    const inst = await instance("message_size_limit = 1000");
    const r = await sendmail(inst, ["bob"], `Subject: big\n\n${"x".repeat(70)}\n`.repeat(20));
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/^sendmail: fatal: \S+\(\d+\): message file too big\n$/);
    expect(readdirSync(join(inst.queue, "maildrop"))).toEqual([]);
    expect((await sendmail(inst, ["bob"], "Subject: small\n\nok\n")).code).toBe(0);
  });

  test("a queue file that cannot be written whole (file size limit): exit 75 with Postfix's message, nothing left behind", async () => {
    const inst = await instance();
    // write(2) comes back short at the limit, then fails with EFBIG (SIGXFSZ ignored, as a shell may leave it)
    const proc = Bun.spawn(["sh", "-c", `trap '' XFSZ; ulimit -f 64; exec "$@"`, "sh", bin("sendmail"), "-C", inst.dir, "bob"], {
      env: cleanEnv(),
      stdin: new Blob([`Subject: big\n\n${"x".repeat(70)}\n`.repeat(3000)]),
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    expect(code).toBe(75);
    expect(stderr).toMatch(/^sendmail: fatal: \S+\(\d+\): error writing queue file: file too large\n$/);
    expect(readdirSync(join(inst.queue, "maildrop"))).toEqual([]);
  });

  test("less free space than 1.5 x message_size_limit: exit 75 before anything is written", async () => {
    const inst = await instance(`message_size_limit = ${2 ** 50}`);
    const r = await sendmail(inst, ["bob"]);
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/^sendmail: fatal: \S+\(\d+\): Insufficient system storage: not enough free space in mail queue: \d+ bytes < 1\.5\*message size limit \(1125899906842624\); try again later\n$/);
    expect(readdirSync(join(inst.queue, "maildrop"))).toEqual([]);
  });

  test("sendmail -bs with less free space than 1.5 x message_size_limit: MAIL gets 452", async () => {
    const inst = await instance(`message_size_limit = ${2 ** 50}`);
    const r = await sendmail(inst, ["-bs"], "EHLO x\r\nMAIL FROM:<a@example.org>\r\nQUIT\r\n");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("\r\n452 4.3.1 Insufficient system storage\r\n221 ");
    expect(readdirSync(join(inst.queue, "maildrop"))).toEqual([]);
  });

  test("an envelope pickup would refuse (a control character, an address over line_length_limit): exit 65, nothing queued", async () => {
    const inst = await instance();
    const cases: Array<[string[], string]> = [
      [["bob\x01x"], "malformed recipient address (a control character): bob?x"],
      [["-f", "me\x1bx", "bob"], "malformed sender address (a control character): me?x"],
      [[`${"y".repeat(2100)}@example.org`], `malformed recipient address (more than 2048 bytes): ${"y".repeat(200)}`],
    ];
    for (const [args, reason] of cases) {
      const r = await sendmail(inst, args);
      expect({ args, code: r.code }).toEqual({ args, code: 65 });
      expect(r.stderr).toMatch(/^sendmail: fatal: .*\(\d+\): /m);
      expect(r.stderr).toContain(`: ${reason}\n`);
    }
    expect(readdirSync(join(inst.queue, "maildrop"))).toEqual([]);
  });

  test("-t with a header longer than header_size_limit: exit 65, nothing queued", async () => {
    const inst = await instance("header_size_limit = 200");
    const folded = Array.from({ length: 20 }, () => `\t${"x".repeat(30)}`).join("\n");
    const r = await sendmail(inst, ["-t"], `To: bob\nX-Long: start\n${folded}\n\nbody\n`);
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/^sendmail: fatal: \S+\(\d+\): unable to extract recipients: message header length exceeds safety limit\n$/);
    expect(queued(inst)).toEqual([]);
  });

  test("authorized_submit_users refuses: exit 77", async () => {
    const inst = await instance('authorized_submit_users = "!root, static:anyone"');
    const other = await instance('authorized_submit_users = ""');
    for (const i of isRoot ? [inst, other] : [other]) {
      const r = await sendmail(i, ["bob"]);
      expect(r.code).toBe(77);
      expect(r.stderr).toBe(`sendmail: fatal: User ${LOGIN}(${process.getuid?.() ?? 0}) is not allowed to submit mail\n`);
      expect(queued(i)).toEqual([]);
    }
  });

  test("authorized_submit_users looks the login name up in a table: found allows, !table refuses", async () => {
    const allowed = await instance(`authorized_submit_users = "inline:{ ${LOGIN}=yes }"`);
    const r = await sendmail(allowed, ["bob"]);
    expect(r.code).toBe(0);
    expect(queued(allowed)).toHaveLength(1);
    const notListed = await instance('authorized_submit_users = "inline:{ somebody-else=yes }"');
    const refusedByAbsence = await sendmail(notListed, ["bob"]);
    expect(refusedByAbsence.code).toBe(77);
    expect(queued(notListed)).toEqual([]);
    const negated = await instance(`authorized_submit_users = "!inline:{ ${LOGIN}=yes }, static:anyone"`);
    const refused = await sendmail(negated, ["bob"]);
    expect(refused.code).toBe(77);
    expect(refused.stderr).toBe(`sendmail: fatal: User ${LOGIN}(${process.getuid?.() ?? 0}) is not allowed to submit mail\n`);
    expect(queued(negated)).toEqual([]);
  });

  test("a table in authorized_submit_users that cannot be read: exit 75, nothing queued", async () => {
    const inst = await instance('authorized_submit_users = "hash:/nonexistent/postern-submitters"');
    const r = await sendmail(inst, ["bob"]);
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/^sendmail: fatal: authorized_submit_users: hash:\/nonexistent\/postern-submitters: .+\n$/);
    expect(queued(inst)).toEqual([]);
  });

  test("a queue directory that does not exist: exit 69", async () => {
    const inst = await instance();
    rmSync(inst.queue, { recursive: true });
    const r = await sendmail(inst, ["bob"]);
    expect(r.code).toBe(69);
    expect(r.stderr).toContain(`cannot create a queue file in "${join(inst.queue, "maildrop")}": no such file or directory`);
  });
});

describe.skipIf(!existsSync("/usr/sbin/sendmail") || !existsSync("/usr/sbin/postconf"))("the same messages as Debian Postfix's sendmail", () => {
  // option errors need no queue and no daemon: a private main.cf is enough
  let postfixConfig: string;
  beforeAll(() => {
    postfixConfig = configDir();
    dirs.push(postfixConfig);
    writeFileSync(join(postfixConfig, "main.cf"), `queue_directory = ${postfixConfig}\ncompatibility_level = 3.6\nmaillog_file = /dev/stdout\n`);
  });

  /** stderr lines without repeats (glibc's getopt complaint comes twice from Postfix, which parses twice). */
  const lines = (text: string) => [...new Set(text.split("\n").filter(Boolean))];

  const cases = [["-z", "bob"], ["-t", "-bv", "bob"], ["-n", "bob"], ["-bz"], ["-Xz", "x"], ["-B", "x", "bob"], ["-qX"], ["-qR"], ["-o"], ["-oA"], ["-bp", "bob"], ["-bd", "bob"], ["-q", "-t"], ["-bv", "-N", "never", "bob"], ["-bv", "-R", "hdrs", "bob"], ["-XVab", "bob"]];
  for (const args of cases) {
    test(args.join(" "), async () => {
      const postfix = Bun.spawnSync(["/usr/sbin/sendmail", ...args], { env: { PATH: "/usr/bin:/bin", MAIL_CONFIG: postfixConfig }, stdin: new Blob(["Subject: x\n\n"]), stderr: "pipe", stdout: "pipe" });
      const ours = await sendmail(shared, args);
      expect(lines(ours.stderr)).toEqual(lines(postfix.stderr.toString()));
      // Postfix 3.7 exits 75 after any fatal error; postern exits with the usage code it intends
      expect(postfix.exitCode).toBe(75);
      expect(ours.code).toBe(64);
    });
  }
});

describe("configuration", () => {
  test("MAIL_CONFIG selects the configuration as -C does", async () => {
    const inst = await instance();
    const r = await run("sendmail", ["bob"], { stdin: "Subject: env\n\nb\n", env: { MAIL_CONFIG: inst.dir } });
    expect(r.code).toBe(0);
    expect(content(onlyMaildrop(inst))).toBe("Subject: env\n\nb\n");
  });

  test("undisclosed_recipients_header is added when the message has no To/Cc", async () => {
    const inst = await instance('undisclosed_recipients_header = "To: undisclosed-recipients:;"');
    expect((await sendmail(inst, ["bob"], "Subject: x\nBcc: bob\n\nb\n")).code).toBe(0);
    expect((await pickedUp(inst)).text).toContain("\nTo: undisclosed-recipients:;\n");
  });

  test("append_at_myorigin = no leaves unqualified addresses alone", async () => {
    const inst = await instance("append_at_myorigin = false");
    expect((await sendmail(inst, ["-f", "me", "bob"], "To: bob\n\nb\n")).code).toBe(0);
    const f = await pickedUp(inst);
    expect(f.sender).toBe("me");
    expect(addresses(f)).toEqual(["bob"]);
    expect(f.text).toContain("\nTo: bob\n");
  });
});

describe("sendmail -bd starts the mail system", () => {
  let inst: Instance;
  afterAll(async () => {
    if (inst) await run("postern", ["stop", "-c", inst.dir]);
  });

  test("-bd starts it; a submission is then picked up and delivered at once; -q asks the running queue manager", async () => {
    // discard: nothing leaves this machine
    // no SMTP listener: a test listens only where it says
    inst = await instance('default_transport = "discard"\n[services.smtp]\nenable = false');
    const r = await sendmail(inst, ["-bd"]);
    expect(r.code).toBe(0);
    await waitFor("the mail system to run", async () => (await run("postern", ["status", "-c", inst.dir])).code === 0, 10_000);
    expect((await sendmail(inst, ["bob"])).code).toBe(0);
    await waitFor("the delivery", () => /: to=<bob@origin\.example>, orig_to=<bob>, relay=none, .*status=sent/.test(readFileSync(inst.maillog, "utf8")), 10_000);
    expect(queued(inst)).toEqual([]);
    expect(readFileSync(inst.maillog, "utf8")).toMatch(/postfix\/pickup\[\d+\]: [0-9A-F]+: uid=\d+ from=</);
    expect((await sendmail(inst, ["-q"])).code).toBe(0);
    expect((await run("postern", ["stop", "-c", inst.dir])).code).toBe(0);
  });
});

describe("the mail system is down", () => {
  test("sendmail exits 0 with the file durably in maildrop/, and pickup takes it later", async () => {
    const inst = await instance();
    expect(existsSync(join(inst.queue, "pid", "master.pid"))).toBe(false);
    expect((await sendmail(inst, ["bob"])).code).toBe(0);
    const f = onlyMaildrop(inst);
    const g = await pickedUp(inst);
    // pickup sets the arrival time from the file's ctime (the kernel's coarse clock may lag sendmail's by a tick)
    expect(g.arrivalTime).toBeGreaterThanOrEqual(f.arrivalTime - 1000);
    expect(g.arrivalTime).toBeLessThanOrEqual(Date.now());
    const log = readFileSync(inst.maillog, "utf8");
    expect(log).toMatch(new RegExp(`postfix/pickup\\[\\d+\\]: ${g.id}: uid=${process.getuid?.() ?? 0} from=<${f.sender}>\\n`));
    expect(log).toMatch(new RegExp(`postfix/cleanup\\[\\d+\\]: ${g.id}: message-id=<\\d{14}\\.${g.id}@host\\.example\\.org>\\n`));
  });
});

describe("pickup", () => {
  test("the Received: header in Postfix's shape, the submitter recorded from the file's owner", async () => {
    const inst = await instance();
    expect((await sendmail(inst, ["-f", "me", "bob"], "Subject: x\n\nb\n")).code).toBe(0);
    const f = await pickedUp(inst);
    const uid = process.getuid?.() ?? 0;
    expect(f.text).toMatch(new RegExp(`^Received: by host\\.example\\.org \\(postern, from userid ${uid}\\)\\n\\tid ${f.id}; \\w{3}, [ \\d]\\d \\w{3} \\d{4} \\d\\d:\\d\\d:\\d\\d [+-]\\d{4}( \\(\\w+\\))?\\nSubject: x\\n`));
    expect(f.attributes.uid).toBe(String(uid));
    expect(f.recipients).toEqual([{ address: "bob@origin.example", original: "bob", orcpt: "rfc822;bob@origin.example" }]);
  });

  test("a corrupt file goes to corrupt/ with a warning", async () => {
    const inst = await instance();
    writeFileSync(join(inst.queue, "maildrop", "ABCDEF0123"), "not a queue file\n");
    const r = await run("postern", ["pickup", "--once", "-c", inst.dir]);
    expect(r.code).toBe(0);
    expect(readdirSync(join(inst.queue, "corrupt"))).toEqual(["ABCDEF0123"]);
    expect(queued(inst, "incoming")).toEqual([]);
    expect(readFileSync(inst.maillog, "utf8")).toContain("warning: ABCDEF0123: moving corrupt queue file maildrop/ABCDEF0123 to corrupt/");
  });

  test("a forged file with a line break in an address goes to corrupt/", async () => {
    const inst = await instance();
    const forged = `postern-queue 1\nT ${Date.now()}\nS evil%0ABcc:%20victim@example.com\nR bob\nM 0\n\nE\n`;
    writeFileSync(join(inst.queue, "maildrop", "ABCDEF0125"), forged);
    expect((await run("postern", ["pickup", "--once", "-c", inst.dir])).code).toBe(0);
    expect(readdirSync(join(inst.queue, "corrupt"))).toEqual(["ABCDEF0125"]);
    expect(queued(inst, "incoming")).toEqual([]);
    expect(readFileSync(inst.maillog, "utf8")).toContain("a line break or NUL in an envelope address");
  });

  test("a symbolic link in maildrop/ is removed, never followed", async () => {
    const inst = await instance();
    const target = join(inst.dir, "secret");
    writeFileSync(target, "postern-queue 1\n");
    symlinkSync(target, join(inst.queue, "maildrop", "ABCDEF0124"));
    expect((await run("postern", ["pickup", "--once", "-c", inst.dir])).code).toBe(0);
    expect(readdirSync(join(inst.queue, "maildrop"))).toEqual([]);
    expect(existsSync(target)).toBe(true);
    expect(queued(inst, "incoming")).toEqual([]);
  });

  test("too many Received: headers: the message is returned to the sender (bounce log, recipients finished)", async () => {
    const inst = await instance("hopcount_limit = 5");
    const received = Array.from({ length: 5 }, (_, i) => `Received: from hop${i}\n`).join("");
    expect((await sendmail(inst, ["-f", "me", "bob"], `${received}Subject: loop\n\nbody\n`)).code).toBe(0);
    const f = await pickedUp(inst);
    expect(f.recipients.every((r) => r.done)).toBe(true);
    expect(f.text).not.toContain("body");
    expect(readDeliveryLog(inst.queue, "bounce", f.id).map((e) => [e.recipient, e.status, e.action, e.reason])).toEqual([["bob@origin.example", "5.4.0", "failed", "too many hops"]]);
    expect(readFileSync(inst.maillog, "utf8")).toContain(`${f.id}: to=<bob@origin.example>, orig_to=<bob>, relay=none,`);
    // Postfix's delay fields: up to two decimals, all of the time before the queue manager
    expect(readFileSync(inst.maillog, "utf8")).toMatch(new RegExp(`${f.id}: to=<bob@origin\\.example>, orig_to=<bob>, relay=none, delay=(\\d+(\\.\\d{1,2})?), delays=\\1/0/0/0, dsn=5\\.4\\.0, status=bounced \\(too many hops\\)`));
  });
});

describe.skipIf(!isRoot)("a non-root user submits", () => {
  const name = `ptsm${process.pid % 100000}`;
  let user: { uid: number; gid: number };
  let inst: Instance;

  /** Runs a command as the test user, with the initial groups of that user. */
  async function asUser(argv: string[], stdin = ""): Promise<RunResult> {
    const proc = Bun.spawn(["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", ...argv], {
      env: cleanEnv({ USER: name, LOGNAME: name, HOME: "/" }),
      stdin: new Blob([stdin]),
      stdout: "pipe",
      stderr: "pipe",
      cwd: "/",
    });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { code, stdout, stderr };
  }
  const userSendmail = (i: Instance, args: string[], stdin = "Subject: from a user\n\nbody\n") => asUser([bin("sendmail"), "-C", i.dir, ...args], stdin);

  /** A queue the user can reach: the configuration readable, the log writable. */
  async function userInstance(extra = ""): Promise<Instance> {
    const i = await instance(extra);
    writeFileSync(i.maillog, "");
    chmodSync(i.maillog, 0o666);
    return i;
  }

  beforeAll(async () => {
    Bun.spawnSync(["userdel", name], { stderr: "ignore", stdout: "ignore" });
    const add = Bun.spawnSync(["useradd", "--no-create-home", "--shell", "/bin/sh", "--comment", "Test User,,,", name]);
    expect(add.exitCode).toBe(0);
    const pw = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith(`${name}:`))!.split(":");
    user = { uid: Number(pw[2]), gid: Number(pw[3]) };
    inst = await userInstance();
  });
  afterAll(() => {
    Bun.spawnSync(["userdel", name], { stderr: "ignore", stdout: "ignore" });
  });

  test("the file in maildrop/ belongs to the user, mode 0640; pickup records the user's uid and login", async () => {
    const i = await userInstance();
    const r = await userSendmail(i, ["bob"]);
    expect(r).toEqual({ code: 0, stdout: "", stderr: "" });
    const f = onlyMaildrop(i);
    expect(f.sender).toBe(name);
    const st = statSync(join(i.queue, "maildrop", f.id));
    expect(st.uid).toBe(user.uid);
    expect(st.mode & 0o777).toBe(0o640);
    const g = await pickedUp(i);
    expect(g.attributes).toMatchObject({ uid: String(user.uid), login: name });
    expect(g.sender).toBe(`${name}@origin.example`);
    // the full name comes from the GECOS field up to the first comma
    expect(g.text).toContain(`\nFrom: Test User <${name}@origin.example>\n`);
    expect(g.text).toContain(`(postern, from userid ${user.uid})`);
    expect(readFileSync(i.maillog, "utf8")).toMatch(new RegExp(`postfix/pickup\\[\\d+\\]: ${g.id}: uid=${user.uid} from=<${name}>\\n`));
  });

  test("the user cannot list maildrop/, nor read or remove another user's file there", async () => {
    expect((await sendmail(inst, ["-f", "root", "secret-recipient@example.com"])).code).toBe(0);
    const id = queued(inst)[0]!;
    const path = join(inst.queue, "maildrop", id);
    const ls = await asUser(["ls", join(inst.queue, "maildrop")]);
    expect(ls.code).not.toBe(0);
    expect(ls.stderr).toContain("Permission denied");
    const cat = await asUser(["cat", path]);
    expect(cat.code).not.toBe(0);
    expect(cat.stdout).toBe("");
    const rm = await asUser(["rm", "-f", path]);
    expect(rm.code).not.toBe(0);
    expect(existsSync(path)).toBe(true);
    // neither can they see it with sendmail -bp
    const bp = await userSendmail(inst, ["-bp"]);
    expect(bp.code).not.toBe(0);
    expect(bp.stdout).not.toContain(id);
    rmSync(path);
  });

  test("the recorded uid cannot be forged by the file's content", async () => {
    const i = await userInstance();
    const forged = [
      "postern-queue 1",
      `T ${Date.now()}`,
      "S root",
      "A uid 0",
      "A login root",
      "A client_address 192.0.2.66",
      "A origin smtpd",
      "R bob",
      "M 19",
      "Subject: forged\n\nx\n",
      "E",
      "",
    ].join("\n");
    // a user can put any file into maildrop/ under a queue-ID name
    const w = await asUser(["sh", "-c", `umask 027; cat > ${join(i.queue, "maildrop", "ABCDEF9999")}`], forged);
    expect(w.code).toBe(0);
    const g = await pickedUp(i);
    expect(g.attributes.uid).toBe(String(user.uid));
    expect(g.attributes.login).toBe(name);
    expect(g.attributes.client_address).toBeUndefined();
    expect(g.attributes.origin).toBe("sendmail");
    expect(g.text).toContain(`(postern, from userid ${user.uid})`);
  });

  test("a maildrop/ the user cannot write: exit 75 (try again later), nothing left behind", async () => {
    const i = await userInstance();
    chmodSync(join(i.queue, "maildrop"), 0o2755);
    const r = await userSendmail(i, ["bob"]);
    expect(r.code).toBe(75);
    expect(r.stderr).toBe(`sendmail: fatal: ${name}(${user.uid}): cannot create a queue file in "${join(i.queue, "maildrop")}": permission denied\n`);
    expect(readdirSync(join(i.queue, "maildrop"))).toEqual([]);
  });

  test("a uid without a login name needs -f: exit 71 (EX_OSERR) without it", async () => {
    const i = await userInstance();
    const argv = ["setpriv", "--reuid=54321", "--regid=54321", "--clear-groups", bin("sendmail"), "-C", i.dir];
    const run1 = Bun.spawnSync([...argv, "bob"], { env: cleanEnv(), stdin: new Blob(["Subject: x\n\nb\n"]) });
    expect(run1.exitCode).toBe(71);
    expect(run1.stderr.toString()).toBe("sendmail: fatal: no login name found for user ID 54321\n");
    const run2 = Bun.spawnSync([...argv, "-f", "nobody-here", "bob"], { env: cleanEnv(), stdin: new Blob(["Subject: x\n\nb\n"]) });
    expect(run2.exitCode).toBe(0);
    const g = await pickedUp(i);
    expect(g.attributes.uid).toBe("54321");
    expect(g.attributes.login).toBeUndefined();
  });

  test("authorized_submit_users can refuse the user but not others", async () => {
    const i = await userInstance(`authorized_submit_users = "!${name}, static:anyone"`);
    const r = await userSendmail(i, ["bob"]);
    expect(r.code).toBe(77);
    expect(r.stderr).toBe(`sendmail: fatal: User ${name}(${user.uid}) is not allowed to submit mail\n`);
    expect((await sendmail(i, ["bob"])).code).toBe(0);
  });
});
