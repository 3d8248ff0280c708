/**
 * A real Dovecot (Debian's dovecot-core and dovecot-lmtpd) started by a
 * test, as root, with everything private to a temporary directory: its
 * base_dir, state_dir and log, a configuration file written here, virtual
 * users in a passwd-file (passdb and userdb), mail in Maildirs under a
 * directory the vmail user owns. It listens only on unix sockets in that
 * directory: `lmtp` (for virtual_transport = lmtp:unix:...) and
 * `auth-userdb` (for dovecot-lda -d). Never the system's Dovecot; stopped
 * by its own PID.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PasswdEntry } from "../../src/util/passwd.ts";
import { waitFor } from "./wait.ts";

export const DOVECOT = "/usr/sbin/dovecot";
export const DOVECOT_LDA = "/usr/lib/dovecot/dovecot-lda";
const LMTPD = "/usr/lib/dovecot/lmtp";

/** Why Dovecot cannot run here, or undefined. In CI a missing program is a failure naming the package. */
export function dovecotMissing(): string | undefined {
  const missing = [
    [DOVECOT, "dovecot-core"],
    [DOVECOT_LDA, "dovecot-core"],
    [LMTPD, "dovecot-lmtpd"],
  ].filter(([path]) => !existsSync(path!));
  if (missing.length === 0) return undefined;
  const why = missing.map(([path, pkg]) => `${path} is missing (Debian package ${pkg})`).join("; ");
  if (process.env.CI === "true") throw new Error(why);
  return why;
}

export interface Dovecot {
  dir: string;
  config: string;
  /** The LMTP server's socket. */
  lmtpSocket: string;
  /** Where `user@domain`'s Maildir is. */
  maildir(user: string, domain: string): string;
  log(): string;
  stop(): Promise<void>;
}

/** Starts Dovecot for `users` (addresses), whose mail is stored as `vmail`. */
export async function startDovecot(vmail: PasswdEntry, users: string[]): Promise<Dovecot> {
  const dir = mkdtempSync(join(tmpdir(), "postern-dovecot-"));
  // the queue manager (mail_owner) reaches the LMTP socket, the vmail user the auth-userdb socket
  chmodSync(dir, 0o755);
  const vbase = join(dir, "vmail");
  mkdirSync(vbase, { mode: 0o700 });
  chownSync(vbase, vmail.uid, vmail.gid);
  const home = (address: string) => {
    const [user, domain] = address.toLowerCase().split("@");
    return join(vbase, domain!, user!);
  };
  const passwd = join(dir, "users");
  writeFileSync(passwd, users.map((u) => `${u.toLowerCase()}:{PLAIN}secret:${vmail.uid}:${vmail.gid}::${home(u)}::\n`).join(""), { mode: 0o644 });
  const logPath = join(dir, "dovecot.log");
  const ldaLog = join(dir, "lda.log");
  writeFileSync(ldaLog, "", { mode: 0o600 });
  chownSync(ldaLog, vmail.uid, vmail.gid);
  const config = join(dir, "dovecot.conf");
  writeFileSync(
    config,
    `base_dir = ${join(dir, "run")}
state_dir = ${join(dir, "state")}
log_path = ${logPath}
instance_name = postern-test-${process.pid}
protocols = lmtp
listen = 127.0.0.1
ssl = no
first_valid_uid = ${vmail.uid}
last_valid_uid = ${vmail.uid}
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu ${passwd}
}
userdb {
  driver = passwd-file
  args = username_format=%Lu ${passwd}
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
protocol lda {
  # dovecot-lda runs as the vmail user: its own log file, which that user owns
  log_path = ${ldaLog}
}
service auth {
  unix_listener auth-userdb {
    mode = 0600
    user = ${vmail.name}
  }
}
`,
    { mode: 0o644 },
  );
  const proc = Bun.spawn([DOVECOT, "-F", "-c", config], { stdin: "ignore", stdout: "ignore", stderr: "pipe", env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } });
  const stderr = { text: "" };
  void (async () => {
    // kept for the error message only, and bounded
    for await (const chunk of proc.stderr) if (stderr.text.length < 16_384) stderr.text += Buffer.from(chunk).toString("utf8").slice(0, 4096);
  })();
  const readLog = () => {
    try {
      return readFileSync(logPath, "utf8") + readFileSync(ldaLog, "utf8");
    } catch {
      return "";
    }
  };
  const lmtpSocket = join(dir, "run", "lmtp");
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill("SIGTERM");
      const killer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await proc.exited;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor("Dovecot's LMTP socket", () => {
      if (proc.exitCode !== null) throw new Error(`dovecot exited with status ${proc.exitCode}: ${readLog()}${stderr.text}`);
      return existsSync(lmtpSocket) && existsSync(join(dir, "run", "auth-userdb")) && readLog().includes("starting up");
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    dir,
    config,
    lmtpSocket,
    maildir: (user, domain) => join(home(`${user}@${domain}`), "Maildir"),
    log: readLog,
    stop,
  };
}
