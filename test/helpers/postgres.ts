/**
 * A private PostgreSQL server for tests: `initdb` makes a cluster in a
 * temporary directory, `postgres` serves it on a UNIX socket there and on a
 * free 127.0.0.1 port, and stop() ends it by its PID. PostgreSQL refuses to
 * run as root, so as root the cluster belongs to `nobody` and the server
 * runs as nobody (setpriv). The superuser `postgres` logs in over the
 * socket without a password (trust), so the socket is the server user's
 * only (0700; root passes); TCP logins need a password (SCRAM).
 * Runs in the test process; trusts the SQL the tests give it.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { missingServer, serverProcess } from "./server-program.ts";

function binDir(): string | undefined {
  const base = "/usr/lib/postgresql";
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base).filter((v) => existsSync(join(base, v, "bin", "postgres"))).sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(base, versions[0], "bin") : undefined;
}

export const PG_BIN = binDir();

/** Why PostgreSQL tests cannot run here (undefined: they can); throws in CI. */
export const POSTGRES_MISSING = missingServer(PG_BIN && join(PG_BIN, "postgres"), "PostgreSQL (postgres, initdb, psql)", "postgresql");

export interface Postgres {
  dir: string;
  /** The socket file itself: DIR/.s.PGSQL.PORT. */
  socket: string;
  port: number;
  pid(): number | undefined;
  /** Runs SQL as the superuser through psql (statements one by one, stopping at the first error). */
  sql(statements: string, database?: string): Promise<string>;
  stop(): Promise<void>;
  start(): Promise<void>;
  remove(): Promise<void>;
}

const NOBODY = { uid: 65534, gid: 65534 };

export async function startPostgres(): Promise<Postgres> {
  if (POSTGRES_MISSING) throw new Error(POSTGRES_MISSING);
  const isRoot = process.getuid?.() === 0;
  const asServer = isRoot ? ["/usr/bin/setpriv", `--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, "--clear-groups"] : [];
  const dir = mkdtempSync(join(tmpdir(), "postern-pg-"));
  chmodSync(dir, 0o755);
  const data = join(dir, "data");
  mkdirSync(data, { mode: 0o700 });
  if (isRoot) {
    chownSync(dir, NOBODY.uid, NOBODY.gid);
    chownSync(data, NOBODY.uid, NOBODY.gid);
  }
  const port = freePort();
  const init = Bun.spawnSync([...asServer, join(PG_BIN!, "initdb"), "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C"], { stdout: "pipe", stderr: "pipe", cwd: dir });
  if (init.exitCode !== 0) throw new Error(`initdb failed: ${init.stderr.toString()}`);
  const socket = join(dir, `.s.PGSQL.${port}`);
  const psql = (args: string[], input?: string) => Bun.spawn([join(PG_BIN!, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", dir, "-p", String(port), "-U", "postgres", ...args], { stdin: input === undefined ? "ignore" : new TextEncoder().encode(input), stdout: "pipe", stderr: "pipe" });
  const server = serverProcess({
    what: "postgres",
    argv: [...asServer, join(PG_BIN!, "postgres"), "-D", data, "-k", dir, "-p", String(port), "-h", "127.0.0.1", "-F", "-c", "shared_buffers=8MB", "-c", "max_connections=40", "-c", "unix_socket_permissions=0700"],
    cwd: dir,
    // SIGINT: PostgreSQL's "fast" shutdown
    stopSignal: "SIGINT",
    ready: async () => existsSync(socket) && (await psql(["-d", "postgres", "-c", "SELECT 1"]).exited) === 0,
  });
  const { start, stop } = server;
  await start();
  return {
    dir,
    socket,
    port,
    pid: server.pid,
    async sql(statements, database = "postgres") {
      const p = psql(["-d", database], statements);
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      if (code !== 0) throw new Error(`psql failed: ${err}`);
      return out;
    },
    stop,
    start,
    async remove() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
