/**
 * A private OpenLDAP server for tests: slapd (Debian's `slapd` package) with
 * a slapd.conf and an mdb database in a temporary directory, loaded with
 * slapadd before it starts, listening on a 127.0.0.1 port and on an ldapi://
 * socket in that directory, optionally with a self-signed certificate for
 * StartTLS and an ldaps:// port. Stopped (and restarted, for fault tests) by its own PID. Runs in
 * the test process as whoever runs the tests; a missing slapd is a skip
 * locally and a failure naming the package in CI (CI=true).
 *
 * The suffix is dc=example,dc=com; the root DN is cn=admin,dc=example,dc=com
 * with the password "secret". Anonymous users may only bind; authenticated
 * ones may read.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePort } from "./ports.ts";
import { removeDir, tempDir } from "./run.ts";
import { waitFor } from "./wait.ts";

export const SLAPD = "/usr/sbin/slapd";
const SLAPADD = "/usr/sbin/slapadd";
export const SUFFIX = "dc=example,dc=com";
export const ROOT_DN = `cn=admin,${SUFFIX}`;
export const ROOT_PW = "secret";

/** Whether slapd can run here; in CI its absence throws, naming the package. */
export function haveSlapd(): boolean {
  if (existsSync(SLAPD) && existsSync(SLAPADD)) return true;
  if (process.env.CI === "true") throw new Error("slapd is missing: install the Debian packages slapd and ldap-utils");
  return false;
}

export interface Slapd {
  readonly dir: string;
  readonly port: number;
  /** ldap://127.0.0.1:PORT */
  readonly url: string;
  /** ldapi://%2F...%2Fldapi */
  readonly ldapiUrl: string;
  /** ldaps://localhost:PORT when started with tls. */
  readonly ldapsUrl: string | undefined;
  /** The CA (self-signed certificate) file when started with tls. */
  readonly caFile: string | undefined;
  get pid(): number | undefined;
  /** Stops the server (SIGTERM, then waits for it to exit). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
}

function makeCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  const r = Bun.spawnSync(
    ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
    { stdout: "ignore", stderr: "pipe" },
  );
  if (r.exitCode !== 0) throw new Error(`openssl req failed: ${r.stderr.toString()}`);
  return { cert, key };
}

/** Starts slapd with `ldif` loaded (entries below dc=example,dc=com; the suffix entry itself is added here). */
export async function startSlapd(ldif: string, options: { tls?: boolean } = {}): Promise<Slapd> {
  const dir = tempDir("postern-slapd-");
  const data = join(dir, "data");
  mkdirSync(data);
  const tls = options.tls ? makeCertificate(dir) : undefined;
  const conf = join(dir, "slapd.conf");
  writeFileSync(
    conf,
    [
      ...["core", "cosine", "inetorgperson", "misc", "nis", "dyngroup"].map((s) => `include /etc/ldap/schema/${s}.schema`),
      `pidfile ${join(dir, "slapd.pid")}`,
      `argsfile ${join(dir, "slapd.args")}`,
      "modulepath /usr/lib/ldap",
      "moduleload back_mdb",
      // Postfix's ldap: tables speak version 2 unless told otherwise
      "allow bind_v2",
      ...(tls ? [`TLSCertificateFile ${tls.cert}`, `TLSCertificateKeyFile ${tls.key}`] : []),
      "database mdb",
      "maxsize 10485760",
      `suffix "${SUFFIX}"`,
      `rootdn "${ROOT_DN}"`,
      `rootpw ${ROOT_PW}`,
      `directory ${data}`,
      "access to attrs=userPassword by anonymous auth by * none",
      "access to * by users read by anonymous auth",
      "",
    ].join("\n"),
  );
  const suffixEntry = `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n`;
  const ldifFile = join(dir, "data.ldif");
  writeFileSync(ldifFile, suffixEntry + ldif);
  const add = Bun.spawnSync([SLAPADD, "-f", conf, "-l", ldifFile], { stdout: "pipe", stderr: "pipe" });
  if (add.exitCode !== 0) throw new Error(`slapadd failed: ${add.stderr.toString()}`);

  const port = freePort();
  const socket = join(dir, "ldapi");
  const url = `ldap://127.0.0.1:${port}`;
  const ldapiUrl = `ldapi://${encodeURIComponent(socket)}`;
  const ldapsUrl = tls ? `ldaps://localhost:${freePort()}` : undefined;
  let proc: Subprocess | undefined;

  const start = async () => {
    proc = Bun.spawn([SLAPD, "-f", conf, "-h", [url, ldapiUrl, ...(ldapsUrl ? [ldapsUrl] : [])].map((u) => `${u}/`).join(" "), "-d", "0"], { stdout: "ignore", stderr: "pipe" });
    const started = proc;
    await waitFor(
      "slapd to listen",
      async () => {
        if (started.exitCode !== null) throw new Error(`slapd exited with ${started.exitCode}: ${await new Response(started.stderr as ReadableStream).text()}`);
        return await new Promise<boolean>((resolve) => {
          Bun.connect({
            hostname: "127.0.0.1",
            port,
            socket: {
              open(s) {
                s.end();
                resolve(true);
              },
              data() {},
              connectError() {
                resolve(false);
              },
            },
          }).catch(() => resolve(false));
        });
      },
      15_000,
    );
  };
  const stop = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    p.kill("SIGTERM");
    const exited = await Promise.race([p.exited.then(() => true), Bun.sleep(10_000).then(() => false)]);
    if (!exited) {
      p.kill("SIGKILL");
      await p.exited;
    }
  };
  await start();
  return {
    dir,
    port,
    url,
    ldapiUrl,
    ldapsUrl,
    caFile: tls?.cert,
    get pid() {
      return proc?.pid;
    },
    stop,
    start,
    async destroy() {
      await stop();
      removeDir(dir);
    },
  };
}
