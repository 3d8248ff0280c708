/** The one executable: dispatch by invoked name and by `postern COMMAND`, help, version, check and start. */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bin, cleanEnv, configDir, DIST, removeDir, ROOT, run, tempDir, type RunResult } from "../helpers/run.ts";
import { ROLES, symlinkNames } from "../../src/roles.ts";
import { VERSION } from "../../src/version.ts";

const cleanup: string[] = [];
afterAll(() => cleanup.forEach(removeDir));

/** Runs dist/postern under another name (a symlink in a temp directory). */
async function runAs(name: string, args: string[]): Promise<RunResult> {
  const dir = tempDir("postern-argv0-");
  cleanup.push(dir);
  const link = join(dir, name);
  symlinkSync(bin("postern"), link);
  const proc = Bun.spawn([link, ...args], { env: cleanEnv(), stdin: "ignore", stdout: "pipe", stderr: "pipe", argv0: link });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** A private configuration that `check` can use as any user: its own queue and log file. */
function checkableConfig(extra = ""): string {
  const dir = configDir();
  cleanup.push(dir);
  const text = [
    `queue_directory = "${join(dir, "queue")}"`,
    `maillog_file = "${join(dir, "maillog")}"`,
    // when the tests run as root, the queue's owner must be a real user other than root
    'mail_owner = "nobody"',
    extra,
  ].join("\n");
  writeFileSync(join(dir, "postern.toml"), text + "\n");
  return dir;
}

describe("help and version", () => {
  for (const form of ["help", "--help"]) {
    test(`postern ${form} lists every command with one line each`, async () => {
      const r = await run("postern", [form]);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("");
      const listed = new Map<string, string>();
      for (const m of r.stdout.matchAll(/^ {2}(\S+) +(\S.*)$/gm)) listed.set(m[1]!, m[2]!);
      for (const [name, entry] of Object.entries(ROLES)) {
        if (entry.internal) expect(listed.has(name)).toBe(false);
        else expect(listed.get(name)).toBe(entry.summary);
      }
      expect(listed.has("help")).toBe(true);
      expect(listed.has("--version")).toBe(true);
    });
  }

  test("postern --version prints the version, the same as package.json's", async () => {
    const r = await run("postern", ["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`postern ${VERSION}\n`);
    expect(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version).toBe(VERSION);
  });

  test("postconf mail_version is the same version", async () => {
    expect((await run("postconf", ["-h", "mail_version"])).stdout).toBe(`${VERSION}\n`);
  });
});

describe("dispatch", () => {
  test("no command: usage on stderr, exit 64", async () => {
    const r = await run("postern");
    expect(r.code).toBe(64);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("usage: postern [-c CONFIG_DIR] COMMAND");
  });

  test("an unknown command: its name and the usage on stderr, exit 64", async () => {
    const r = await run("postern", ["frobnicate", "x"]);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`postern: unknown command "frobnicate"\nusage: postern [-c CONFIG_DIR] COMMAND [ARGS...]; 'postern help' lists the commands\n`);
  });

  test("names of Object.prototype are unknown commands, not crashes", async () => {
    for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
      const r = await run("postern", [name]);
      expect(r.code).toBe(64);
      expect(r.stderr).toContain(`unknown command "${name}"`);
    }
  });

  test("postern postconf and the postconf link give the same answer", async () => {
    const a = await run("postern", ["postconf", "-h", "mail_name"]);
    const b = await run("postconf", ["-h", "mail_name"]);
    expect(a).toEqual({ code: 0, stdout: "postern\n", stderr: "" });
    expect(b).toEqual(a);
  });

  test("the build links every command name to the one executable", () => {
    expect(symlinkNames()).toEqual(
      expect.arrayContaining(["sendmail", "mailq", "newaliases", "postqueue", "postsuper", "postcat", "postconf", "postmap", "postalias", "postlog", "postfix"]),
    );
    for (const name of symlinkNames()) {
      expect(existsSync(join(DIST, name))).toBe(true);
      expect(readlinkSync(join(DIST, name))).toBe("postern");
    }
  });

  test("a link under a name that is not a command behaves as postern", async () => {
    const r = await runAs("my-mta", ["--version"]);
    expect(r).toEqual({ code: 0, stdout: `postern ${VERSION}\n`, stderr: "" });
  });

  test("internal roles and postern-only commands are not reached by the invoked name", async () => {
    for (const name of ["master", "check", "start"]) {
      const r = await runAs(name, ["--version"]);
      expect(r.stdout).toBe(`postern ${VERSION}\n`);
    }
  });

  test("the invoked name is the basename: a link in another directory still dispatches", async () => {
    const r = await runAs("postconf", ["-h", "mail_name"]);
    expect(r).toEqual({ code: 0, stdout: "postern\n", stderr: "" });
  });
});

describe("check and start", () => {
  test("postern check: 0 for a good file", async () => {
    const dir = checkableConfig('myhostname = "mail.example.com"\nmessage_size_limit = 20000000');
    const r = await run("postern", ["check", "-c", dir]);
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
  });

  test("postern check: 78 (EX_CONFIG) with the file and line of each bad value", async () => {
    const dir = checkableConfig(['message_size_limit = "lots"', 'maximal_queue_lifetime = "5x"', "[services.smtp]", 'role = "pickup"'].join("\n"));
    const r = await run("postern", ["check", "-c", dir]);
    expect(r.code).toBe(78);
    const file = join(dir, "postern.toml");
    expect(r.stderr).toContain(`${file}, line 4: message_size_limit: invalid integer value "lots"`);
    expect(r.stderr).toContain(`${file}, line 5: maximal_queue_lifetime: invalid time value "5x"`);
    expect(r.stderr).toContain(`${file}, line 7: services.smtp.role: unknown service role "pickup"`);
  });

  test("postfix -c DIR check is the same check; options after the command are refused", async () => {
    const bad = checkableConfig('smtputf8_enable = "maybe"');
    const r = await run("postfix", ["-c", bad, "check"]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`${join(bad, "postern.toml")}, line 4: smtputf8_enable: invalid boolean value "maybe"`);
    const late = await run("postfix", ["check", "-c", bad]);
    expect(late.code).toBe(64);
  });

  test("postern check warns about unknown names but passes", async () => {
    const dir = checkableConfig('myhostnme = "typo.example"');
    const r = await run("postern", ["check", "-c", dir]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("unknown parameter: myhostnme");
  });

  test("postern start refuses a bad value and starts nothing", async () => {
    const dir = checkableConfig('header_size_limit = "big"');
    const r = await run("postern", ["start", "-c", dir]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`${join(dir, "postern.toml")}, line 4: header_size_limit: invalid integer value "big"`);
    expect(r.stderr).toContain("refusing to start");
    expect((await run("postern", ["status", "-c", dir])).code).toBe(1);
  });

  test("a TOML syntax error stops check with the file and line", async () => {
    const dir = checkableConfig('relayhost = "unterminated');
    const r = await run("postern", ["check", "-c", dir]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`${join(dir, "postern.toml")}, line 4: TOML syntax error`);
  });
});
