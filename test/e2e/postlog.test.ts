/** postlog and the log destinations: maillog_file lines and syslog datagrams, shaped as Postfix's. */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { configDir, removeDir, ROOT, run, tempDir } from "../helpers/run.ts";

const cleanup: string[] = [];
afterAll(() => cleanup.forEach(removeDir));

const TIME = "[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d";

/** A config directory whose log goes to its own maillog file. */
function fileLogConfig(extra = ""): { dir: string; logFile: string } {
  const tmp = tempDir("postern-postlog-");
  cleanup.push(tmp);
  const logFile = join(tmp, "maillog");
  const dir = configDir(`myhostname = "mail.example.com"\nmaillog_file = "${logFile}"\n${extra}`);
  cleanup.push(dir);
  return { dir, logFile };
}

function logLines(file: string): string[] {
  return readFileSync(file, "utf8").split("\n").filter(Boolean);
}

describe("postlog to maillog_file", () => {
  test("one line: Mmm dd hh:mm:ss HOST postfix/postlog[PID]: text", async () => {
    const { dir, logFile } = fileLogConfig();
    const r = await run("postlog", ["-c", dir, "hello", "world"]);
    expect(r).toEqual({ code: 0, stdout: "", stderr: "" });
    const lines = logLines(logFile);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^${TIME} mail postfix/postlog\\[\\d+\\]: hello world$`));
  });

  test("-p sets the severity prefix Postfix uses", async () => {
    const { dir, logFile } = fileLogConfig();
    for (const p of ["info", "warn", "warning", "err", "error", "crit", "fatal", "panic", "notice"]) {
      await run("postlog", ["-c", dir, "-p", p, `as ${p}`]);
    }
    const texts = logLines(logFile).map((l) => l.replace(new RegExp(`^${TIME} mail postfix/postlog\\[\\d+\\]: `), ""));
    expect(texts).toEqual([
      "as info",
      "warning: as warn",
      "warning: as warning",
      "error: as err",
      "error: as error",
      "fatal: as crit",
      "fatal: as fatal",
      "panic: as panic",
      "as notice",
    ]);
  });

  test("-t replaces the whole tag", async () => {
    const { dir, logFile } = fileLogConfig();
    await run("postlog", ["-c", dir, "-t", "backup-script", "-p", "warn", "disk", "full"]);
    expect(logLines(logFile)[0]).toMatch(new RegExp(`^${TIME} mail backup-script\\[\\d+\\]: warning: disk full$`));
  });

  test("syslog_name changes the tag's first part", async () => {
    const { dir, logFile } = fileLogConfig('syslog_name = "postfix-out"\n');
    await run("postlog", ["-c", dir, "x"]);
    expect(logLines(logFile)[0]).toContain(" postfix-out/postlog[");
  });

  test("without text, each line of standard input is one log line", async () => {
    const { dir, logFile } = fileLogConfig();
    const r = await run("postlog", ["-c", dir, "-p", "err"], { stdin: "first line\nsecond line\n\nthird without newline" });
    expect(r.code).toBe(0);
    const lines = logLines(logFile);
    expect(lines.map((l) => l.replace(/^.*?\]: /, ""))).toEqual(["error: first line", "error: second line", "error: third without newline"]);
    const pids = new Set(lines.map((l) => /\[(\d+)\]/.exec(l)![1]));
    expect(pids.size).toBe(1);
  });

  test("MAIL_CONFIG points postlog at the configuration too", async () => {
    const { dir, logFile } = fileLogConfig();
    await run("postlog", ["via environment"], { env: { MAIL_CONFIG: dir } });
    expect(logLines(logFile)[0]).toEndWith(": via environment");
  });

  test("an unknown priority exits 64 and logs nothing", async () => {
    const { dir, logFile } = fileLogConfig();
    const r = await run("postlog", ["-c", dir, "-p", "loud", "x"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('unknown priority value: "loud"');
    expect(existsSync(logFile)).toBe(false);
  });

  test("a logging parameter that cannot be expanded: a warning naming it, and the text still on stderr", async () => {
    const dir = configDir('syslog_name = "x$syslog_name"\n');
    cleanup.push(dir);
    const r = await run("postlog", ["-c", dir, "still here"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      `postlog: warning: ${dir}/postern.toml, line 1: syslog_name: recursive parameter expansion: $syslog_name -> $syslog_name; logging to stderr\npostlog: still here\n`,
    );
  });

  test("maillog_file = /dev/stdout", async () => {
    const dir = configDir('myhostname = "mx.example.net"\nmaillog_file = "/dev/stdout"\n');
    cleanup.push(dir);
    const r = await run("postlog", ["-c", dir, "to stdout"]);
    expect(r.stdout).toMatch(new RegExp(`^${TIME} mx postfix/postlog\\[\\d+\\]: to stdout\\n$`));
  });

  test("a maillog_file that cannot be opened: a warning on stderr and the line there", async () => {
    const dir = configDir('maillog_file = "/nonexistent/dir/maillog"\n');
    cleanup.push(dir);
    const r = await run("postlog", ["-c", dir, "still logged"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('cannot open maillog_file "/nonexistent/dir/maillog"');
    expect(r.stderr).toContain("still logged");
  });
});

/** Starts the python receiver; resolves once its socket exists. */
async function syslogReceiver(expected: number): Promise<{ socket: string; datagrams: () => Promise<string[]> }> {
  const tmp = tempDir("postern-syslog-");
  cleanup.push(tmp);
  const socket = join(tmp, "log.sock");
  const proc = Bun.spawn(["python3", join(ROOT, "test/helpers/syslog-receiver.py"), socket, String(expected), "15"], {
    stdout: "pipe",
    stderr: "inherit",
  });
  for (let i = 0; i < 500 && !existsSync(socket); i++) await Bun.sleep(10);
  expect(existsSync(socket)).toBe(true);
  return {
    socket,
    datagrams: async () => {
      const out = await new Response(proc.stdout).text();
      await proc.exited;
      return out.split("\n").filter(Boolean).map((l) => JSON.parse(l) as string);
    },
  };
}

describe("postlog to syslog through a unix datagram socket", () => {
  test("<PRI>Mmm dd hh:mm:ss postfix/postlog[PID]: text, PRI = mail (2*8) + severity", async () => {
    const rx = await syslogReceiver(5);
    const dir = configDir(`syslog_socket_path = "${rx.socket}"\n`);
    cleanup.push(dir);
    for (const [p, text] of [["info", "informational"], ["warn", "a warning"], ["err", "an error"], ["crit", "critical"], ["panic", "panicking"]]) {
      const r = await run("postlog", ["-c", dir, "-p", p!, text!]);
      expect(r.stdout).toBe("");
    }
    const got = await rx.datagrams();
    const pri = (d: string) => Number(/^<(\d+)>/.exec(d)?.[1]);
    expect(got.map(pri)).toEqual([2 * 8 + 6, 2 * 8 + 4, 2 * 8 + 3, 2 * 8 + 2, 2 * 8 + 0]);
    const bodies = ["informational", "warning: a warning", "error: an error", "fatal: critical", "panic: panicking"];
    for (const [i, d] of got.entries()) expect(d).toMatch(new RegExp(`^<\\d+>${TIME} postfix/postlog\\[\\d+\\]: ${bodies[i]}$`));
  });

  test("syslog_facility and -t apply to datagrams", async () => {
    const rx = await syslogReceiver(1);
    const dir = configDir(`syslog_socket_path = "${rx.socket}"\nsyslog_facility = "local3"\n`);
    cleanup.push(dir);
    await run("postlog", ["-c", dir, "-t", "mytag", "-p", "warn", "facility check"]);
    const got = await rx.datagrams();
    expect(got).toHaveLength(1);
    expect(got[0]).toMatch(new RegExp(`^<${19 * 8 + 4}>${TIME} mytag\\[\\d+\\]: warning: facility check$`));
  });

  test("lines from standard input become one datagram each", async () => {
    const rx = await syslogReceiver(2);
    const dir = configDir(`syslog_socket_path = "${rx.socket}"\n`);
    cleanup.push(dir);
    await run("postlog", ["-c", dir], { stdin: "one\ntwo\n" });
    expect((await rx.datagrams()).map((d) => d.replace(/^.*\]: /, ""))).toEqual(["one", "two"]);
  });

  test("maillog_file wins over syslog", async () => {
    const rx = await syslogReceiver(1);
    const tmp = tempDir("postern-both-");
    cleanup.push(tmp);
    const dir = configDir(`syslog_socket_path = "${rx.socket}"\nmaillog_file = "${join(tmp, "maillog")}"\n`);
    cleanup.push(dir);
    await run("postlog", ["-c", dir, "to the file"]);
    await run("postlog", ["-c", dir, "again"]);
    // nothing reached the socket: send a probe through a syslog-only config so the receiver ends
    const probe = configDir(`syslog_socket_path = "${rx.socket}"\n`);
    cleanup.push(probe);
    await run("postlog", ["-c", probe, "probe"]);
    expect((await rx.datagrams()).map((d) => d.replace(/^.*\]: /, ""))).toEqual(["probe"]);
    expect(logLines(join(tmp, "maillog")).map((l) => l.replace(/^.*\]: /, ""))).toEqual(["to the file", "again"]);
  });
});
