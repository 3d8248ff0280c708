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
 * is not. openssl writes the key and the certificate to a pipe, never to a
 * file: postern creates each file itself with O_CREAT|O_EXCL|O_NOFOLLOW and
 * its final mode (the key 0600 from its first byte, whatever the umask; an
 * existing file or symbolic link of that name is never written through),
 * checks the new file with fstat, writes it whole and fsyncs it. A key
 * without its certificate is removed again.
 *
 * Run by root or the owner of an unprivileged installation; trusts its
 * configuration directory, distrusts nothing else it reads (openssl's
 * output is checked to be one key and one certificate in PEM).
 */
import { closeSync, fchmodSync, fstatSync, fsyncSync, openSync, unlinkSync, constants as fsc } from "node:fs";
import { join } from "node:path";
import { writeFully } from "../util/durable-file.ts";
import { getopt, GetoptError } from "../util/getopt.ts";
import { ExitError, EX_CANTCREAT, EX_UNAVAILABLE, EX_USAGE } from "../util/sysexits.ts";
import { writeStdout } from "../util/stdio.ts";
import { loadConfig } from "../global/config/config.ts";

const USAGE = "usage: postern tls new-server-cert [-c config_dir] [-q] [hostname]";

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

/** The PEM blocks openssl printed, by label ("PRIVATE KEY", "CERTIFICATE"). */
function pemBlocks(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----\n[A-Za-z0-9+/=\n]+-----END \1-----\n/g)) {
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[0]]);
  }
  return out;
}

/** Creates `path` (never an existing file or link) with exactly `mode`, checked with fstat, and writes `text` durably. */
export function createFile(path: string, mode: number, text: string): void {
  let fd: number;
  try {
    fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, mode & 0o600);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ExitError(EX_CANTCREAT, e.code === "EEXIST" ? `"${path}" exists already; try again in a second` : `cannot create "${path}": ${e.message}`);
  }
  try {
    // the umask only ever takes bits away; a file that is not ours and new is an error
    const st = fstatSync(fd);
    if (!st.isFile() || st.nlink !== 1 || st.uid !== process.geteuid?.() || (st.mode & 0o077) !== 0) {
      throw new ExitError(EX_CANTCREAT, `"${path}" is not the new private file it should be (mode ${(st.mode & 0o7777).toString(8)}, uid ${st.uid})`);
    }
    writeFully(fd, text);
    if (mode !== (st.mode & 0o777)) fchmodSync(fd, mode);
    fsyncSync(fd);
  } catch (err) {
    try {
      unlinkSync(path);
    } catch {}
    if (err instanceof ExitError) throw err;
    throw new ExitError(EX_CANTCREAT, `cannot write "${path}": ${(err as Error).message}`);
  } finally {
    closeSync(fd);
  }
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
  const r = Bun.spawnSync(
    [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650", "-keyout", "-", "-out", "-", "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`],
    { stdout: "pipe", stderr: "pipe", env: { PATH: "/usr/bin:/bin", OPENSSL_CONF: "/dev/null" }, stdin: "ignore" },
  );
  if (r.exitCode !== 0) throw new ExitError(EX_CANTCREAT, `openssl failed: ${r.stderr.toString().trim().split("\n").slice(-1)[0] ?? `exit ${r.exitCode}`}`);
  const blocks = pemBlocks(r.stdout.toString("latin1"));
  const keys = [...(blocks.get("PRIVATE KEY") ?? []), ...(blocks.get("RSA PRIVATE KEY") ?? [])];
  const certs = blocks.get("CERTIFICATE") ?? [];
  if (keys.length !== 1 || certs.length !== 1) throw new ExitError(EX_CANTCREAT, "openssl printed no key and certificate");
  createFile(key, 0o600, keys[0]!);
  try {
    createFile(cert, 0o644, certs[0]!);
  } catch (err) {
    unlinkSync(key);
    throw err;
  }
  writeStdout(quiet ? `${key}\n${cert}\n` : `smtpd_tls_cert_file = "${cert}"\nsmtpd_tls_key_file = "${key}"\n`);
  return 0;
}
