/**
 * `postern tls new-server-cert` (issue 9, item 18): the private key is
 * created mode 0600 from its first byte, whatever the caller's umask, with
 * O_EXCL and O_NOFOLLOW, so it is never readable by others for a moment and
 * never written through a file or link that was there before. Checked with
 * strace (every creation of the key file), with dangling symbolic links
 * planted at the names the command will use, and by the result: a key and
 * a certificate that belong together.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { lstatSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bin, cleanEnv, removeDir, tempDir } from "../helpers/run.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) removeDir(d);
});

function configDir(): string {
  const dir = tempDir("postern-tls-cert-");
  dirs.push(dir);
  writeFileSync(join(dir, "postern.toml"), `myhostname = "mx.example.test"\n`);
  return dir;
}

/** Runs `postern tls new-server-cert -c DIR -q` under `umask`, optionally wrapped (strace). */
async function newServerCert(dir: string, umask: string, wrap: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(["sh", "-c", `umask ${umask}; exec "$@"`, "sh", ...wrap, bin("postern"), "tls", "new-server-cert", "-c", dir, "-q"], {
    env: cleanEnv(),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

const openssl = (args: string[], stdin?: string) => {
  const r = Bun.spawnSync(["openssl", ...args], { stdout: "pipe", stderr: "pipe", stdin: stdin === undefined ? "ignore" : Buffer.from(stdin), env: { PATH: "/usr/bin:/bin", OPENSSL_CONF: "/dev/null" } });
  return { code: r.exitCode, out: r.stdout.toString() };
};

describe.skipIf(!Bun.which("openssl"))("tls new-server-cert", () => {
  test("under umask 000 the key is 0600 and the certificate 0644; they belong together", async () => {
    const dir = configDir();
    const r = await newServerCert(dir, "000");
    expect(r).toMatchObject({ code: 0, stderr: "" });
    const [key, cert] = r.stdout.trim().split("\n") as [string, string];
    expect(statSync(key).mode & 0o7777).toBe(0o600);
    expect(statSync(cert).mode & 0o7777).toBe(0o644);
    expect(openssl(["pkey", "-in", key, "-check", "-noout"]).code).toBe(0);
    expect(openssl(["x509", "-in", cert, "-noout", "-subject"]).out).toContain("CN = mx.example.test");
    expect(openssl(["x509", "-in", cert, "-noout", "-pubkey"]).out).toBe(openssl(["pkey", "-in", key, "-pubout"]).out);
    expect(readdirSync(dir).sort()).toEqual([cert.slice(dir.length + 1), "postern.toml", key.slice(dir.length + 1)].sort());
  }, 30_000);

  test.skipIf(!Bun.which("strace"))("the key file is created with O_EXCL and mode 0600 and never chmod-ed (strace)", async () => {
    const dir = configDir();
    const trace = join(dir, "..", `${dir.split("/").pop()}.strace`);
    dirs.push(trace);
    const r = await newServerCert(dir, "022", ["strace", "-f", "-qq", "-o", trace, "-e", "trace=open,openat,creat,chmod,fchmodat,rename,renameat,renameat2,link,linkat"]);
    expect(r.code).toBe(0);
    const key = r.stdout.trim().split("\n")[0]!;
    const lines = readFileSync(trace, "utf8").split("\n").filter((l) => l.includes("smtpd-key-"));
    expect(lines.length).toBeGreaterThan(0);
    // each creation: exclusive, no link followed, mode 0600; nothing chmods, renames or links it into place
    for (const l of lines) {
      expect(l).toMatch(/open(at)?\(.*O_CREAT/);
      expect(l).toMatch(/O_EXCL/);
      expect(l).toMatch(/O_NOFOLLOW/);
      expect(l).toMatch(/, 0600\) = \d+$/);
    }
    expect(statSync(key).mode & 0o7777).toBe(0o600);
  }, 30_000);

  test("an existing file or dangling symbolic link of the new name is never written through", async () => {
    const dir = configDir();
    const victims = tempDir("postern-tls-victim-");
    dirs.push(victims);
    // the names of the next ten seconds, each a link to a file that does not exist yet
    const now = Date.now();
    for (let s = 0; s < 10; s++) {
      const ts = stamp(new Date(now + s * 1000));
      symlinkSync(join(victims, `key-${ts}`), join(dir, `smtpd-key-${ts}.pem`));
      symlinkSync(join(victims, `cert-${ts}`), join(dir, `smtpd-cert-${ts}.pem`));
    }
    const r = await newServerCert(dir, "022");
    expect(r.code).toBe(73);
    expect(r.stderr).toMatch(/fatal: ".*smtpd-key-\d{14}\.pem" exists already; try again in a second\n$/);
    expect(readdirSync(victims)).toEqual([]);
    for (const name of readdirSync(dir)) if (name !== "postern.toml") expect(lstatSync(join(dir, name)).isSymbolicLink()).toBe(true);
  }, 30_000);
});
