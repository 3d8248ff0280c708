/**
 * The `local-worker` role: a helper of the local delivery agent that
 * becomes one user and runs delivery jobs for it. Started by the agent as
 * `postern local-worker UID GID USER|-` with a clean environment; it calls
 * initgroups(USER, GID) (or keeps only GID when USER is "-"), setgid(GID)
 * and setuid(UID) before it reads anything, checks that the change took,
 * then serves jobs from standard input until it closes.
 *
 * Runs as the recipient (or default_privs). It trusts its parent, which is
 * root; everything a job names (paths, commands) came from the delivery
 * and is handled with this user's rights only.
 */
import { workDone } from "../../util/young-garbage.ts";
import { executeJob } from "./job-exec.ts";
import type { WorkerJob } from "./jobs.ts";
import { encodeFrame, FrameReader } from "./protocol.ts";
import { EX_NOPERM, EX_USAGE, ExitError } from "../../util/sysexits.ts";
import { useReluctantJitPolicy } from "../../util/jit.ts";

function dropPrivileges(uid: number, gid: number, user: string | undefined): void {
  // node's process.initgroups exists in Bun but is missing from bun-types
  if (user) (process as unknown as { initgroups(user: string, gid: number): void }).initgroups(user, gid);
  else process.setgroups!([gid]);
  process.setgid!(gid);
  process.setuid!(uid);
  if (process.getuid!() !== uid || process.geteuid!() !== uid || process.getgid!() !== gid || process.getegid!() !== gid) {
    throw new ExitError(EX_NOPERM, `cannot change to uid ${uid} gid ${gid}`);
  }
  // a worker that could get root back would defeat its purpose
  let regained = false;
  try {
    process.setuid!(0);
    regained = true;
  } catch {
    // expected
  }
  if (regained) throw new ExitError(EX_NOPERM, "privileges could be regained after setuid");
}

export async function main(args: string[]): Promise<number> {
  useReluctantJitPolicy();
  const [uidText, gidText, userText] = args;
  const uid = Number(uidText);
  const gid = Number(gidText);
  if (args.length !== 3 || !Number.isInteger(uid) || !Number.isInteger(gid) || uid < 0 || gid < 0) {
    throw new ExitError(EX_USAGE, "usage: postern local-worker UID GID USER|-");
  }
  if (process.getuid!() === 0) dropPrivileges(uid, gid, userText === "-" ? undefined : userText);
  else if (process.getuid!() !== uid) throw new ExitError(EX_NOPERM, `not running as root: cannot become uid ${uid}`);

  const reader = new FrameReader();
  const pending = new Set<Promise<void>>();
  const reply = (frame: Uint8Array) => {
    process.stdout.write(frame);
  };
  for await (const chunk of Bun.stdin.stream()) {
    for (const { header, payload } of reader.push(chunk)) {
      const id = header.id;
      const job = header.job as WorkerJob;
      const p = executeJob(job, payload)
        .catch((err) => ({ ok: false as const, dsn: "4.3.0", text: `local delivery worker: ${(err as Error).message}` }))
        .then((result) => {
          reply(encodeFrame({ id, result }));
          workDone();
        });
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
  }
  await Promise.all(pending);
  return 0;
}
