/**
 * postmap and postalias through their command links against a pgsql:
 * table on a PostgreSQL server the test starts: `postmap -q KEY`,
 * `postmap -q -` (one line per key found), `postalias -q`, the exit
 * statuses (0 found, 1 not found, 1 with a fatal message for a server that
 * cannot answer).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../helpers/ports.ts";
import { POSTGRES_MISSING, startPostgres, type Postgres } from "../helpers/postgres.ts";
import { configDir, removeDir, run, tempDir } from "../helpers/run.ts";

const conf = configDir("");
const dir = tempDir("postern-postmap-sql-");
let pg: Postgres | undefined;
afterAll(async () => {
  await pg?.remove();
  removeDir(conf);
  removeDir(dir);
});

const env = { MAIL_CONFIG: conf };

describe.skipIf(POSTGRES_MISSING !== undefined)(`postmap -q with pgsql:${POSTGRES_MISSING ? ` (skipped: ${POSTGRES_MISSING})` : ""}`, () => {
  let cf: string;
  beforeAll(async () => {
    pg = await startPostgres();
    await pg.sql("CREATE USER mail PASSWORD 'pw';\nCREATE DATABASE mail OWNER mail;\n");
    await pg.sql("SET ROLE mail;\nCREATE TABLE alias (name TEXT, goto TEXT);\nINSERT INTO alias VALUES ('postmaster', 'root'), ('team@example.com', 'ann@example.com'), ('team@example.com', 'bo@example.com');\n", "mail");
    cf = join(dir, "pgsql-aliases.cf");
    writeFileSync(cf, `hosts = inet:127.0.0.1:${pg.port}\nuser = mail\npassword = pw\ndbname = mail\nquery = SELECT goto FROM alias WHERE name = '%s' ORDER BY goto\n`, { mode: 0o600 });
  }, 60_000);

  test("postmap -q KEY: the value, or exit 1 when absent", async () => {
    expect(await run("postmap", ["-q", "Team@Example.com", `pgsql:${cf}`], { env })).toEqual({ code: 0, stdout: "ann@example.com,bo@example.com\n", stderr: "" });
    expect(await run("postmap", ["-q", "nobody", `pgsql:${cf}`], { env })).toEqual({ code: 1, stdout: "", stderr: "" });
  });

  test("postmap -q - reads keys from stdin and prints each key found with its value", async () => {
    const r = await run("postmap", ["-q", "-", `pgsql:${cf}`], { env, stdin: "postmaster\nnobody\nteam@example.com\n" });
    expect(r).toEqual({ code: 0, stdout: "postmaster\troot\nteam@example.com\tann@example.com,bo@example.com\n", stderr: "" });
  });

  test("postalias -q works on the same table", async () => {
    expect(await run("postalias", ["-q", "postmaster", `pgsql:${cf}`], { env })).toMatchObject({ code: 0, stdout: "root\n" });
  });

  test("a server that cannot answer: a fatal error naming the table, not 'not found'", async () => {
    const dead = join(dir, "dead.cf");
    writeFileSync(dead, `hosts = inet:127.0.0.1:${freePort()}\nuser = mail\npassword = pw\ndbname = mail\nquery = SELECT goto FROM alias WHERE name = '%s'\ntimeout = 2\n`);
    const r = await run("postmap", ["-q", "postmaster", `pgsql:${dead}`], { env });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`postmap: fatal: table pgsql:${dead}: connect to pgsql server inet:127.0.0.1:`);
  });
});
