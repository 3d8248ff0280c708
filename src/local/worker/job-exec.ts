/**
 * Runs one job (jobs.ts) with the rights of the current process. The agent
 * calls it directly in unprivileged mode and for root's own deliveries;
 * a worker calls it after it has become the job's user.
 */
import { lstatSync } from "node:fs";
import { open, stat, lstat } from "node:fs/promises";
import { runCommand } from "./command-run.ts";
import type { WorkerJob, JobResult } from "./jobs.ts";
import { deliverToMaildir } from "./maildir-file.ts";
import { appendToMbox, errnoText, fileStatus } from "./mbox-file.ts";

function failure(err: unknown, text: string): JobResult {
  const code = (err as NodeJS.ErrnoException).code;
  return { ok: false, dsn: "4.3.0", text: `${text}: ${errnoText(err)}`, ...(code ? { code } : {}) };
}

export async function executeJob(job: WorkerJob, payload: Uint8Array): Promise<JobResult> {
  switch (job.type) {
    case "mbox": {
      const r = await appendToMbox(job, payload);
      return r.ok ? { ok: true, type: "mbox", warnings: r.warnings } : r;
    }
    case "maildir": {
      const r = await deliverToMaildir(job, payload);
      return r.ok ? { ok: true, type: "maildir", warnings: r.warnings } : r;
    }
    case "command": {
      const r = await runCommand(job, payload);
      return { ok: true, type: "command", end: r.end, output: r.output };
    }
    case "stat": {
      try {
        const st = job.follow ? await stat(job.path) : await lstat(job.path);
        return { ok: true, type: "stat", status: fileStatus(st) };
      } catch (err) {
        return failure(err, `cannot access ${job.path}`);
      }
    }
    case "forward-search": {
      for (const [index, path] of job.paths.entries()) {
        try {
          // a plain system call: one lstat costs less than a hand-over to the thread pool and back
          return { ok: true, type: "forward-search", index, status: fileStatus(lstatSync(path)) };
        } catch {
          // not there, or not for this user: the next one, as separate stat jobs would
        }
      }
      if (!job.otherwise) return { ok: true, type: "forward-search", index: -1 };
      return { ok: true, type: "forward-search", index: -1, otherwise: await executeJob(job.otherwise, payload) };
    }
    case "read": {
      try {
        const fh = await open(job.path, "r");
        try {
          const st = await fh.stat();
          const buf = Buffer.alloc(Math.min(st.size, job.maxBytes));
          const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
          return { ok: true, type: "read", text: buf.subarray(0, bytesRead).toString("utf8"), status: fileStatus(st) };
        } finally {
          await fh.close();
        }
      } catch (err) {
        return failure(err, `cannot open file ${job.path}`);
      }
    }
    case "forward": {
      // cleanup and its tables load only in a worker that forwards (mail_owner's), not in every recipient's
      const { commitForwarded } = await import("./forward-commit.ts");
      return commitForwarded(job, payload);
    }
  }
}
