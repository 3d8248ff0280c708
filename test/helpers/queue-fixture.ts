/**
 * Builds queues for the queue-tool tests with the queue-file API, the way
 * the daemons would leave them: a private configuration whose
 * queue_directory is prepared by `postern check`, and queue files with
 * chosen IDs, arrival times, sizes, defer reasons and states, owned by the
 * queue's owner.
 *
 * When the tests run as root, mail_owner is "nobody" (every system has it)
 * and the queue belongs to it, as on a system install; otherwise the queue
 * belongs to the invoking user (unprivileged mode).
 */
import { appendFileSync, chmodSync, chownSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { commitQueueFileSync } from "../../src/global/queue/commit.ts";
import { encodeExpireRecord, encodeQueueFile, type NotifyKeyword } from "../../src/global/queue/format.ts";
import { appendDeliveryLog } from "../../src/global/queue/delivery-log.ts";
import { markRecipientDone } from "../../src/global/queue/store.ts";
import type { MessageQueue } from "../../src/global/queue/names.ts";
import { getpwnam } from "../../src/util/passwd.ts";
import { bin, cleanEnv, configDir, removeDir, run, tempDir, type RunOptions, type RunResult } from "./run.ts";

export const IS_ROOT = process.getuid?.() === 0;

export interface TestQueue {
  configDir: string;
  queueDirectory: string;
  /** Owner of the queue directories. */
  uid: number;
  gid: number;
}

const created: string[] = [];

/** Removes every directory makeQueue made (call from afterAll). */
export function removeQueues(): void {
  for (const dir of created.splice(0)) removeDir(dir);
}

/** A configuration directory and a queue prepared by `postern check -c DIR`; removeQueues() removes them. */
export async function makeQueue(extraConfig = ""): Promise<TestQueue> {
  const base = tempDir("postern-qtools-");
  created.push(base);
  // a system queue sits under /var/spool: the queue's owner can reach it after root drops to it
  chmodSync(base, 0o755);
  const queueDirectory = join(base, "queue");
  const text = [`queue_directory = "${queueDirectory}"`, IS_ROOT ? 'mail_owner = "nobody"' : "", 'maillog_file = "/dev/stderr"', extraConfig].join("\n") + "\n";
  const dir = configDir(text);
  created.push(dir);
  chmodSync(dir, 0o755); // test users read it too
  const r = await run("postern", ["check", "-c", dir]);
  if (r.code !== 0) throw new Error(`postern check failed (${r.code}): ${r.stderr}`);
  const st = statSync(join(queueDirectory, "incoming"));
  return { configDir: dir, queueDirectory, uid: st.uid, gid: st.gid };
}

export interface FixtureRecipient {
  address: string;
  done?: boolean;
  original?: string;
  orcpt?: string;
  notify?: NotifyKeyword[];
}

export interface FixtureMessage {
  queue: MessageQueue;
  id: string;
  /** Seconds since the epoch. */
  arrival: number;
  sender: string;
  recipients: FixtureRecipient[];
  content: string | Buffer;
  attributes?: Record<string, string>;
  /** Defer log entries, in log order. */
  defer?: Array<{ recipient: string; reason: string; status?: string }>;
  expire?: boolean;
}

/** The message's content made to have exactly `size` bytes when each line ends in CRLF (Postfix's message_size). */
export function contentOfSize(size: number, subject: string): string {
  let text = `Subject: ${subject}\n\n`;
  const smtp = (s: string) => Buffer.byteLength(s) + (s.match(/\n/g)?.length ?? 0);
  if (smtp(text) + 2 > size) throw new Error(`size ${size} is too small`);
  while (size - smtp(text) > 160) text += "x".repeat(78) + "\n";
  let rest = size - smtp(text);
  if (rest === 1) {
    // one byte short of a line: make the previous line one byte longer and this one empty
    text = text.replace(/\n$/, "x\n");
    rest = size - smtp(text);
  }
  if (rest >= 2) text += "y".repeat(rest - 2) + "\n";
  if (smtp(text) !== size) throw new Error(`cannot make content of size ${size}`);
  return text;
}

/** Writes one queue file as the daemons would leave it, under the chosen ID. */
export function putMessage(q: TestQueue, m: FixtureMessage): string {
  const content = typeof m.content === "string" ? Buffer.from(m.content) : m.content;
  const bytes = encodeQueueFile({
    arrivalTime: m.arrival * 1000,
    sender: m.sender,
    recipients: m.recipients.map((r) => ({ address: r.address, original: r.original, orcpt: r.orcpt, notify: r.notify })),
    attributes: m.attributes ?? {},
    content,
  });
  const dir = join(q.queueDirectory, m.queue);
  const tmpId = commitQueueFileSync(dir, () => bytes);
  const path = join(dir, m.id);
  if (tmpId !== m.id) renameSync(join(dir, tmpId), path);
  m.recipients.forEach((r, index) => {
    if (r.done) markRecipientDone(path, index);
  });
  if (m.expire) appendFileSync(path, encodeExpireRecord(m.arrival * 1000));
  chownSync(path, q.uid, q.gid);
  if (m.defer?.length) {
    appendDeliveryLog(q.queueDirectory, "defer", m.id, m.defer.map((d) => ({ recipient: d.recipient, status: d.status ?? "4.0.0", action: "delayed", time: m.arrival * 1000, reason: d.reason })));
    chownSync(join(q.queueDirectory, "defer", m.id), q.uid, q.gid);
  }
  return path;
}

/** A file of any content at `queue/name` (for corrupt and stray files). */
export function putRawFile(q: TestQueue, queue: string, name: string, data: string | Buffer): string {
  const path = join(q.queueDirectory, queue, name);
  writeFileSync(path, data, { mode: 0o600 });
  chownSync(path, q.uid, q.gid);
  return path;
}

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
}

/** Creates a login-less user with its own group (tests run as root in CI); removes a leftover one first. */
export function createTestUser(name: string): TestUser {
  Bun.spawnSync(["userdel", name], { stdout: "ignore", stderr: "ignore" });
  const r = Bun.spawnSync(["useradd", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", name], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`useradd ${name} failed: ${r.stderr.toString()}`);
  const pw = getpwnam(name);
  if (!pw) throw new Error(`useradd ${name} left no passwd entry`);
  return { name, uid: pw.uid, gid: pw.gid };
}

export function removeTestUser(user: TestUser): void {
  Bun.spawnSync(["userdel", user.name], { stdout: "ignore", stderr: "ignore" });
}

/** Runs dist/NAME as `user` (setpriv: real and effective ids, no supplementary groups). */
export async function runAs(user: TestUser, name: string, args: string[] = [], opts: RunOptions = {}): Promise<RunResult> {
  const proc = Bun.spawn(["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", bin(name), ...args], {
    cwd: "/",
    env: cleanEnv({ HOME: "/", USER: user.name, LOGNAME: user.name, ...opts.env }),
    stdin: opts.stdin === undefined ? "ignore" : new Blob([opts.stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Gives the whole queue to `user`, as an unprivileged instance run by that user would have it. */
export function giveQueueTo(q: TestQueue, user: TestUser): void {
  const r = Bun.spawnSync(["chown", "-R", `${user.uid}:${user.gid}`, q.queueDirectory]);
  if (r.exitCode !== 0) throw new Error(`chown failed: ${r.stderr.toString()}`);
  q.uid = user.uid;
  q.gid = user.gid;
}
