/**
 * `npm start`'s embedded configuration (scripts/start.ts): started with
 * POSTERN_DIST at the build under test and POSTERN_VAR at a temporary
 * directory (never the repository's ./var), it prints how to send a test
 * message; doing exactly that puts the message into var/mail/you/new/.
 *
 * npm start is for unprivileged use: as root the test runs it as a user made
 * for the test, as anyone else it runs as that user.
 */
import { afterAll, expect, test } from "bun:test";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { cleanEnv, DIST, ROOT } from "../../helpers/run.ts";
import { isRoot, TestUsers, waitFor } from "./system.ts";

const users = new TestUsers("pdn");
const varDir = mkdtempSync(join(tmpdir(), "postern-npm-start-"));
const etc = join(varDir, "etc");
let proc: ReturnType<typeof Bun.spawn> | undefined;
const hadRepoVar = existsSync(join(ROOT, "var"));

/** Every process started with `-c VAR/etc`, and their children. */
function systemProcesses(): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
      if (argv[0] === "postern" && argv.some((a, i) => a === "-c" && argv[i + 1] === etc)) out.push(Number(name));
    } catch {}
  }
  return out;
}

afterAll(async () => {
  proc?.kill("SIGTERM");
  await Promise.race([proc?.exited, Bun.sleep(15_000)]);
  // whatever did not stop with it
  for (const pid of systemProcesses()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  rmSync(varDir, { recursive: true, force: true });
  users.removeAll();
});

/** The argv that runs `argv` as `user` (or as ourselves). */
function as(user: PasswdEntry | undefined, argv: string[]): string[] {
  return user ? ["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", ...argv] : argv;
}

test("npm start: the printed sendmail command delivers to var/mail/you/new/", async () => {
  let user: PasswdEntry | undefined;
  if (isRoot) {
    user = users.add("s", join(varDir, "home"));
    chownSync(varDir, user.uid, user.gid);
  }
  const env = cleanEnv({ POSTERN_DIST: DIST, POSTERN_VAR: varDir, ...(user ? { HOME: user.home, USER: user.name, LOGNAME: user.name } : {}) });
  proc = Bun.spawn(as(user, [process.execPath, join(ROOT, "scripts/start.ts")]), { cwd: ROOT, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let out = "";
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc!.stdout as ReadableStream<Uint8Array>) out += decoder.decode(chunk, { stream: true });
  })();

  // what start.ts prints: the command to send with, and where to read the message
  const sendLine = await waitFor("the send instructions", () => /^ {2}echo "Subject: hello" \| (\S+) -C (\S+) -i you@localhost$/m.exec(out) ?? undefined);
  const readLine = await waitFor("where to read it", () => /read it in (\S+)\/$/m.exec(out) ?? undefined);
  expect(sendLine[1]).toBe(join(DIST, "sendmail"));
  expect(sendLine[2]).toBe(etc);
  expect(readLine[1]).toBe(join(varDir, "mail", "you", "new"));
  expect(existsSync(join(etc, "postern.toml"))).toBe(true);
  if (!hadRepoVar) expect(existsSync(join(ROOT, "var"))).toBe(false);

  await waitFor("the system to run", () => /postfix\/master\[\d+\]: daemon started/.test(out));
  await waitFor("the queue manager's socket", () => existsSync(join(varDir, "spool", "public", "qmgr")));
  const send = Bun.spawn(as(user, [sendLine[1]!, "-C", sendLine[2]!, "-i", "you@localhost"]), { env, stdin: new Blob(["Subject: hello\n"]), stdout: "pipe", stderr: "pipe" });
  expect(await send.exited).toBe(0);

  const newDir = readLine[1]!;
  const file = await waitFor("the message in var/mail/you/new/", () => (existsSync(newDir) ? readdirSync(newDir)[0] : undefined));
  const text = readFileSync(join(newDir, file), "utf8");
  expect(text).toContain("Subject: hello\n");
  expect(text).toContain("Delivered-To: you@localhost\n");
  // the log is on stdout: the delivery line of the foreground system
  await waitFor("the delivery line", () => /postfix\/local\[\d+\]: [0-9A-F]+: to=<you@localhost>, .*status=sent \(delivered to maildir\)/.test(out));
  // everything ran as the user who started it
  for (const pid of systemProcesses()) {
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    expect(Number(uid)).toBe(user?.uid ?? process.getuid!());
  }

  proc.kill("SIGINT");
  expect(await proc.exited).toBe(0);
  expect(systemProcesses()).toEqual([]);
});
