/**
 * Maildir durability, watched with strace (issue 9 item 19): the file is
 * fsynced before its link into new/, new/ is fsynced after the link, and
 * the directories that got a new subdirectory (a maildir made on the fly)
 * are fsynced, all before the delivery reports success. Without the
 * directory syncs the link can be lost after a crash on XFS or btrfs.
 *
 * Runs deliverToMaildir() from the source in a child bun under
 * `strace -f -y`; skipped, with a message, when strace is not installed.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { removeDir, ROOT, tempDir } from "../../helpers/run.ts";

const strace = Bun.which("strace");
if (!strace) console.warn("maildir-fsync.test.ts: strace is not installed (apt-get install strace): the maildir fsync audit is skipped");

const dir = tempDir("postern-maildir-fsync-");
afterAll(() => removeDir(dir));

/** The traced calls of one delivery into `maildir`, one per line, without pids. */
async function tracedDelivery(maildir: string): Promise<string[]> {
  const script = join(dir, "deliver.ts");
  writeFileSync(
    script,
    `import { deliverToMaildir } from ${JSON.stringify(join(ROOT, "src/local/worker/maildir-file.ts"))};
const r = await deliverToMaildir({ type: "maildir", dir: process.argv[2], prefix: "", sizeLimit: 0, hostname: "h" }, Buffer.from("Subject: x\\n\\nb\\n"));
process.stdout.write(r.ok ? "RESULT-OK\\n" : "RESULT-FAILED " + r.text + "\\n");
`,
  );
  const log = join(dir, `strace-${Math.random().toString(36).slice(2)}.log`);
  const proc = Bun.spawn([strace!, "-f", "-y", "-qq", "-s", "64", "-e", "trace=fsync,fdatasync,link,linkat,rename,renameat,renameat2,mkdir,mkdirat,write,writev,sendto,sendmsg", "-o", log, process.execPath, script, maildir], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  expect({ code, out }).toEqual({ code: 0, out: "RESULT-OK\n" });
  return readFileSync(log, "utf8")
    .split("\n")
    .map((l) => l.replace(/^\d+\s+/, ""))
    .filter((l) => l.includes(dir) || l.includes("RESULT-OK"));
}

/** The child's "RESULT-OK" on its standard output (a socket under Bun.spawn: sendto). */
const SUCCESS = /^(write|writev|sendto|sendmsg)\(\d+<[^>]*>, "RESULT-OK/;

function indexOf(lines: string[], re: RegExp): number {
  const i = lines.findIndex((l) => re.test(l));
  if (i < 0) throw new Error(`no traced call matches ${re}:\n${lines.join("\n")}`);
  return i;
}

test.skipIf(!strace)("a new maildir: file fsync, link, then fsync of new/, the maildir and its parent, then success", async () => {
  const home = join(dir, "home");
  mkdirSync(home);
  const md = join(home, "Maildir");
  const lines = await tracedDelivery(`${md}/`);
  const fileSync = indexOf(lines, new RegExp(`^fsync\\(\\d+<${md}/tmp/[^>]+>\\)`));
  const linked = indexOf(lines, new RegExp(`^link(at)?\\(.*${md}/tmp/.*${md}/new/`));
  const newSync = indexOf(lines, new RegExp(`^fsync\\(\\d+<${md}/new>\\)`));
  const mdSync = indexOf(lines, new RegExp(`^fsync\\(\\d+<${md}>\\)`));
  const homeSync = indexOf(lines, new RegExp(`^fsync\\(\\d+<${home}>\\)`));
  const success = indexOf(lines, SUCCESS);
  expect(fileSync).toBeLessThan(linked);
  expect(linked).toBeLessThan(newSync);
  expect(Math.max(newSync, mdSync, homeSync)).toBeLessThan(success);
});

test.skipIf(!strace)("an existing maildir: new/ is fsynced after the link, before success", async () => {
  const md = join(dir, "existing");
  for (const d of ["tmp", "new", "cur"]) mkdirSync(join(md, d), { recursive: true });
  const lines = await tracedDelivery(`${md}/`);
  const linked = indexOf(lines, new RegExp(`^link(at)?\\(.*${md}/tmp/.*${md}/new/`));
  const newSync = indexOf(lines, new RegExp(`^fsync\\(\\d+<${md}/new>\\)`));
  expect(linked).toBeLessThan(newSync);
  expect(newSync).toBeLessThan(indexOf(lines, SUCCESS));
  // nothing was created, so no other directory needed a sync
  expect(lines.filter((l) => /^fsync\(\d+<[^>]*>\)/.test(l) && !l.includes(`${md}/tmp/`) && !l.includes(`${md}/new>`))).toEqual([]);
});

test.skipIf(!strace)("the quick steps run on the delivering thread; only the file's fsync goes through the thread pool", async () => {
  const md = join(dir, "threads");
  for (const d of ["tmp", "new", "cur"]) mkdirSync(join(md, d), { recursive: true });
  const script = join(dir, "deliver-pid.ts");
  writeFileSync(
    script,
    `import { deliverToMaildir } from ${JSON.stringify(join(ROOT, "src/local/worker/maildir-file.ts"))};
const r = await deliverToMaildir({ type: "maildir", dir: process.argv[2], prefix: "", sizeLimit: 0, hostname: "h" }, Buffer.from("Subject: x\\n\\nb\\n"));
process.stdout.write(r.ok ? "PID " + process.pid + "\\n" : "RESULT-FAILED " + r.text + "\\n");
`,
  );
  const log = join(dir, "strace-threads.log");
  const proc = Bun.spawn([strace!, "-f", "-y", "-qq", "-s", "64", "-e", "trace=openat,write,fsync,link,linkat,unlink,unlinkat", "-o", log, process.execPath, script, `${md}/`], { stdout: "pipe", stderr: "pipe" });
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  expect(code).toBe(0);
  const pid = /^PID (\d+)\n$/.exec(out)?.[1];
  expect(pid).toBeDefined();
  // "TID call(...)" for the calls on the maildir's tmp/ file and its link into new/
  const calls = readFileSync(log, "utf8")
    .split("\n")
    .filter((l) => l.includes(`${md}/tmp/`))
    .map((l) => /^(\d+)\s+(\w+)\(/.exec(l))
    .filter((m) => m !== null)
    .map((m) => `${m[1] === pid ? "main" : "other"} ${m[2]}`);
  expect(calls.filter((c) => !c.startsWith("main "))).toEqual(["other fsync"]);
  for (const step of ["openat", "write", "link", "unlink"]) expect(calls.some((c) => c === `main ${step}` || (step === "link" && c === "main linkat") || (step === "unlink" && c === "main unlinkat"))).toBe(true);
});
