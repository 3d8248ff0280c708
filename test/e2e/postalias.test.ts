/**
 * postalias and newaliases through their command links: the aliases format,
 * `-q` printing the right-hand side, `key:<TAB>value` output, the "@"
 * entry, and newaliases rebuilding every alias_database entry (also as
 * `postern newaliases` and with sendmail's -oA).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { configDir, removeDir, run, tempDir } from "../helpers/run.ts";

const dir = tempDir("postern-postalias-");
const conf = configDir("");
afterAll(() => {
  removeDir(dir);
  removeDir(conf);
});

const env = { MAIL_CONFIG: conf };

function aliasFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("postalias", () => {
  const aliases = aliasFile(
    "aliases",
    [
      "# system aliases",
      "Postmaster: root",
      "root: admin, \"|/usr/bin/procmail -a x\", /var/log/root.mail",
      "list: a,",
      "   b,",
      "\tc@example.com",
      "team: :include:/etc/postern/team",
      "bad line",
      "",
    ].join("\n"),
  );

  test("builds the index; warns about the bad line", async () => {
    const r = await run("postalias", [aliases], { env });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`postalias: warning: ${aliases}, line 8: need name:value pair\n`);
    expect(existsSync(`${aliases}.sqlite`)).toBe(true);
  });

  test("-q prints the right-hand side as written; names fold to lower case", async () => {
    expect(await run("postalias", ["-q", "ROOT", aliases], { env })).toEqual({
      code: 0,
      stdout: 'admin, "|/usr/bin/procmail -a x", /var/log/root.mail\n',
      stderr: "",
    });
    expect((await run("postalias", ["-q", "team", aliases], { env })).stdout).toBe(":include:/etc/postern/team\n");
    expect((await run("postalias", ["-q", "nobody-here", aliases], { env })).code).toBe(1);
  });

  test("continuation lines join into one value, spaced as Postfix does", async () => {
    expect((await run("postalias", ["-q", "list", aliases], { env })).stdout).toBe("a, b, c@example.com\n");
  });

  test("-q - and -s print key:<TAB>value; the index ends with the '@' entry", async () => {
    const q = await run("postalias", ["-q", "-", aliases], { env, stdin: "postmaster\nnone\nlist\n" });
    expect(q.stdout).toBe("postmaster:\troot\nlist:\ta, b, c@example.com\n");
    const s = await run("postalias", ["-s", aliases], { env });
    expect(s.stdout.split("\n").filter(Boolean)).toEqual([
      "postmaster:\troot",
      'root:\tadmin, "|/usr/bin/procmail -a x", /var/log/root.mail',
      "list:\ta, b, c@example.com",
      "team:\t:include:/etc/postern/team",
      "@:\t@",
    ]);
  });

  test("an alias table is an ordinary hash: table to postmap", async () => {
    expect((await run("postmap", ["-q", "postmaster", `hash:${aliases}`], { env })).stdout).toBe("root\n");
  });
});

describe("newaliases", () => {
  const typed = aliasFile("typed-aliases", "root: admin\n");
  const bare = aliasFile("bare-aliases", "abuse: root\n");
  const direct = aliasFile("direct-aliases", "x: y\n");
  const nl = configDir(`alias_database = "hash:${typed}, ${bare}, texthash:${direct}"\n`);
  afterAll(() => removeDir(nl));

  test("rebuilds every indexed alias_database entry and leaves the others", async () => {
    const r = await run("newaliases", [], { env: { MAIL_CONFIG: nl } });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`newaliases: texthash:${direct} is read directly and needs no rebuilding\n`);
    expect((await run("postalias", ["-q", "root", typed], { env })).stdout).toBe("admin\n");
    expect((await run("postalias", ["-q", "abuse", bare], { env })).stdout).toBe("root\n");
    expect(existsSync(`${direct}.sqlite`)).toBe(false);
  });

  test("a changed alias file is rebuilt by the next run", async () => {
    writeFileSync(typed, "root: someone-else\n");
    const before = statSync(`${typed}.sqlite`).ino;
    expect((await run("postern", ["newaliases", "-C", nl])).code).toBe(0);
    expect(statSync(`${typed}.sqlite`).ino).not.toBe(before);
    expect((await run("postalias", ["-q", "root", typed], { env })).stdout).toBe("someone-else\n");
  });

  test("-oA names the database instead of alias_database", async () => {
    const other = aliasFile("other-aliases", "mailer-daemon: postmaster\n");
    expect((await run("newaliases", [`-oA${other}`], { env: { MAIL_CONFIG: nl } })).code).toBe(0);
    expect((await run("postalias", ["-q", "mailer-daemon", other], { env })).stdout).toBe("postmaster\n");
  });

  test("a missing alias file is an error, exit 1", async () => {
    const broken = configDir(`alias_database = "hash:${join(dir, "missing")}"\n`);
    const r = await run("newaliases", [], { env: { MAIL_CONFIG: broken } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`newaliases: error: open ${join(dir, "missing")}: No such file or directory\n`);
    removeDir(broken);
  });
});
