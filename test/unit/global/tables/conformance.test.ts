/**
 * One behaviour suite over every table backend: each fixture builds the same
 * small table in its own format (two entries, one value with inner spaces,
 * a comment, blank and continued lines where the format has them), and the
 * same checks run against it: found, not found, case rules, white space,
 * comments, owner, close. Backend-specific behaviour lives in the other
 * files of this folder.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openTableUncached } from "../../../../src/global/tables/open-table.ts";
import { writeIndexFile, indexPathOf } from "../../../../src/global/tables/hash-index.ts";
import { parsePostmapSource } from "../../../../src/global/tables/postmap-format.ts";
import { parseAliasSource } from "../../../../src/global/tables/alias-format.ts";
import { TableError, type Table } from "../../../../src/global/tables/table.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";
import { startSocketmapServer, startTcpTableServer } from "../../../helpers/lookup-servers.ts";
import { hexQuote } from "../../../../src/global/tables/tcp-table.ts";
import { ROOT_DN, ROOT_PW, SUFFIX, haveSlapd, startSlapd } from "../../../helpers/slapd.ts";
import { MARIADB_MISSING, startMariaDb, type MariaDb } from "../../../helpers/mariadb.ts";
import { POSTGRES_MISSING, startPostgres, type Postgres } from "../../../helpers/postgres.ts";

const dir = tempDir("postern-tables-conf-");

const VALUE = "value-one";
const SPACED = "text with  two spaces";

/** What the socketmap and tcp servers hold; they fold keys, as a server may. */
const SERVED = new Map([
  ["alice", VALUE],
  ["spaced", SPACED],
  ["bob@example.com", "mixed"],
]);
const socketmapServer = startSocketmapServer({ unix: join(dir, "socketmap.sock") }, (map, key) => {
  const v = map === "conf" ? SERVED.get(key.toLowerCase()) : undefined;
  return v === undefined ? "NOTFOUND " : `OK ${v}`;
});
const tcpServer = startTcpTableServer({}, (key) => {
  const v = SERVED.get(key.toLowerCase());
  return v === undefined ? "500 not found" : `200 ${hexQuote(v)}`;
});
const slapd = haveSlapd()
  ? await startSlapd(
      [`dn: ou=conf,${SUFFIX}\nobjectClass: organizationalUnit\nou: conf\n\n`]
        .concat(
          [...SERVED].map(([k, v]) => `dn: uid=${k},ou=conf,${SUFFIX}\nobjectClass: account\nuid: ${k}\ndescription: ${v}\n\n`),
        )
        .join(""),
    )
  : undefined;
afterAll(async () => {
  socketmapServer.stop();
  tcpServer.stop();
  await slapd?.destroy();
  removeDir(dir);
});

interface Fixture {
  name: string;
  /** Creates the table; returns its specification. */
  make(): string;
  /** Key whose value is VALUE, written in the table in lower case. */
  key: string;
  /** Key whose value is SPACED. */
  spacedKey?: string;
  /** A key the table does not hold. */
  absent: string;
  /** A present key written in another letter case, and the value it must find. */
  caseVariant?: { key: string; value: string };
  /** A key written with capitals in the source, found when looked up in lower case. */
  mixedCaseKey?: { lookup: string; value: string };
  /** Text that appears only in a comment: must not be a key. */
  commented?: string;
  /** Every key gives the same answer (static:). */
  answersEverything?: boolean;
  /** Starts what the table needs (a database server); run before the first test. */
  setup?: () => Promise<void>;
  /** Why the backend cannot be tested here (a missing server program). */
  skip?: string;
}

function postmapSource(name: string): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    [
      "# commented-key value-from-comment",
      "",
      "alice\t" + VALUE,
      "   ",
      "spaced   text with",
      "  two spaces   ",
      "Bob@Example.COM  mixed",
    ].join("\n") + "\n",
  );
  return path;
}

function hashFixture(): string {
  const src = postmapSource("hash-src");
  const entries = parsePostmapSource(readFileSync(src, "utf8"), () => {});
  writeIndexFile(indexPathOf(src), entries.map((e) => [e.key.toLowerCase(), e.value] as [string, string]), { mode: 0o644 });
  return `hash:${src}`;
}

function aliasHashFixture(): string {
  const src = join(dir, "aliases-src");
  writeFileSync(src, ["# commented-key: value-from-comment", "alice: " + VALUE, "spaced: text", "  with", "Bob: mixed", ""].join("\n"));
  const entries = parseAliasSource(readFileSync(src, "utf8"), () => {});
  writeIndexFile(indexPathOf(src), entries.map((e) => [e.key.toLowerCase(), e.value] as [string, string]), { mode: 0o644 });
  return `hash:${src}`;
}

function sqliteFixture(): string {
  const dbPath = join(dir, "conf.db");
  rmSync(dbPath, { force: true });
  const db = new Database(dbPath, { create: true });
  db.run("CREATE TABLE t (k TEXT, v TEXT)");
  db.run("INSERT INTO t VALUES ('alice', ?), ('spaced', ?), ('bob@example.com', 'mixed')", [VALUE, SPACED]);
  db.close();
  const cf = join(dir, "conf-sqlite.cf");
  writeFileSync(cf, `# sqlite table\ndbpath = ${dbPath}\nquery = SELECT v FROM t\n  WHERE k = '%s'\n`);
  return `sqlite:${cf}`;
}

/** The conformance rows in a server database; both SQL fixtures load the same. */
const SQL_ROWS = `CREATE TABLE t (k VARCHAR(100), v VARCHAR(100));
INSERT INTO t VALUES ('alice', '${VALUE}'), ('spaced', '${SPACED}'), ('bob@example.com', 'mixed');
`;

let mariadb: MariaDb | undefined;
let postgres: Postgres | undefined;
afterAll(async () => {
  await mariadb?.remove();
  await postgres?.remove();
});

const FIXTURES: Fixture[] = [
  {
    name: "hash",
    make: hashFixture,
    key: "alice",
    spacedKey: "spaced",
    absent: "carol",
    caseVariant: { key: "ALICE", value: VALUE },
    mixedCaseKey: { lookup: "bob@example.com", value: "mixed" },
    commented: "commented-key",
  },
  {
    name: "hash (aliases format)",
    make: aliasHashFixture,
    key: "alice",
    absent: "carol",
    caseVariant: { key: "Alice", value: VALUE },
    mixedCaseKey: { lookup: "bob", value: "mixed" },
    commented: "commented-key",
  },
  {
    name: "texthash",
    make: () => `texthash:${postmapSource("texthash-src")}`,
    key: "alice",
    spacedKey: "spaced",
    absent: "carol",
    caseVariant: { key: "ALICE", value: VALUE },
    mixedCaseKey: { lookup: "bob@example.com", value: "mixed" },
    commented: "commented-key",
  },
  {
    name: "inline",
    make: () => `inline:{ alice=${VALUE}, { spaced = ${SPACED} }, Bob@Example.COM=mixed }`,
    key: "alice",
    spacedKey: "spaced",
    absent: "carol",
    caseVariant: { key: "ALICE", value: VALUE },
    mixedCaseKey: { lookup: "bob@example.com", value: "mixed" },
  },
  {
    name: "static",
    make: () => `static:{ ${SPACED} }`,
    key: "anything",
    spacedKey: "anything",
    absent: "whatever",
    answersEverything: true,
  },
  ...(["regexp", "pcre"] as const).map((type) => ({
    name: type,
    make: () => {
      const path = join(dir, `${type}-src`);
      writeFileSync(
        path,
        [
          "# /^commented-key$/ value-from-comment",
          `/^alice$/ ${VALUE}`,
          "",
          "/^spaced$/",
          `  ${SPACED}`,
          "/^Bob@Example\\.COM$/ mixed",
        ].join("\n") + "\n",
      );
      return `${type}:${path}`;
    },
    key: "alice",
    spacedKey: "spaced",
    absent: "carol",
    caseVariant: { key: "ALICE", value: VALUE },
    mixedCaseKey: { lookup: "bob@example.com", value: "mixed" },
    commented: "commented-key",
  })),
  {
    name: "cidr",
    make: () => {
      const path = join(dir, "cidr-src");
      writeFileSync(path, ["# 198.51.100.7 value-from-comment", `192.0.2.1 ${VALUE}`, "", "2001:DB8::/32", `  ${SPACED}`].join("\n") + "\n");
      return `cidr:${path}`;
    },
    key: "192.0.2.1",
    spacedKey: "2001:db8::5",
    absent: "192.0.2.2",
    // IPv6 text in any letter case is the same address
    caseVariant: { key: "2001:DB8::5", value: SPACED },
    commented: "198.51.100.7",
  },
  {
    name: "sqlite",
    make: sqliteFixture,
    key: "alice",
    spacedKey: "spaced",
    absent: "carol",
    caseVariant: { key: "ALICE", value: VALUE },
    mixedCaseKey: { lookup: "BOB@example.com", value: "mixed" },
  },
  ...[
    { name: "socketmap", make: () => `socketmap:unix:${socketmapServer.address}:conf` },
    { name: "tcp", make: () => `tcp:${tcpServer.address}` },
    ...(slapd
      ? [
          {
            name: "ldap",
            make: () => {
              const cf = join(dir, "conf-ldap.cf");
              writeFileSync(
                cf,
                `# ldap table\nserver_host = ${slapd.url}\nversion = 3\nbind_dn = ${ROOT_DN}\nbind_pw = ${ROOT_PW}\n` +
                  `search_base = ou=conf,${SUFFIX}\nquery_filter = (uid=%s)\nresult_attribute =\n  description\n`,
              );
              return `ldap:${cf}`;
            },
          },
        ]
      : []),
  ].map((f) => ({
    ...f,
    key: "alice",
    spacedKey: "spaced",
    absent: "carol",
    caseVariant: { key: "ALICE", value: VALUE },
    mixedCaseKey: { lookup: "BOB@example.com", value: "mixed" },
  })),
  {
    name: "mysql",
    skip: MARIADB_MISSING,
    async setup() {
      mariadb = await startMariaDb();
      await mariadb.sql(`CREATE DATABASE conf; CREATE USER 'conf'@'localhost' IDENTIFIED BY 'pw'; GRANT SELECT ON conf.* TO 'conf'@'localhost'; USE conf; ${SQL_ROWS}`);
    },
    make: () => {
      const cf = join(dir, "conf-mysql.cf");
      writeFileSync(cf, `# mysql table\nhosts = unix:${mariadb!.socket}\nuser = conf\npassword = pw\ndbname = conf\nquery = SELECT v FROM t\n  WHERE k = '%s'\n`);
      return `mysql:${cf}`;
    },
    key: "alice",
    spacedKey: "spaced",
    absent: "carol",
    caseVariant: { key: "ALICE", value: VALUE },
    mixedCaseKey: { lookup: "BOB@example.com", value: "mixed" },
  },
  {
    name: "pgsql",
    skip: POSTGRES_MISSING,
    async setup() {
      postgres = await startPostgres();
      await postgres.sql("CREATE USER conf PASSWORD 'pw';\nCREATE DATABASE conf OWNER conf;\n");
      await postgres.sql(`SET ROLE conf;\n${SQL_ROWS}`, "conf");
    },
    make: () => {
      const cf = join(dir, "conf-pgsql.cf");
      writeFileSync(cf, `# pgsql table\nhosts = inet:127.0.0.1:${postgres!.port}\nuser = conf\npassword = pw\ndbname = conf\nquery = SELECT v FROM t\n  WHERE k = '%s'\n`);
      return `pgsql:${cf}`;
    },
    key: "alice",
    spacedKey: "spaced",
    absent: "carol",
    caseVariant: { key: "ALICE", value: VALUE },
    mixedCaseKey: { lookup: "BOB@example.com", value: "mixed" },
  },
];

/** Tables whose owner is not a file's: the configuration itself, or a server. */
const NOT_FILE_OWNED = ["inline", "static", "socketmap", "tcp"];
/** Tables that see only the whole key. */
const PATTERN_TABLES = ["regexp", "pcre", "cidr", "socketmap", "tcp"];

for (const f of FIXTURES) {
  describe.skipIf(f.skip !== undefined)(`table conformance: ${f.name}${f.skip ? ` (skipped: ${f.skip})` : ""}`, () => {
    if (f.setup) beforeAll(f.setup, 90_000);
    let table: Table;
    const open = () => (table ??= openTableUncached(f.make(), undefined));
    const expectedValue = () => (f.answersEverything ? SPACED : VALUE);

    test("a present key gives its value", async () => {
      expect(await open().lookup(f.key)).toBe(expectedValue());
    });

    test("an absent key gives undefined", async () => {
      const v = await open().lookup(f.absent);
      if (f.answersEverything) expect(v).toBe(SPACED);
      else expect(v).toBeUndefined();
    });

    test("the empty key is not found", async () => {
      const v = await open().lookup("");
      if (f.answersEverything) expect(v).toBe(SPACED);
      else expect(v).toBeUndefined();
    });

    if (f.spacedKey) {
      test("a value keeps its inner white space and loses the outer", async () => {
        expect(await open().lookup(f.spacedKey!)).toBe(SPACED);
      });
    }

    if (f.caseVariant) {
      test("a key looked up in another letter case is found", async () => {
        expect(await open().lookup(f.caseVariant!.key)).toBe(f.caseVariant!.value);
      });
    }

    if (f.mixedCaseKey) {
      test("a key written with capitals is found in lower case", async () => {
        expect(await open().lookup(f.mixedCaseKey!.lookup)).toBe(f.mixedCaseKey!.value);
      });
    }

    if (f.commented) {
      test("comment lines are not entries", async () => {
        expect(await open().lookup(f.commented!)).toBeUndefined();
      });
    }

    test("owner() reports who owns the table", () => {
      const owner = open().owner();
      expect(["trusted", "untrusted"]).toContain(owner.status);
      expect(owner.status === "trusted").toBe(owner.uid === 0);
      if (process.getuid?.() !== 0 && !NOT_FILE_OWNED.includes(f.name)) expect(owner).toEqual({ status: "untrusted", uid: process.getuid!() });
    });

    test("kind says whether partial keys make sense", () => {
      expect(open().kind).toBe(PATTERN_TABLES.includes(f.name) ? "pattern" : "fixed");
    });

    test("lookups after close() fail with TableError", async () => {
      const t = openTableUncached(f.make(), undefined);
      expect(await t.lookup(f.key)).toBe(expectedValue());
      t.close();
      await expect(t.lookup(f.key)).rejects.toBeInstanceOf(TableError);
    });
  });
}

describe("table conformance: unix:passwd.byname", () => {
  const t = openTableUncached("unix:passwd.byname", undefined);
  test("root is found with its passwd line, in any case", async () => {
    expect(await t.lookup("root")).toMatch(/^root:[^:]*:0:0:/);
    expect(await t.lookup("ROOT")).toBe((await t.lookup("root"))!);
  });
  test("an unknown user is not found", async () => {
    expect(await t.lookup("no-such-user-here")).toBeUndefined();
  });
  test("it is trusted and fixed", () => {
    expect(t.owner().status).toBe("trusted");
    expect(t.kind).toBe("fixed");
  });
});

describe("table conformance: fail", () => {
  test("every lookup fails with TableError", async () => {
    const t = openTableUncached("fail:test", undefined);
    await expect(t.lookup("x")).rejects.toBeInstanceOf(TableError);
  });
});

describe("openTable: one shared table per specification", () => {
  test("the same specification and options give the same table; closing it drops it from the cache", async () => {
    const { openTable, closeAllTables } = await import("../../../../src/global/tables/open-table.ts");
    const a = openTable("inline:{ k=v }");
    expect(openTable("inline:{ k=v }")).toBe(a);
    expect(openTable("inline:{ k=v }", undefined, { fold: false })).not.toBe(a);
    a.close();
    const b = openTable("inline:{ k=v }");
    expect(b).not.toBe(a);
    expect(await b.lookup("K")).toBe("v");
    closeAllTables();
    await expect(b.lookup("k")).rejects.toBeInstanceOf(TableError);
    expect(await openTable("inline:{ k=v }").lookup("k")).toBe("v");
    closeAllTables();
  });

  test("proxy: is ignored and a missing type is an error", async () => {
    expect(await openTableUncached("proxy:inline:{ k=v }", undefined).lookup("k")).toBe("v");
    expect(() => openTableUncached("/etc/aliases", undefined)).toThrow(TableError);
    expect(() => openTableUncached("nosuch:x", undefined)).toThrow("unsupported dictionary type: nosuch");
  });
});
