/**
 * AUTH through a real Dovecot (smtpd_sasl_type = dovecot): the test starts
 * Debian's dovecot with a private configuration (no mail protocols, a
 * passwd-file user, the auth socket in a private directory), points
 * smtpd_sasl_path at that socket, and stops Dovecot by its PID afterwards.
 * A reload leaves smtpd with one connection to the auth server, not one per
 * configuration it has had.
 *
 * Dovecot must be installed and the tests run as root (Dovecot's master
 * needs it); as root in CI the test installs dovecot-core itself when
 * .ci/run did not. Otherwise the test is skipped.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { tempDir } from "../../helpers/run.ts";
import { HOST, RawSmtp, SmtpdSystem, isRoot, swaks, waitFor } from "../../helpers/smtpd-system.ts";

const DOVECOT = "/usr/sbin/dovecot";

function ensureDovecot(): boolean {
  if (existsSync(DOVECOT)) return true;
  if (!isRoot || !process.env.CI) return false;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" } as Record<string, string>;
  Bun.spawnSync(["apt-get", "update", "-qq"], { env, stdout: "ignore", stderr: "ignore" });
  const r = Bun.spawnSync(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "dovecot-core"], { env, stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`apt-get install dovecot-core failed: ${r.stderr.toString()}`);
  return existsSync(DOVECOT);
}

// Dovecot's master process needs root to start
const available = isRoot && ensureDovecot();
if (!available) console.warn(`dovecot.test: ${isRoot ? "/usr/sbin/dovecot is missing (apt-get install dovecot-core)" : "Dovecot needs root"}; skipping the Dovecot AUTH tests`);

describe.skipIf(!available)("AUTH through Dovecot", () => {
  let dir: string;
  let dovecot: Subprocess | undefined;
  let sys: SmtpdSystem;
  const socket = () => join(dir, "auth");

  beforeAll(async () => {
    dir = tempDir("postern-dovecot-");
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, "run"));
    mkdirSync(join(dir, "state"));
    writeFileSync(join(dir, "users"), "alice:{PLAIN}wonderland::::::\n");
    writeFileSync(
      join(dir, "dovecot.conf"),
      `base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
instance_name = postern-test-${process.pid}
protocols =
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# the bad password's 535 without Dovecot's 2 s; its anvil penalty still delays the next AUTH (about 4 s)
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/users
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=${dir}
}
service auth {
  unix_listener ${dir}/auth {
    mode = 0666
  }
}
service anvil {
  chroot =
}
`,
    );
    dovecot = Bun.spawn([DOVECOT, "-F", "-c", join(dir, "dovecot.conf")], { stdout: "ignore", stderr: "pipe", stdin: "ignore" });
    await waitFor("Dovecot's auth socket", () => existsSync(socket()), 15_000);
    sys = new SmtpdSystem({ smtpd_sasl_auth_enable: "yes", smtpd_sasl_type: "dovecot", smtpd_sasl_path: socket() });
    await sys.start();
  });

  afterAll(async () => {
    await sys?.cleanup();
    if (dovecot) {
      dovecot.kill("SIGTERM");
      await dovecot.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test("EHLO offers Dovecot's mechanisms; PLAIN and LOGIN succeed; a bad password is 535 5.7.8", async () => {
    const c = await RawSmtp.connect(sys.port);
    await c.reply();
    expect(await c.cmd("EHLO client.example")).toContain("250-AUTH PLAIN LOGIN\r\n");
    expect(await c.cmd(`AUTH PLAIN ${Buffer.from("\0alice\0wrong").toString("base64")}`, 20_000)).toBe("535 5.7.8 Error: authentication failed: authentication failure\r\n");
    expect(await c.cmd("AUTH LOGIN")).toBe("334 VXNlcm5hbWU6\r\n");
    expect(await c.cmd(Buffer.from("alice").toString("base64"))).toBe("334 UGFzc3dvcmQ6\r\n");
    expect(await c.cmd(Buffer.from("wonderland").toString("base64"))).toBe("235 2.7.0 Authentication successful\r\n");
    expect(await c.cmd("MAIL FROM:<alice@example.org>")).toBe("250 2.1.0 Ok\r\n");
    expect(await c.cmd("RCPT TO:<friend@remote.example>")).toBe("250 2.1.5 Ok\r\n");
    await c.quit();
  });

  test("swaks AUTH PLAIN: the message records Dovecot's user name", async () => {
    const r = await swaks(["--server", `127.0.0.1:${sys.port}`, "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "wonderland", "--from", "alice@example.org", "--to", `root@${HOST}`, "--h-Subject", "via dovecot"]);
    expect(r.code).toBe(0);
    const m = await sys.message("via dovecot");
    expect(m.attributes).toMatchObject({ sasl_method: "PLAIN", sasl_username: "alice" });
    await sys.waitForLog(new RegExp(`${m.id}: client=localhost\\[127\\.0\\.0\\.1\\], sasl_method=PLAIN, sasl_username=alice`));
  });

  test("a reload closes the replaced configuration's connection to the auth server", async () => {
    /** smtpd's open sockets: its listener and log, and its connections to Dovecot once sessions have ended. */
    const sockets = () => {
      const pid = sys.roles().get("smtpd")!;
      return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:");
        } catch {
          return false;
        }
      }).length;
    };
    // each session's EHLO makes its configuration's client connect to Dovecot
    const session = async () => {
      const c = await RawSmtp.connect(sys.port);
      await c.reply();
      const ehlo = await c.cmd("EHLO client.example");
      expect(ehlo).toContain("250-AUTH PLAIN LOGIN\r\n");
      await c.quit();
    };
    let reloads = 0;
    const reload = async () => {
      // no reverse lookup: its DNS socket would come and go in the counts
      sys.writeConfig({ smtpd_peername_lookup: "no", smtpd_banner: `$myhostname ESMTP reload ${++reloads}` });
      const count = () => sys.log().match(/smtpd\[\d+\]: reload: configuration re-read/g)?.length ?? 0;
      const before = count();
      expect((await sys.postern(["reload"])).code).toBe(0);
      await waitFor("smtpd to re-read its configuration", () => count() > before);
    };
    await reload();
    await session();
    const baseline = sockets();
    for (let i = 0; i < 3; i++) {
      await reload();
      await session();
    }
    await waitFor("the old configurations' connections to close", () => sockets() === baseline, 10_000).catch(() => undefined);
    expect(sockets()).toBe(baseline);
  }, 60_000);
});
