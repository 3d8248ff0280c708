/**
 * postmap through its command link: building an index, the query modes and
 * their exit statuses, deletes and incremental adds, listing, folding, the
 * index's mode and owner, non-indexed table types, and a table held open by
 * another process seeing the rebuild.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HashTable } from "../../src/global/tables/hash-table.ts";
import { configDir, removeDir, run, tempDir } from "../helpers/run.ts";

const conf = configDir("");
const dir = tempDir("postern-postmap-");
afterAll(() => {
  removeDir(conf);
  removeDir(dir);
});

const env = { MAIL_CONFIG: conf };
const postmap = (args: string[], stdin?: string) => run("postmap", args, { env, stdin, cwd: dir });

function source(name: string, text: string, mode = 0o644): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

describe("postmap: build and query", () => {
  const src = source("access", "# access table\nKey1 value one\n  continued\nkey2\tOK\nMixed@Example.COM  REJECT go away\nkey1 duplicate\n");

  test("building writes SOURCE.sqlite and warns about the duplicate", async () => {
    const r = await postmap([src]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`postmap: warning: ${src}, line 6: duplicate entry: "key1"\n`);
    expect(statSync(`${src}.sqlite`).isFile()).toBe(true);
    expect(readdirSync(dir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });

  test("-q prints the value and exits 0; a missing key exits 1 silently", async () => {
    expect(await postmap(["-q", "KEY1", src])).toEqual({ code: 0, stdout: "value one  continued\n", stderr: "" });
    expect(await postmap(["-q", "nope", `hash:${src}`])).toEqual({ code: 1, stdout: "", stderr: "" });
  });

  test("-f looks up the key as written", async () => {
    expect((await postmap(["-fq", "KEY1", src])).code).toBe(1);
    expect((await postmap(["-fq", "key1", src])).code).toBe(0);
  });

  test("-q - prints key<TAB>value for the keys found, exit 0 when one was", async () => {
    const r = await postmap(["-q", "-", src], "key2\nmissing\nMIXED@example.com\n");
    expect(r).toEqual({ code: 0, stdout: "key2\tOK\nMIXED@example.com\tREJECT go away\n", stderr: "" });
    expect((await postmap(["-q", "-", src], "none\nof\nthese\n")).code).toBe(1);
  });

  test("-s lists the index in source order", async () => {
    const r = await postmap(["-s", src]);
    expect(r.stdout).toBe("key1\tvalue one  continued\nkey2\tOK\nmixed@example.com\tREJECT go away\n");
  });

  test("the first table that has the key answers", async () => {
    const r = await postmap(["-q", "key2", "inline:{key2=from-inline}", src]);
    expect(r.stdout).toBe("from-inline\n");
  });

  test("a missing index is fatal with exit 1", async () => {
    const r = await postmap(["-q", "x", join(dir, "never-built")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`postmap: fatal: open database ${join(dir, "never-built")}.sqlite: No such file or directory\n`);
  });

  test("a missing source is fatal", async () => {
    const r = await postmap([join(dir, "no-source")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`postmap: fatal: open ${join(dir, "no-source")}: No such file or directory\n`);
  });

  test("usage errors exit 1", async () => {
    expect((await postmap([])).stderr).toContain("usage: postmap");
    expect((await postmap(["-q", "a", "-s", src])).stderr).toBe("postmap: fatal: specify only one of -s -q or -d\n");
    expect((await postmap(["-Z", src])).code).toBe(1);
  });
});

describe("postmap: changing an index", () => {
  const src = source("changes", "a 1\nb 2\n");

  test("-d deletes one key and says whether it was there", async () => {
    expect((await postmap([src])).code).toBe(0);
    expect((await postmap(["-d", "A", src])).code).toBe(0);
    expect((await postmap(["-d", "a", src])).code).toBe(1);
    expect((await postmap(["-q", "a", src])).code).toBe(1);
    expect((await postmap(["-q", "b", src])).stdout).toBe("2\n");
  });

  test("-d - deletes the keys read from standard input", async () => {
    expect((await postmap(["-d", "-", src], "b\nnope\n")).code).toBe(0);
    expect((await postmap(["-s", src])).stdout).toBe("");
  });

  test("-i adds entries from standard input, keeping existing keys unless -r", async () => {
    expect((await postmap(["-i", src], "c 3\nd 4\n")).code).toBe(0);
    const dup = await postmap(["-i", src], "C three\n");
    expect(dup.stderr).toBe(`postmap: warning: ${src}.sqlite: duplicate entry: "c"\n`);
    expect((await postmap(["-q", "c", src])).stdout).toBe("3\n");
    expect((await postmap(["-ri", src], "c three\n")).stderr).toBe("");
    expect((await postmap(["-q", "c", src])).stdout).toBe("three\n");
    expect((await postmap(["-wi", src], "d four\n")).stderr).toBe("");
    expect((await postmap(["-q", "d", src])).stdout).toBe("4\n");
  });

  test("a rebuild replaces the index file (a new inode), so readers never see half a table", async () => {
    const before = statSync(`${src}.sqlite`).ino;
    expect((await postmap([src])).code).toBe(0);
    expect(statSync(`${src}.sqlite`).ino).not.toBe(before);
    expect((await postmap(["-s", src])).stdout).toBe("a\t1\nb\t2\n");
  });

  test("a table open in another process sees the rebuild without reopening", async () => {
    const live = source("live", "k old\n");
    expect((await postmap([live])).code).toBe(0);
    const table = new HashTable(`hash:${live}`, live);
    expect(await table.lookup("k")).toBe("old");
    writeFileSync(live, "k new\n");
    expect((await postmap([live])).code).toBe(0);
    let v: string | undefined;
    for (let i = 0; i < 50 && v !== "new"; i++) {
      await Bun.sleep(100);
      v = await table.lookup("k");
    }
    expect(v).toBe("new");
    table.close();
  });
});

describe("postmap: modes and owners as Postfix's", () => {
  test("a new index takes the source's group and other read bits", async () => {
    const src = source("private", "a b\n", 0o640);
    await postmap([src]);
    expect(statSync(`${src}.sqlite`).mode & 0o777).toBe(0o640);
    const open = source("open", "a b\n", 0o604);
    await postmap([open]);
    expect(statSync(`${open}.sqlite`).mode & 0o777).toBe(0o604);
  });

  test("a rebuilt index keeps its mode; -p makes a new one 0644", async () => {
    const src = source("keep", "a b\n", 0o600);
    await postmap([src]);
    chmodSync(src, 0o644);
    await postmap([src]);
    expect(statSync(`${src}.sqlite`).mode & 0o777).toBe(0o600);
    const p = source("dash-p", "a b\n", 0o600);
    await postmap(["-p", p]);
    expect(statSync(`${p}.sqlite`).mode & 0o777).toBe(0o644);
  });

  test.skipIf(process.getuid?.() !== 0)("as root, the index belongs to the source's owner (not with -o)", async () => {
    chmodSync(dir, 0o755); // the source owner must reach the directory
    const shared = join(dir, "shared");
    mkdirSync(shared, { mode: 0o777 });
    chmodSync(shared, 0o777);
    const src = join(shared, "users-table");
    writeFileSync(src, "a b\n");
    chownSync(src, 65534, 65534);
    expect((await postmap([src])).code).toBe(0);
    expect(statSync(`${src}.sqlite`)).toMatchObject({ uid: 65534, gid: 65534 });
    expect((await postmap(["-q", "a", src])).stdout).toBe("b\n");
    const rootOwned = join(dir, "root-dir-users-table");
    writeFileSync(rootOwned, "a b\n");
    chownSync(rootOwned, 65534, 65534);
    // the source owner cannot write in a root-owned directory: Postfix fails the same way
    const denied = await postmap([rootOwned]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("Permission denied");
    expect((await postmap(["-o", rootOwned])).code).toBe(0);
    expect(statSync(`${rootOwned}.sqlite`).uid).toBe(0);
  });
});

describe("postmap: other table types", () => {
  test("regexp, pcre, cidr, texthash, inline and static are queried directly", async () => {
    const re = source("re", "/^(.*)@example\\.com$/ local:$1\n");
    const cidr = source("nets", "192.0.2.0/24 OK\n");
    const th = source("th", "Key v\n");
    expect((await postmap(["-q", "Joe@EXAMPLE.com", `regexp:${re}`])).stdout).toBe("local:Joe\n");
    expect((await postmap(["-q", "Joe@EXAMPLE.com", `pcre:${re}`])).stdout).toBe("local:Joe\n");
    expect((await postmap(["-q", "192.0.2.9", `cidr:${cidr}`])).stdout).toBe("OK\n");
    expect((await postmap(["-q", "KEY", `texthash:${th}`])).stdout).toBe("v\n");
    expect((await postmap(["-q", "a", "inline:{ {a = b c} }"])).stdout).toBe("b c\n");
    expect((await postmap(["-q", "x", "static:{ text here }"])).stdout).toBe("text here\n");
  });

  test("they cannot be built, changed or (for pattern tables) listed", async () => {
    const re = source("re2", "/x/ y\n");
    expect((await postmap([`regexp:${re}`])).stderr).toBe("postmap: fatal: unsupported dictionary type: regexp does not support bulk-mode creation.\n");
    expect((await postmap(["-d", "x", `regexp:${re}`])).stderr).toBe("postmap: fatal: unsupported dictionary type: regexp does not support deletion.\n");
    expect((await postmap(["-s", `regexp:${re}`])).stderr).toBe(`postmap: fatal: table regexp:${re}: sequence operation is not supported\n`);
    expect((await postmap(["-q", "x", "nosuch:thing"])).stderr).toBe("postmap: fatal: unsupported dictionary type: nosuch\n");
  });

  test("-hq - looks up each header line of a message, -bq - each body line", async () => {
    const table = "regexp:{ {/^subject: (.*)/ SUBJECT $1}, {/^body/ BODY} }";
    const msg = "From: a@b\nSubject: hello\n\nbody line\nSubject: not a header\n";
    expect((await postmap(["-hq", "-", table], msg)).stdout).toBe("Subject: hello\tSUBJECT hello\n");
    // in body mode every rule applies to every body line, header-looking or not
    expect((await postmap(["-bq", "-", table], msg)).stdout).toBe("body line\tBODY\nSubject: not a header\tSUBJECT not a header\n");
  });

  test("default_database_type and -c come from the configuration", async () => {
    const other = configDir('default_database_type = "texthash"\n');
    const src = source("typed", "a b\n");
    const r = await run("postmap", ["-c", other, src], { cwd: dir });
    expect(r.stderr).toBe("postmap: fatal: unsupported dictionary type: texthash does not support bulk-mode creation.\n");
    removeDir(other);
  });

  test("-F stores file contents in base64 and decodes them on query", async () => {
    const content = source("cert.pem", "line one\nline two\n");
    const src = source("files", `cert ${content}\n`);
    expect((await postmap(["-F", src])).code).toBe(0);
    expect((await postmap(["-q", "cert", src])).stdout).toBe(`${Buffer.from("line one\nline two\n").toString("base64")}\n`);
    expect((await postmap(["-Fq", "cert", src])).stdout).toBe("line one\nline two\n\n");
  });
});
