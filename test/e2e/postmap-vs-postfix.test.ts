/**
 * postern's postmap and postalias against Debian's Postfix 3.7 ones, side by
 * side on the same inputs: the same answers (stdout and exit status) for
 * -q, -q - and -s (sorted: Postfix lists in hash order) over the postmap and
 * aliases formats, regexp: and cidr: files, and inline: tables. Warnings are
 * not compared: postern words a few differently (see docs/tables.md).
 *
 * Without /usr/sbin/postmap the comparison is skipped, except in CI (CI is
 * set), where a missing Postfix is a failure.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanEnv, configDir, removeDir, ROOT, run, tempDir } from "../helpers/run.ts";

const POSTFIX_POSTMAP = "/usr/sbin/postmap";
const havePostfix = existsSync(POSTFIX_POSTMAP);
if (!havePostfix && !process.env.CI) console.warn(`postmap-vs-postfix: ${POSTFIX_POSTMAP} is missing; skipping the comparison`);

const dir = tempDir("postern-vs-postfix-");
const postfixConf = tempDir("postfix-conf-");
writeFileSync(join(postfixConf, "main.cf"), "compatibility_level = 3.7\n");
const conf = configDir("");
afterAll(() => {
  removeDir(dir);
  removeDir(postfixConf);
  removeDir(conf);
});

interface Answer {
  code: number;
  stdout: string;
}

async function postfix(cmd: "postmap" | "postalias", args: string[], stdin?: string): Promise<Answer> {
  const proc = Bun.spawn([`/usr/sbin/${cmd}`, ...args], {
    cwd: dir,
    env: cleanEnv({ MAIL_CONFIG: postfixConf }),
    stdin: stdin === undefined ? "ignore" : new Blob([stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  return { code, stdout };
}

async function postern(cmd: "postmap" | "postalias", args: string[], stdin?: string): Promise<Answer> {
  const r = await run(cmd, args, { env: { MAIL_CONFIG: conf }, stdin, cwd: dir });
  return { code: r.code, stdout: r.stdout };
}

/** Both answers, with -s output sorted and Postfix's NIS bookkeeping entries left out. */
async function both(cmd: "postmap" | "postalias", args: string[], stdin?: string): Promise<[Answer, Answer]> {
  const [a, b] = await Promise.all([postfix(cmd, args, stdin), postern(cmd, args, stdin)]);
  if (args.includes("-s")) {
    const tidy = (s: string) => s.split("\n").filter((l) => l && !l.startsWith("YP_")).sort().join("\n");
    return [{ ...a, stdout: tidy(a.stdout) }, { ...b, stdout: tidy(b.stdout) }];
  }
  return [a, b];
}

function input(name: string, fromGolden?: string, text?: string): string {
  const path = join(dir, name);
  if (fromGolden) copyFileSync(join(ROOT, "test/golden/tables", fromGolden), path);
  else writeFileSync(path, text!);
  return path;
}

describe.skipIf(!havePostfix && !process.env.CI)("postmap and postalias side by side with Postfix 3.7", () => {
  test("postmap format: build, -s, -q, -q -", async () => {
    const src = input("pm", "postmap.input");
    expect((await postfix("postmap", [src])).code).toBe(0);
    expect((await postern("postmap", [src])).code).toBe(0);
    const [a, b] = await both("postmap", ["-s", src]);
    expect(b).toEqual(a);
    for (const key of ["key1", "KEY1", '"quoted key"', "quoted key", '"foo bar"@x.com', "MIXED@example.com", "été", "ÉTÉ", "k2", "nokeyvalue", "absent"]) {
      const [x, y] = await both("postmap", ["-q", key, src]);
      expect({ key, ...y }).toEqual({ key, ...x });
    }
    const keys = 'key2\nmissing\nk3\n""\na"b c"d\n';
    const [x, y] = await both("postmap", ["-q", "-", src], keys);
    expect(y).toEqual(x);
    const [fx, fy] = await both("postmap", ["-fq", "KEY1", src]);
    expect(fy).toEqual(fx);
  });

  test("aliases format: build, -s, -q, -q -", async () => {
    const src = input("al", "aliases.input");
    expect((await postfix("postalias", [src])).code).toBe(0);
    expect((await postern("postalias", [src])).code).toBe(0);
    const [a, b] = await both("postalias", ["-s", src]);
    expect(b).toEqual(a);
    for (const key of ["root", "ROOT", "list", "quoted name", "with:colon", "@", "b1", "c9", "user@dom", "empty", "absent"]) {
      const [x, y] = await both("postalias", ["-q", key, src]);
      expect({ key, ...y }).toEqual({ key, ...x });
    }
    const [x, y] = await both("postalias", ["-q", "-", src], "root\nnone\nlist\nd1\n");
    expect(y).toEqual(x);
  });

  test("regexp: the same answers", async () => {
    const src = input(
      "re",
      undefined,
      [
        "/^(.*)-outgoing@(.*)$/   550 Use ${1}@${2} instead",
        "/^Case@/i   case-sensitive",
        "!/@/   no at sign $$ here",
        "if /\\.example\\.com$/",
        "/^a(b)?c@/   matched [$1]",
        "endif",
        "/bre\\(x\\)\\{2\\}/x  bre $1",
        "/[[:digit:]]{3}/ three digits",
        "/(a)/ $2 bad",
        "",
      ].join("\n"),
    );
    const keys = ["list-outgoing@ex.org", "Case@x", "case@x", "noat", "ac@foo.example.com", "abc@foo.example.com", "abc@bar", "brexx@", "q123@", "a@"];
    const [x, y] = await both("postmap", ["-q", "-", `regexp:${src}`], keys.join("\n") + "\n");
    expect(y).toEqual(x);
  });

  test("cidr: the same answers", async () => {
    const src = input(
      "cidr",
      undefined,
      ["192.168.1.1 one", "192.168.0.0/16 sixteen", "10.1.2.3/8 badbits", "!172.16.0.0/12 not-private", "if 127.0.0.0/8", "127.0.0.1 lo", "endif", "2001:DB8::/32 v6", "::/0 any6", ""].join("\n"),
    );
    const keys = ["192.168.1.1", "192.168.2.2", "172.16.0.1", "127.0.0.1", "127.0.0.2", "8.8.8.8", "2001:db8::5", "::1", "foo", "10.0.0.1", "001.2.3.4"];
    const [x, y] = await both("postmap", ["-q", "-", `cidr:${src}`], keys.join("\n") + "\n");
    expect(y).toEqual(x);
  });

  test("inline: the same answers", async () => {
    const spec = "inline:{ Foo=Bar, a=1;b=2, { baz = text with  spaces }, x=1, x=2 }";
    for (const key of ["foo", "FOO", "a", "baz", "x", "none"]) {
      const [x, y] = await both("postmap", ["-q", key, spec]);
      expect({ key, ...y }).toEqual({ key, ...x });
    }
  });
});
