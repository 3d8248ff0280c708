/**
 * The safe build (docs/architecture.md, "One executable"): a `.env` and a `bunfig.toml` with a
 * `preload` script in the current directory must change nothing for any
 * postern command. A control program compiled without the
 * --no-compile-autoload-* flags shows that the same directory does take
 * over an unprotected executable, so the fixture itself is known to work.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bin, removeDir, run, tempDir, type RunResult } from "../helpers/run.ts";
import { symlinkNames } from "../../src/roles.ts";

const root = tempDir("postern-safe-build-");
const evilDir = join(root, "evil-cwd");
const cleanDir = join(root, "clean-cwd");
const marker = join(root, "PRELOAD-RAN");
const cfg = join(root, "config");

beforeAll(() => {
  mkdirSync(evilDir);
  mkdirSync(cleanDir);
  mkdirSync(cfg);
  writeFileSync(
    join(evilDir, ".env"),
    ["MAIL_CONFIG=/nonexistent-evil", "POSTERN_LOG_STDOUT=1", "MAIL_DEBUG=1", "EVIL_FROM_DOTENV=yes", ""].join("\n"),
  );
  writeFileSync(join(evilDir, "bunfig.toml"), 'preload = ["./evil.ts"]\n\n[run]\npreload = ["./evil.ts"]\n');
  writeFileSync(
    join(evilDir, "evil.ts"),
    `require("node:fs").writeFileSync(${JSON.stringify(marker)}, "preload ran in " + process.argv0 + "\\n", { flag: "a" });\nconsole.log("EVIL preload");\n`,
  );
  // A configuration under which no command can touch the system: no queue, no alias file, a private log.
  writeFileSync(
    join(cfg, "postern.toml"),
    [
      `queue_directory = "${join(root, "no-queue")}"`,
      `alias_maps = "hash:${join(root, "no-aliases", "aliases")}"`,
      `alias_database = "hash:${join(root, "no-aliases", "aliases")}"`,
      `maillog_file = "${join(root, "maillog")}"`,
      `syslog_socket_path = "${join(root, "no-syslog-socket")}"`,
      "",
    ].join("\n"),
  );
});
afterAll(() => removeDir(root));

describe("the fixture takes over an executable built without the safe flags", () => {
  test("control: .env is read and the preload runs", async () => {
    const src = join(root, "control.ts");
    const exe = join(root, "control");
    writeFileSync(src, 'console.log("MAIL_CONFIG=" + (process.env.MAIL_CONFIG ?? ""));\n');
    const build = Bun.spawnSync([process.execPath, "build", "--compile", src, "--outfile", exe], { stdout: "pipe", stderr: "pipe", env: { ...process.env, BUN_BE_BUN: undefined, BUN_OPTIONS: undefined } });
    expect(build.exitCode).toBe(0);
    const proc = Bun.spawnSync([exe], { cwd: evilDir, env: { PATH: "/usr/bin:/bin" }, stdout: "pipe", stderr: "pipe" });
    expect(proc.stdout.toString()).toContain("MAIL_CONFIG=/nonexistent-evil");
    expect(proc.stdout.toString()).toContain("EVIL preload");
    expect(existsSync(marker)).toBe(true);
    rmSync(marker);
  }, 60_000);
});

/** Harmless invocations of every command, with the environment each needs. */
function invocation(name: string): { args: string[]; env?: Record<string, string> } {
  const env = { MAIL_CONFIG: cfg };
  switch (name) {
    case "postern":
      return { args: ["--version"] };
    case "postconf":
      // no MAIL_CONFIG: the .env's must not be read
      return { args: ["-h", "config_directory", "mail_name", "maillog_file"] };
    case "postlog":
      return { args: ["-t", "postern-test/safe-build", "safe build check"], env };
    case "postfix":
      return { args: ["status"], env };
    case "sendmail":
      return { args: ["-bp"], env };
    case "newaliases":
    case "mailq":
      return { args: [], env };
    case "postqueue":
      return { args: ["-p"], env };
    case "postcat":
      return { args: ["-q", "NOSUCHQUEUEID"], env };
    case "postmap":
    case "postalias":
      return { args: ["-q", "nosuchkey", `texthash:${join(root, "no-such-table")}`], env };
    default:
      // a command added later: an option no command has, which just fails
      return { args: ["--postern-test-no-such-option"], env };
  }
}

/** Pids, timestamps and the directory differ from run to run; the rest must not. */
function normalize(r: RunResult, cwd: string): RunResult {
  const n = (s: string) =>
    s
      .replaceAll(cwd, "CWD")
      .replace(/\[\d+\]/g, "[PID]")
      .replace(/\b[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\b/g, "TIME");
  return { code: r.code, stdout: n(r.stdout), stderr: n(r.stderr) };
}

describe("no postern command reads .env or runs bunfig.toml's preload", () => {
  for (const name of ["postern", ...symlinkNames()]) {
    test(`${name}`, async () => {
      const { args, env } = invocation(name);
      bin(name);
      const inEvil = await run(name, args, { cwd: evilDir, env });
      const inClean = await run(name, args, { cwd: cleanDir, env });
      expect(existsSync(marker)).toBe(false);
      for (const text of [inEvil.stdout, inEvil.stderr]) {
        expect(text).not.toContain("EVIL");
        expect(text).not.toContain("nonexistent-evil");
      }
      expect(normalize(inEvil, evilDir)).toEqual(normalize(inClean, cleanDir));
    });
  }

  test("what the harmless invocations print is what a clean directory gives", async () => {
    const version = await run("postern", ["--version"], { cwd: evilDir });
    expect(version.stdout).toMatch(/^postern \d+\.\d+\.\d+\n$/);
    const conf = await run("postconf", ["-h", "config_directory", "mail_name", "maillog_file"], { cwd: evilDir });
    expect(conf).toEqual({ code: 0, stdout: "/etc/postern\npostern\n\n", stderr: "" });
    // the log line went to maillog_file, not to stdout as POSTERN_LOG_STDOUT=1 in .env would have it
    expect(readFileSync(join(root, "maillog"), "utf8")).toMatch(/ postern-test\/safe-build\[\d+\]: safe build check\n/);
    expect(existsSync(marker)).toBe(false);
  });
});
