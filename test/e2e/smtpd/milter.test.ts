/**
 * smtpd_milters end to end: `postern start` with milters, mail sent over
 * SMTP by swaks.
 *
 * - A scripted milter (test/helpers/milter-server.ts) that quarantines and
 *   adds a header: the message lands in hold/ with the header and Postfix's
 *   milter-hold log line; a service whose [services.NAME] override clears
 *   smtpd_milters never reaches the milter.
 * - Real OpenDKIM (Debian's opendkim), started by the test with a private
 *   configuration (KeyFile, so signing needs no DNS; Socket inet on
 *   127.0.0.1; Background no), stopped by its PID: relayed mail reaches the
 *   next hop signed, and the signature verifies with python3-dkim against
 *   the public key opendkim-genkey wrote.
 *
 * In CI a missing opendkim is a failure that names the package.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { removeDir, tempDir } from "../../helpers/run.ts";
import { HOST, SmtpdSystem, swaks, waitFor, freePort } from "../../helpers/smtpd-system.ts";
import { R, ScriptedMilter } from "../../helpers/milter-server.ts";
import { relayToSink, type RelayToSink } from "../../helpers/relay-sink.ts";
import { PYTHON } from "../../helpers/python-sink.ts";

const OPENDKIM = "/usr/sbin/opendkim";
const GENKEY = "/usr/sbin/opendkim-genkey";

describe("a scripted milter in the running system", () => {
  let sys: SmtpdSystem;
  let m: ScriptedMilter;

  beforeAll(async () => {
    m = await new ScriptedMilter({ script: (e) => (e.code === "E" ? [R.addheader("X-Milter", "seen"), R.quarantine("held by the test milter"), R.continue()] : undefined) }).start();
    sys = new SmtpdSystem({ smtpd_milters: m.address }, { smtp: {}, nomilter: { smtpd_milters: "" } });
    await sys.start();
  }, 60_000);
  afterAll(async () => {
    await sys?.cleanup();
    await m?.stop();
  });

  test("quarantine: the message goes to hold/ with the milter's header and Postfix's log line", async () => {
    const r = await swaks(["--server", `127.0.0.1:${sys.ports.smtp}`, "--helo", "client.example", "--from", "alice@example.org", "--to", `root@${HOST}`, "--h-Subject", "milter hold"]);
    expect(r.code).toBe(0);
    const id = /250 2\.0\.0 Ok: queued as ([0-9A-F]+)/.exec(r.out)?.[1];
    expect(id).toBeDefined();
    const msg = await sys.message("milter hold");
    expect(sys.queueIds("hold")).toContain(id!);
    expect(msg.text).toContain("\nX-Milter: seen\n");
    await sys.waitForLog(new RegExp(`postfix/smtpd\\[\\d+\\]: ${id}: milter-hold: END-OF-MESSAGE from localhost\\[127\\.0\\.0\\.1\\]: held by the test milter; from=<alice@example\\.org> to=<root@${HOST.replace(/\./g, "\\.")}> proto=ESMTP helo=<client\\.example>`));
    const c = m.of("C").at(-1)!;
    expect(c.macros["{daemon_name}"]).toBe(HOST);
    expect(c.macros["{daemon_addr}"]).toBe("127.0.0.1");
  });

  test("a service whose override clears smtpd_milters does not reach the milter", async () => {
    const before = m.connections;
    const r = await swaks(["--server", `127.0.0.1:${sys.ports.nomilter}`, "--helo", "client.example", "--from", "alice@example.org", "--to", `root@${HOST}`, "--h-Subject", "no milter here"]);
    expect(r.code).toBe(0);
    const msg = await sys.message("no milter here");
    expect(msg.text).not.toContain("X-Milter");
    expect(sys.queueIds("hold")).not.toContain(msg.id);
    expect(m.connections).toBe(before);
  });
});

const haveOpendkim = existsSync(OPENDKIM) && existsSync(GENKEY);
if (!haveOpendkim && process.env.CI) throw new Error("opendkim is missing: apt-get install opendkim opendkim-tools");

describe.skipIf(!haveOpendkim)("OpenDKIM as a milter", () => {
  let dir: string;
  let opendkim: Subprocess | undefined;
  let relay: RelayToSink;

  beforeAll(async () => {
    dir = tempDir("postern-opendkim-");
    const gen = Bun.spawnSync([GENKEY, "-D", dir, "-d", "example.org", "-s", "test"], { stdout: "pipe", stderr: "pipe" });
    if (gen.exitCode !== 0) throw new Error(`opendkim-genkey: ${gen.stderr.toString()}`);
    const port = freePort();
    writeFileSync(
      join(dir, "opendkim.conf"),
      [
        "Syslog no",
        "Background no",
        "Mode s",
        "Domain example.org",
        "Selector test",
        `KeyFile ${dir}/test.private`,
        `Socket inet:${port}@127.0.0.1`,
        `PidFile ${dir}/opendkim.pid`,
        "InternalHosts 127.0.0.1",
        "RequireSafeKeys no",
        "Canonicalization relaxed/simple",
        "",
      ].join("\n"),
    );
    opendkim = Bun.spawn([OPENDKIM, "-f", "-x", join(dir, "opendkim.conf")], { stdout: "ignore", stderr: "pipe" });
    await waitFor("opendkim listening", async () => {
      try {
        const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
        s.end();
        return true;
      } catch {
        return false;
      }
    });
    // mynetworks: the test client may relay; the next hop is the Python sink
    relay = await relayToSink({ smtpd_milters: `inet:127.0.0.1:${port}`, mynetworks: "127.0.0.0/8", milter_default_action: "reject" });
  }, 60_000);

  afterAll(async () => {
    await relay?.stop();
    if (opendkim) {
      opendkim.kill("SIGTERM");
      await opendkim.exited;
    }
    if (dir) removeDir(dir);
  });

  test("relayed mail is signed and the signature verifies", async () => {
    const r = await swaks([
      "--server",
      `127.0.0.1:${relay.sys.port}`,
      "--helo",
      "client.example",
      "--from",
      "alice@example.org",
      "--to",
      "bob@example.net",
      "--h-From",
      "Alice <alice@example.org>",
      "--h-Subject",
      "dkim signed",
      "--body",
      "A body to sign.\nSecond line.\n",
    ]);
    expect(r.code).toBe(0);
    const msg = await relay.atSink("dkim signed");
    expect(msg.data).toMatch(/DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/simple; d=example\.org;/);
    const raw = join(dir, "message.eml");
    writeFileSync(raw, msg.data);
    const txt = readFileSync(join(dir, "test.txt"), "utf8");
    const record = [...txt.matchAll(/"([^"]*)"/g)].map((x) => x[1]).join("");
    const script = `
import dkim, sys
data = open(sys.argv[1], "rb").read().replace(b"\\r\\n", b"\\n").replace(b"\\n", b"\\r\\n")
record = sys.argv[2].encode()
def dnsfunc(name, timeout=5):
    return record if name == b"test._domainkey.example.org." else None
ok = dkim.verify(data, dnsfunc=dnsfunc)
print("verified" if ok else "failed")
tampered = data.replace(b"A body to sign.", b"A body to sing.")
print("tampered-verified" if dkim.verify(tampered, dnsfunc=dnsfunc) else "tampered-failed")
`;
    const proc = Bun.spawnSync([PYTHON, "-c", script, raw, record], { stdout: "pipe", stderr: "pipe" });
    expect(proc.stderr.toString()).toBe("");
    expect(proc.stdout.toString().trim().split("\n")).toEqual(["verified", "tampered-failed"]);
  });
});
