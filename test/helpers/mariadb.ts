/**
 * A private MariaDB server for tests: `mariadb-install-db` makes a data
 * directory in a temporary directory, `mariadbd` serves it on a UNIX socket
 * there and on a free 127.0.0.1 port, and stop() ends it by its PID. The
 * server can be stopped and started again on the same data (fault tests).
 * root logs in over the socket without a password; tests create their own
 * users. Runs in the test process as whoever runs the tests (root: the
 * server runs as root with --user=root); trusts the SQL the tests give it.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { missingServer, serverProcess } from "./server-program.ts";

export const MARIADBD = ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"].find((p) => existsSync(p));
const INSTALL_DB = ["/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db"].find((p) => existsSync(p));
const CLIENT = ["/usr/bin/mariadb", "/usr/bin/mysql"].find((p) => existsSync(p));

/** Why MariaDB tests cannot run here (undefined: they can); throws in CI. */
export const MARIADB_MISSING = missingServer(MARIADBD && INSTALL_DB && CLIENT, "MariaDB (mariadbd, mariadb-install-db, mariadb)", "mariadb-server");

export interface MariaDb {
  dir: string;
  socket: string;
  port: number;
  /** The running server's PID, undefined while stopped. */
  pid(): number | undefined;
  /** Runs SQL statements as root through the mariadb client; returns its tab-separated output. */
  sql(statements: string): Promise<string>;
  /** Stops the server (SIGTERM, then SIGKILL after 10 s) and waits until it is gone. */
  stop(): Promise<void>;
  /** Starts it again on the same data, socket and port. */
  start(): Promise<void>;
  /** Stops the server and removes its files. */
  remove(): Promise<void>;
}

/** `serverArgs`: more mariadbd options (--ssl-cert=..., ...). */
export async function startMariaDb(serverArgs: string[] = []): Promise<MariaDb> {
  if (MARIADB_MISSING) throw new Error(MARIADB_MISSING);
  const dir = mkdtempSync(join(tmpdir(), "postern-mariadb-"));
  // daemons that dropped to mail_owner reach the socket in here
  chmodSync(dir, 0o755);
  const data = join(dir, "data");
  const socket = join(dir, "mysqld.sock");
  const port = freePort();
  const root = process.getuid?.() === 0 ? ["--user=root"] : [];
  const install = Bun.spawnSync([INSTALL_DB!, "--no-defaults", `--datadir=${data}`, "--auth-root-authentication-method=normal", "--skip-test-db", "--innodb-log-file-size=4M", ...root], { stdout: "pipe", stderr: "pipe" });
  if (install.exitCode !== 0) throw new Error(`mariadb-install-db failed: ${install.stderr.toString()}${install.stdout.toString()}`);
  const server = serverProcess({
    what: "mariadbd",
    argv: [MARIADBD!, "--no-defaults", `--datadir=${data}`, `--socket=${socket}`, `--port=${port}`, "--bind-address=127.0.0.1", "--skip-log-bin", "--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M", `--log-error=${join(dir, "error.log")}`, `--pid-file=${join(dir, "mysqld.pid")}`, ...root, ...serverArgs],
    stopSignal: "SIGTERM",
    exitReason: () => `mariadbd exited: ${readFileSync(join(dir, "error.log"), "utf8").slice(-2000)}`,
    ready: () => existsSync(socket) && Bun.spawnSync([CLIENT!, "--no-defaults", "-S", socket, "-uroot", "-e", "SELECT 1"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0,
  });
  const { start, stop } = server;
  await start();
  return {
    dir,
    socket,
    port,
    pid: server.pid,
    async sql(statements) {
      const p = Bun.spawn([CLIENT!, "--no-defaults", "-S", socket, "-uroot", "--batch", "--skip-column-names"], { stdin: new TextEncoder().encode(statements), stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      if (code !== 0) throw new Error(`mariadb client failed: ${err}`);
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
