/**
 * A private MariaDB server for a bench scenario (the bench's own copy of
 * test/helpers/mariadb.ts, synchronous like the rest of the harness):
 * `mariadb-install-db` makes a data directory under the run's directory,
 * `mariadbd` serves it on a UNIX socket there only (no TCP), and the undo
 * action registered when it starts stops it by its PID (SIGTERM, SIGKILL
 * after 30 s). root logs in over the socket without a password.
 *
 * Runs as root, as the harness does (the server with --user=root); the SQL
 * it runs is the scenario's own.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { onCleanup } from "./cleanup.ts";
import { mustRun, runCommand } from "./proc.ts";
import { alive, waitFor } from "./wait.ts";

const MARIADBD = ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"].find((p) => existsSync(p));
const INSTALL_DB = ["/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db"].find((p) => existsSync(p));
const CLIENT = ["/usr/bin/mariadb", "/usr/bin/mysql"].find((p) => existsSync(p));

export interface BenchMariaDb {
  socket: string;
  pid: number;
  /** Runs SQL as root; returns the tab-separated output. */
  sql(statements: string): string;
  /** Global status counters (`SHOW GLOBAL STATUS`), e.g. Com_select, read in one connection (which Connections counts). */
  status(names: string[]): Record<string, number>;
}

/** The socket a server started in `dir` listens on (known before it starts, for the table files). */
export function mariaDbSocket(dir: string): string {
  return join(dir, "mysqld.sock");
}

/** Starts a server whose files live in `dir` (created 0755, so that daemons as mail_owner reach the socket). */
export function startMariaDb(dir: string): BenchMariaDb {
  if (!MARIADBD || !INSTALL_DB || !CLIENT) throw new Error("MariaDB is not installed (Debian package mariadb-server)");
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  const data = join(dir, "data");
  const socket = mariaDbSocket(dir);
  const errorLog = join(dir, "error.log");
  mustRun([INSTALL_DB, "--no-defaults", `--datadir=${data}`, "--auth-root-authentication-method=normal", "--skip-test-db", "--innodb-log-file-size=4M", "--user=root"], { timeoutMs: 120_000 });
  const proc = Bun.spawn(
    [MARIADBD, "--no-defaults", `--datadir=${data}`, `--socket=${socket}`, "--skip-networking", "--skip-log-bin", "--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M", "--max-connections=500", `--log-error=${errorLog}`, `--pid-file=${join(dir, "mysqld.pid")}`, "--user=root"],
    { stdout: "ignore", stderr: "ignore", stdin: "ignore" },
  );
  const pid = proc.pid;
  onCleanup(`stop mariadbd (pid ${pid})`, () => {
    if (!alive(pid)) return;
    process.kill(pid, "SIGTERM");
    if (!waitFor(() => !alive(pid), 30_000, 50)) process.kill(pid, "SIGKILL");
  });
  const sql = (statements: string): string => mustRun([CLIENT, "--no-defaults", "-S", socket, "-uroot", "--batch", "--skip-column-names", "-e", statements]).stdout;
  const up = waitFor(() => {
    if (!alive(pid)) return true;
    return existsSync(socket) && runCommand([CLIENT, "--no-defaults", "-S", socket, "-uroot", "-e", "SELECT 1"]).code === 0;
  }, 60_000, 100);
  if (!up || !alive(pid)) throw new Error(`mariadbd did not start: ${existsSync(errorLog) ? readFileSync(errorLog, "utf8").slice(-1500) : "no error log"}`);
  return {
    socket,
    pid,
    sql,
    status(names) {
      const list = names.map((n) => `'${n.replace(/[^A-Za-z_]/g, "")}'`).join(", ");
      const out: Record<string, number> = {};
      for (const line of sql(`SHOW GLOBAL STATUS WHERE Variable_name IN (${list})`).trim().split("\n")) {
        const [name, value] = line.split("\t");
        if (name !== undefined && value !== undefined) out[name] = Number(value);
      }
      for (const n of names) if (!Number.isFinite(out[n])) throw new Error(`MariaDB has no status counter ${n}`);
      return out;
    },
  };
}
