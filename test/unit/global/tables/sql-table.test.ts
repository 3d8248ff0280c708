/**
 * mysql: and pgsql: against real servers the test starts (MariaDB and
 * PostgreSQL in private directories): keys that try SQL injection, both
 * quoting modes of each server, multi-row results, the legacy keys, server
 * failover and retry, a stopped and a hung server (temporary errors, never
 * "not found"), a wrong password, and the answers a table reuses for
 * cache_time seconds (counted with the server's Com_select).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openTableUncached } from "../../../../src/global/tables/open-table.ts";
import { MYSQL_BACKEND, mysqlQuote } from "../../../../src/global/tables/mysql-table.ts";
import { pgsqlQuote } from "../../../../src/global/tables/pgsql-table.ts";
import { SqlTable } from "../../../../src/global/tables/sql-table.ts";
import { TableError, type Table } from "../../../../src/global/tables/table.ts";
import { MARIADB_MISSING, startMariaDb, type MariaDb } from "../../../helpers/mariadb.ts";
import { POSTGRES_MISSING, startPostgres, type Postgres } from "../../../helpers/postgres.ts";
import { freePort } from "../../../helpers/ports.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";
import { waitFor } from "../../../helpers/wait.ts";

const dir = tempDir("postern-sql-table-");
const opened: Table[] = [];
afterAll(() => {
  for (const t of opened) t.close();
  removeDir(dir);
});

/** Keys stored in the database as written; each must find exactly its own row. */
const AWKWARD = ["o'neil", "back\\slash", 'quo"te', "ctrl\x1az", "line\nbreak", "ünïcødé@exämple.org", "100%_like", "tail\\"];
/** Keys that would widen or end the query if quoting failed. */
const INJECTIONS = ["x' OR '1'='1", "x\\' OR 1=1 -- ", "x\\'' OR 1=1 -- ", "'; DROP TABLE victim; --", "x\0' OR '1'='1", "\\", "'", "x'||'"];

function cf(name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, lines.join("\n") + "\n");
  return path;
}

/** The test CA and server certificate (made on first use). */
const certs = join(dir, "certs");
function certificates(): string {
  if (!existsSync(join(certs, "server.pem"))) makeCertificates(certs);
  return certs;
}

function table(spec: string): Table {
  const t = openTableUncached(spec, undefined);
  opened.push(t);
  return t;
}

describe("quoting functions", () => {
  test("mysqlQuote escapes as mysql_real_escape_string, or doubles ' under NO_BACKSLASH_ESCAPES", () => {
    expect(mysqlQuote(false)("a'b\"c\\d\0e\nf\rg\x1ah")).toBe("a\\'b\\\"c\\\\d\\0e\\nf\\rg\\Zh");
    expect(mysqlQuote(true)("a'b\\c")).toBe("a''b\\c");
  });
  test("pgsqlQuote doubles ' (and \\ without standard_conforming_strings) and stops at a NUL", () => {
    expect(pgsqlQuote(true)("a'b\\c")).toBe("a''b\\c");
    expect(pgsqlQuote(false)("a'b\\c")).toBe("a''b\\\\c");
    expect(pgsqlQuote(true)("a\0'")).toBe("a");
  });
});

describe.skipIf(MARIADB_MISSING !== undefined)(`mysql: against MariaDB${MARIADB_MISSING ? ` (skipped: ${MARIADB_MISSING})` : ""}`, () => {
  let db: MariaDb;
  const base = () => [`hosts = unix:${db.socket}`, "user = pf", "password = s3cret", "dbname = pf"];
  beforeAll(async () => {
    certificates();
    db = await startMariaDb([`--ssl-cert=${certs}/server.pem`, `--ssl-key=${certs}/server.key`, `--ssl-ca=${certs}/ca.pem`]);
    const rows = AWKWARD.map((k, i) => `(${sqlHex(k)}, 'v${i}')`).join(", ");
    await db.sql(`CREATE DATABASE pf; USE pf;
      CREATE TABLE t (k VARBINARY(200), v VARCHAR(200)); INSERT INTO t VALUES ${rows}, ('multi', 'one'), ('multi', 'two'), ('x', 'plain-x');
      CREATE TABLE victim (k VARCHAR(10)); INSERT INTO victim VALUES ('still');
      CREATE TABLE postfix_alias (alias VARCHAR(100), destination VARCHAR(100), type VARCHAR(10));
      INSERT INTO postfix_alias VALUES ('postmaster', 'root', 'a'), ('postmaster', 'admin', 'b');
      CREATE PROCEDURE one_set(IN key_in VARBINARY(200)) SELECT v FROM t WHERE k = key_in;
      DELIMITER //
      CREATE PROCEDURE two_sets(IN key_in VARBINARY(200)) BEGIN SELECT v FROM t WHERE k = key_in; SELECT v FROM t WHERE k = key_in; END //
      DELIMITER ;
      CREATE USER 'pf'@'localhost' IDENTIFIED BY 's3cret'; CREATE USER 'pf'@'127.0.0.1' IDENTIFIED BY 's3cret';
      CREATE USER 'nbe'@'localhost' IDENTIFIED BY 's3cret';
      CREATE USER 'tls'@'localhost' IDENTIFIED BY 's3cret' REQUIRE SSL; CREATE USER 'tls'@'127.0.0.1' IDENTIFIED BY 's3cret' REQUIRE SSL;
      GRANT SELECT ON pf.* TO 'tls'@'localhost'; GRANT SELECT ON pf.* TO 'tls'@'127.0.0.1';
      CREATE USER 'idle'@'localhost' IDENTIFIED BY 's3cret'; GRANT SELECT ON pf.* TO 'idle'@'localhost';
      GRANT SELECT, EXECUTE ON pf.* TO 'pf'@'localhost'; GRANT SELECT ON pf.* TO 'pf'@'127.0.0.1'; GRANT SELECT ON pf.* TO 'nbe'@'localhost';`);
  }, 90_000);
  afterAll(async () => {
    await db?.remove();
  });

  for (const mode of ["backslash escapes", "NO_BACKSLASH_ESCAPES"] as const) {
    test(`keys with quotes, backslashes, NUL and non-ASCII find their own row only (${mode})`, async () => {
      const user = mode === "backslash escapes" ? "pf" : "nbe";
      if (user === "nbe") await db.sql("SET GLOBAL sql_mode = CONCAT(@@GLOBAL.sql_mode, ',NO_BACKSLASH_ESCAPES');");
      try {
        const t = table(`mysql:${cf(`inj-${user}.cf`, [...base().filter((l) => !l.startsWith("user")), `user = ${user}`, "query = SELECT v FROM t WHERE k = '%s'"])}`);
        for (const [i, k] of AWKWARD.entries()) expect(await t.lookup(k)).toBe(`v${i}`);
        for (const k of INJECTIONS) expect(await t.lookup(k)).toBeUndefined();
        expect(await db.sql("SELECT k FROM pf.victim;")).toBe("still\n");
      } finally {
        if (user === "nbe") await db.sql("SET GLOBAL sql_mode = REPLACE(@@GLOBAL.sql_mode, ',NO_BACKSLASH_ESCAPES', '');");
      }
    });
  }

  test("rows are joined with commas; result_format, the legacy keys and additional_conditions work", async () => {
    const t = table(`mysql:${cf("multi.cf", [...base(), "query = SELECT v FROM t WHERE k = '%s' ORDER BY v", "result_format = <%s>"])}`);
    expect(await t.lookup("multi")).toBe("<one>,<two>");
    const legacy = table(`mysql:${cf("legacy.cf", [...base(), "table = postfix_alias", "select_field = destination", "where_field = alias", "additional_conditions = and type = 'b'"])}`);
    expect(await legacy.lookup("postmaster")).toBe("admin");
  });

  test("a stored procedure's one result set; two are an error, as is no result set unless require_result_set = no", async () => {
    const call = table(`mysql:${cf("call.cf", [...base(), "query = CALL one_set('%s')"])}`);
    expect(await call.lookup("x")).toBe("plain-x");
    expect(await call.lookup("nobody")).toBeUndefined();
    await expect(table(`mysql:${cf("call2.cf", [...base(), "query = CALL two_sets('%s')"])}`).lookup("x")).rejects.toBeInstanceOf(TableError);
    await expect(table(`mysql:${cf("noset.cf", [...base(), "query = DO '%s'"])}`).lookup("x")).rejects.toBeInstanceOf(TableError);
    expect(await table(`mysql:${cf("noset-ok.cf", [...base(), "query = DO '%s'", "require_result_set = no"])}`).lookup("x")).toBeUndefined();
  });

  test("expansion_limit exceeded is a temporary error", async () => {
    const t = table(`mysql:${cf("limit.cf", [...base(), "query = SELECT v FROM t WHERE k = '%s'", "expansion_limit = 1"])}`);
    await expect(t.lookup("multi")).rejects.toBeInstanceOf(TableError);
    expect(await t.lookup("x")).toBe("plain-x");
  });

  test("a dead server among the hosts is skipped; all dead is a temporary error, not 'not found'", async () => {
    const dead = freePort();
    const t = table(`mysql:${cf("failover.cf", [...base().slice(1), `hosts = inet:127.0.0.1:${dead}, 127.0.0.1:${db.port}`, "query = SELECT v FROM t WHERE k = '%s'"])}`);
    for (let i = 0; i < 6; i++) expect(await t.lookup("x")).toBe("plain-x");
    const none = table(`mysql:${cf("dead.cf", [...base().slice(1), `hosts = inet:127.0.0.1:${dead}`, "query = SELECT v FROM t WHERE k = '%s'"])}`);
    const err = await none.lookup("x").catch((e) => e);
    expect(err).toBeInstanceOf(TableError);
    expect(err.message).toContain(`connect to mysql server inet:127.0.0.1:${dead}`);
  });

  test("a wrong password is a temporary error that says so", async () => {
    const t = table(`mysql:${cf("badpw.cf", [`hosts = 127.0.0.1:${db.port}`, "user = pf", "password = wrong", "dbname = pf", "query = SELECT v FROM t WHERE k = '%s'"])}`);
    const err = await t.lookup("x").catch((e) => e);
    expect(err).toBeInstanceOf(TableError);
    expect(err.message).toContain("Access denied for user 'pf'");
  });

  test("TLS: tls_CAfile makes the connection TLS and checks the chain; tls_verify_cert checks the server's name too", async () => {
    const tcp = [`hosts = 127.0.0.1:${db.port}`, "user = tls", "password = s3cret", "dbname = pf", "query = SELECT v FROM t WHERE k = '%s'"];
    // the user may only log in over TLS
    await expect(table(`mysql:${cf("plain.cf", tcp)}`).lookup("x")).rejects.toBeInstanceOf(TableError);
    expect(await table(`mysql:${cf("tls.cf", [...tcp, `tls_CAfile = ${certs}/ca.pem`])}`).lookup("x")).toBe("plain-x");
    // the certificate names db.test, not 127.0.0.1: that matters only with tls_verify_cert
    const name = await table(`mysql:${cf("tls-verify.cf", [...tcp, `tls_CAfile = ${certs}/ca.pem`, "tls_verify_cert = yes"])}`).lookup("x").catch((e) => e);
    expect(name).toBeInstanceOf(TableError);
    expect(name.message).toMatch(/127\.0\.0\.1|altnames|host ?name/i);
    // a chain from another CA fails
    expect(await table(`mysql:${cf("tls-other-ca.cf", [...tcp, `tls_CAfile = ${certs}/other-ca.pem`])}`).lookup("x").catch((e) => e)).toBeInstanceOf(TableError);
    const err = await table(`mysql:${cf("tls-noca.cf", [...tcp, "tls_verify_cert = yes"])}`).lookup("x").catch((e) => e);
    expect(err).toBeInstanceOf(TableError);
    expect(err.message).toMatch(/certificate/);
  });

  test("one connection per table, shared by concurrent lookups; idle_interval closes it and the next lookup opens it again", async () => {
    const t = table(`mysql:${cf("idle.cf", [`hosts = unix:${db.socket}`, "user = idle", "password = s3cret", "dbname = pf", "query = SELECT v FROM t WHERE k = '%s'", "idle_interval = 1"])}`);
    const connections = async () => Number((await db.sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'idle';")).trim());
    expect(await t.lookup("x")).toBe("plain-x");
    // concurrent lookups share the table's one connection
    const many = await Promise.all(Array.from({ length: 40 }, (_, i) => t.lookup(i % 2 ? "x" : "multi")));
    expect(many.filter((v) => v === "plain-x")).toHaveLength(20);
    expect(many.filter((v) => v !== "plain-x" && v?.split(",").sort().join(",") === "one,two")).toHaveLength(20);
    // at most one (not one per lookup in flight); it may already have gone idle on a slow machine
    expect(await connections()).toBeLessThanOrEqual(1);
    await waitFor("the idle connection to close", async () => (await connections()) === 0, 20_000);
    expect(await t.lookup("x")).toBe("plain-x");
    expect(await connections()).toBeLessThanOrEqual(1);
  });

  test("an answer is reused for cache_time seconds (default 1) and asked again after; a temporary failure is not kept; 0 turns it off", async () => {
    await db.sql("USE pf; CREATE TABLE memo (k VARCHAR(20), v VARCHAR(20)); INSERT INTO memo VALUES ('a', 'one'), ('multi', 'x'), ('multi', 'y');");
    const selects = async () => Number((await db.sql("SHOW GLOBAL STATUS LIKE 'Com_select';")).split("\t")[1]);
    let now = 1_000_000;
    const memoTable = (name: string, extra: string[]) => {
      const path = cf(name, [...base(), "query = SELECT v FROM memo WHERE k = '%s'", ...extra]);
      const t = new SqlTable(`mysql:${path}`, path, MYSQL_BACKEND, {}, () => now);
      opened.push(t);
      return t;
    };
    const t = memoTable("memo2.cf", ["cache_time = 2"]);
    expect(await t.lookup("a")).toBe("one");
    let count = await selects();
    expect(await selects()).toBe(count);
    await db.sql("UPDATE pf.memo SET v = 'two' WHERE k = 'a';");
    now += 1999;
    // the same key, folded or not, and 10 at once: no query
    expect(await t.lookup("A")).toBe("one");
    expect(await Promise.all(Array.from({ length: 10 }, () => t.lookup("a")))).toEqual(Array(10).fill("one"));
    expect(await selects()).toBe(count);
    now += 1;
    expect(await t.lookup("a")).toBe("two");
    expect(await selects()).toBe(count + 1);
    // "not found" is an answer too; 10 concurrent lookups of a new key share one query
    expect(await Promise.all(Array.from({ length: 10 }, () => t.lookup("nobody")))).toEqual(Array(10).fill(undefined));
    expect(await t.lookup("nobody")).toBeUndefined();
    expect(await selects()).toBe(count + 2);

    // the default is 1 s
    const byDefault = memoTable("memo-default.cf", []);
    expect(await byDefault.lookup("a")).toBe("two");
    count = await selects();
    now += 999;
    expect(await byDefault.lookup("a")).toBe("two");
    expect(await selects()).toBe(count);
    now += 1;
    expect(await byDefault.lookup("a")).toBe("two");
    expect(await selects()).toBe(count + 1);

    // a temporary failure (expansion_limit exceeded) is asked again each time
    const limited = memoTable("memo-limit.cf", ["expansion_limit = 1"]);
    await expect(limited.lookup("multi")).rejects.toBeInstanceOf(TableError);
    count = await selects();
    await expect(limited.lookup("multi")).rejects.toBeInstanceOf(TableError);
    await expect(limited.lookup("multi")).rejects.toBeInstanceOf(TableError);
    expect(await selects()).toBe(count + 2);

    // cache_time = 0: every lookup asks
    const off = memoTable("memo-off.cf", ["cache_time = 0"]);
    expect(await off.lookup("a")).toBe("two");
    count = await selects();
    expect(await off.lookup("a")).toBe("two");
    expect(await off.lookup("a")).toBe("two");
    expect(await selects()).toBe(count + 2);

    // more than 60 s is a configuration error
    await expect(memoTable("memo-long.cf", ["cache_time = 61"]).lookup("a")).rejects.toThrow("cache_time = 61 is more than the 60s it may be");
  });

  test("a hung server: the lookup fails within the table's timeout", async () => {
    const t = table(`mysql:${cf("hung.cf", [...base(), "query = SELECT v FROM t WHERE k = '%s'", "timeout = 1", "cache_time = 0"])}`);
    expect(await t.lookup("x")).toBe("plain-x");
    const pid = db.pid()!;
    process.kill(pid, "SIGSTOP");
    try {
      // a stop reaches every thread a little later: ask only once the kernel shows each one stopped
      await waitFor("every server thread to stop", () => readdirSync(`/proc/${pid}/task`).every((task) => /^State:\s+T/m.test(readFileSync(`/proc/${pid}/task/${task}/status`, "utf8"))), 10_000);
      await expect(t.lookup("x")).rejects.toBeInstanceOf(TableError);
    } finally {
      process.kill(pid, "SIGCONT");
    }
  });

  test("a stopped server: temporary errors, then answers again after retry_interval once it is back", async () => {
    const t = table(`mysql:${cf("restart.cf", [...base(), "query = SELECT v FROM t WHERE k = '%s'", "retry_interval = 1", "cache_time = 0"])}`);
    expect(await t.lookup("x")).toBe("plain-x");
    await db.stop();
    await expect(t.lookup("x")).rejects.toBeInstanceOf(TableError);
    await expect(t.lookup("x")).rejects.toBeInstanceOf(TableError);
    await db.start();
    expect(await waitFor("the table to answer again", async () => (await t.lookup("x").catch(() => undefined)) ?? false, 20_000)).toBe("plain-x");
  }, 60_000);
});

describe.skipIf(POSTGRES_MISSING !== undefined)(`pgsql: against PostgreSQL${POSTGRES_MISSING ? ` (skipped: ${POSTGRES_MISSING})` : ""}`, () => {
  let pg: Postgres;
  const base = () => [`hosts = unix:${pg.socket}`, "user = pf", "password = s3cret", "dbname = pf"];
  beforeAll(async () => {
    pg = await startPostgres();
    await pg.sql("CREATE USER pf PASSWORD 's3cret';\nCREATE USER oldstyle PASSWORD 's3cret';\nCREATE DATABASE pf OWNER pf;\nALTER ROLE oldstyle SET standard_conforming_strings = off;\nALTER ROLE oldstyle SET escape_string_warning = off;\n");
    const rows = AWKWARD.filter((k) => !k.includes("\0")).map((k, i) => `(${pgLiteral(k)}, 'v${i}')`).join(", ");
    await pg.sql(`SET ROLE pf;
CREATE TABLE t (k TEXT, v TEXT); INSERT INTO t VALUES ${rows}, ('multi', 'one'), ('multi', 'two'), ('x', 'plain-x');
CREATE TABLE victim (k TEXT); INSERT INTO victim VALUES ('still');
GRANT SELECT ON t, victim TO oldstyle;
CREATE FUNCTION lookup_v(key TEXT) RETURNS TEXT AS $$ SELECT v FROM t WHERE k = key LIMIT 1 $$ LANGUAGE SQL;
`, "pf");
  }, 90_000);
  afterAll(async () => {
    await pg?.remove();
  });

  for (const user of ["pf", "oldstyle"]) {
    test(`keys with quotes, backslashes, NUL and non-ASCII find their own row only (standard_conforming_strings ${user === "pf" ? "on" : "off"})`, async () => {
      const t = table(`pgsql:${cf(`inj-${user}.cf`, [...base().filter((l) => !l.startsWith("user")), `user = ${user}`, "query = SELECT v FROM t WHERE k = '%s'"])}`);
      for (const [i, k] of AWKWARD.entries()) expect(await t.lookup(k)).toBe(`v${i}`);
      for (const k of INJECTIONS) expect(await t.lookup(k)).toBeUndefined();
      expect(await pg.sql("SELECT k FROM victim;", "pf")).toBe("still\n");
    });
  }

  test("rows joined with commas over TCP; select_function; a wrong password says so", async () => {
    const tcp = [`hosts = inet:127.0.0.1:${pg.port}`, "user = pf", "password = s3cret", "dbname = pf"];
    expect(await table(`pgsql:${cf("multi.cf", [...tcp, "query = SELECT v FROM t WHERE k = '%s' ORDER BY v"])}`).lookup("multi")).toBe("one,two");
    expect(await table(`pgsql:${cf("fn.cf", [...tcp, "select_function = lookup_v"])}`).lookup("x")).toBe("plain-x");
    const err = await table(`pgsql:${cf("badpw.cf", [...tcp.slice(0, 2), "password = wrong", "dbname = pf", "query = SELECT v FROM t WHERE k = '%s'"])}`).lookup("x").catch((e) => e);
    expect(err).toBeInstanceOf(TableError);
    expect(err.message).toContain("password authentication failed");
  });

  test("a URI host; a dead host is skipped", async () => {
    const dead = freePort();
    const t = table(`pgsql:${cf("uri.cf", [`hosts = inet:127.0.0.1:${dead} postgresql://pf:s3cret@127.0.0.1:${pg.port}/pf`, "dbname = pf", "query = SELECT v FROM t WHERE k = '%s'"])}`);
    for (let i = 0; i < 6; i++) expect(await t.lookup("x")).toBe("plain-x");
  });

  test("TLS through a URI's sslmode: required, and verified against a CA file", async () => {
    // the server's key must belong to the server's user (nobody, as root), mode 0600
    const owner = statSync(pg.dir);
    for (const f of ["server.pem", "server.key"]) {
      copyFileSync(join(certificates(), f), join(pg.dir, f));
      chownSync(join(pg.dir, f), owner.uid, owner.gid);
    }
    await pg.sql(`ALTER SYSTEM SET ssl = on;\nALTER SYSTEM SET ssl_cert_file = '${pg.dir}/server.pem';\nALTER SYSTEM SET ssl_key_file = '${pg.dir}/server.key';\nSELECT pg_reload_conf();\n`);
    const uri = (mode: string) => `hosts = postgresql://pf:s3cret@127.0.0.1:${pg.port}/pf?${mode}`;
    // what the server says about the lookup's own connection
    const query = "query = SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND '%s' <> ''";
    let n = 0;
    const sslOf = (mode: string) => table(`pgsql:${cf(`tls-${n++}.cf`, [uri(mode), query, "retry_interval = 1"])}`).lookup("x");
    expect(await waitFor("the server to take TLS connections", async () => (await sslOf("sslmode=require").catch(() => undefined)) === "true", 20_000)).toBe(true);
    expect(await sslOf("sslmode=disable")).toBe("false");
    expect(await sslOf(`sslmode=verify-ca&sslrootcert=${certs}/ca.pem`)).toBe("true");
    // the certificate names db.test, not 127.0.0.1
    await expect(sslOf(`sslmode=verify-full&sslrootcert=${certs}/ca.pem`)).rejects.toBeInstanceOf(TableError);
    await expect(sslOf(`sslmode=verify-ca&sslrootcert=${certs}/other-ca.pem`)).rejects.toBeInstanceOf(TableError);
  });

  test("a stopped server: temporary errors, then answers again", async () => {
    const t = table(`pgsql:${cf("restart.cf", [...base(), "query = SELECT v FROM t WHERE k = '%s'", "retry_interval = 1", "cache_time = 0"])}`);
    expect(await t.lookup("x")).toBe("plain-x");
    await pg.stop();
    await expect(t.lookup("x")).rejects.toBeInstanceOf(TableError);
    await pg.start();
    expect(await waitFor("the table to answer again", async () => (await t.lookup("x").catch(() => undefined)) ?? false, 20_000)).toBe("plain-x");
  }, 60_000);
});

/** A CA, a server certificate it signed for db.test, and an unrelated CA (openssl). */
function makeCertificates(out: string): void {
  mkdirSync(out, { recursive: true });
  const ssl = (args: string[]) => {
    const r = Bun.spawnSync(["openssl", ...args], { cwd: out, stdout: "ignore", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr.toString()}`);
  };
  ssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Test CA", "-keyout", "ca.key", "-out", "ca.pem"]);
  ssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Other CA", "-keyout", "other-ca.key", "-out", "other-ca.pem"]);
  ssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=db.test", "-keyout", "server.key", "-out", "server.csr"]);
  writeFileSync(join(out, "ext"), "subjectAltName=DNS:db.test\n");
  ssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "ext", "-out", "server.pem"]);
}

function sqlHex(s: string): string {
  return `X'${Buffer.from(s, "utf8").toString("hex")}'`;
}

function pgLiteral(s: string): string {
  return `convert_from('\\x${Buffer.from(s, "utf8").toString("hex")}'::bytea, 'UTF8')`;
}
