/**
 * `postern tls new-server-cert [-c config_dir] [-q] [name]`, as Postfix's
 * `postfix tls new-server-cert`: a new 2048-bit RSA key and a self-signed
 * certificate for $myhostname (or the name given), valid ten years, for a
 * quick start with STARTTLS. The files go to $config_directory as
 * smtpd-key-DATE.pem (mode 0600) and smtpd-cert-DATE.pem, never
 * overwriting; the command prints the two parameter lines that use them
 * (-q: only the file names).
 *
 * Uses the openssl command when it is installed, and says so clearly when it
 * is not. Run by root or the owner of an unprivileged installation.
 */
import { chmodSync, existsSync } from "node:fs";
import { join } from "node:path";
import { getopt, GetoptError } from "../util/getopt.ts";
import { ExitError, EX_CANTCREAT, EX_UNAVAILABLE, EX_USAGE } from "../util/sysexits.ts";
import { writeStdout } from "../util/stdio.ts";
import { loadConfig } from "../global/config/config.ts";

const USAGE = "usage: postern tls new-server-cert [-c config_dir] [-q] [hostname]";

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

export async function main(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== "new-server-cert") throw new ExitError(EX_USAGE, sub === undefined ? USAGE : `unknown tls command "${sub}"; ${USAGE}`);
  let parsed;
  try {
    parsed = getopt(rest, "c:q");
  } catch (err) {
    if (err instanceof GetoptError) throw new ExitError(EX_USAGE, `${err.message}; ${USAGE}`);
    throw err;
  }
  if (parsed.operands.length > 1) throw new ExitError(EX_USAGE, USAGE);
  const config = loadConfig(parsed.options.find(([o]) => o === "c")?.[1]);
  const quiet = parsed.options.some(([o]) => o === "q");
  const name = parsed.operands[0] ?? config.str("myhostname");
  if (!/^[A-Za-z0-9.-]{1,253}$/.test(name)) throw new ExitError(EX_USAGE, `invalid host name "${name}"`);
  const openssl = Bun.which("openssl");
  if (!openssl) throw new ExitError(EX_UNAVAILABLE, 'the openssl command is not installed (Debian: apt-get install openssl); make a key and certificate elsewhere and set smtpd_tls_cert_file and smtpd_tls_key_file');

  const dir = config.str("config_directory");
  const ts = stamp(new Date());
  const key = join(dir, `smtpd-key-${ts}.pem`);
  const cert = join(dir, `smtpd-cert-${ts}.pem`);
  if (existsSync(key) || existsSync(cert)) throw new ExitError(EX_CANTCREAT, `"${key}" or "${cert}" exists already; try again in a second`);
  const r = Bun.spawnSync(
    [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650", "-keyout", key, "-out", cert, "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`],
    { stdout: "pipe", stderr: "pipe", env: { PATH: "/usr/bin:/bin", OPENSSL_CONF: "/dev/null" }, stdin: "ignore" },
  );
  if (r.exitCode !== 0) throw new ExitError(EX_CANTCREAT, `openssl failed: ${r.stderr.toString().trim().split("\n").slice(-1)[0] ?? `exit ${r.exitCode}`}`);
  chmodSync(key, 0o600);
  chmodSync(cert, 0o644);
  writeStdout(quiet ? `${key}\n${cert}\n` : `smtpd_tls_cert_file = "${cert}"\nsmtpd_tls_key_file = "${key}"\n`);
  return 0;
}
