/**
 * Submitting with each system's own sendmail as the bench user (or root):
 * one probe that tells "works" from "not there yet", and timed runs.
 * stdin is the message file itself, so no harness pipe is in the path.
 */
import type { BenchContext } from "./context.ts";
import type { Mta, Unavailable } from "./mta.ts";
import { timedRun, type RunAs, type TimedResult } from "./proc.ts";

export interface Submitter {
  mta: Mta;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  as?: RunAs;
}

/** `sendmail FLAGS -- RECIPIENTS` of `mta`, run as the bench user from its home directory. */
export function sendmailSubmitter(ctx: BenchContext, mta: Mta, flags: string[], recipients: string[]): Submitter {
  const as = ctx.options.asRoot ? undefined : { uid: ctx.user.uid, gid: ctx.user.gid };
  return { mta, argv: [mta.sendmail, ...flags, ...recipients], env: mta.submitEnv(ctx.user), cwd: ctx.user.home, as };
}

/** The command as a user types it, for the report. */
export function describeSubmitter(s: Submitter, stdin: string): string {
  return `${[s.argv[0]!.split("/").at(-1), ...s.argv.slice(1)].join(" ")} < ${stdin}`;
}

export function submitOnce(s: Submitter, stdinFile: string): TimedResult {
  return timedRun(s.argv, { stdinFile, env: s.env, cwd: s.cwd, as: s.as });
}

/** One untimed submission; a failure is returned as the reason this side is unavailable. */
export function probeSubmitter(s: Submitter, stdinFile: string): Unavailable | undefined {
  const r = submitOnce(s, stdinFile);
  if (r.code === 0) return undefined;
  const line = r.stderr.trim().split("\n").at(-1) ?? "";
  return { unavailable: `${s.mta.name} sendmail exited ${r.code}${line ? `: ${line}` : ""}` };
}

/** One submission without blocking the event loop (for concurrent submitters); resolves to its exit code and stderr. */
export async function submitAsync(s: Submitter, stdinFile: string): Promise<{ code: number; stderr: string }> {
  const proc = Bun.spawn(s.argv, {
    env: s.env,
    cwd: s.cwd,
    stdin: Bun.file(stdinFile),
    stdout: "ignore",
    stderr: "pipe",
    ...(s.as ? { uid: s.as.uid, gid: s.as.gid } : {}),
  } as Parameters<typeof Bun.spawn>[1]);
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr as ReadableStream).text()]);
  return { code, stderr };
}
