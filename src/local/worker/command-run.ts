/**
 * Runs a delivery command as Postfix's pipe_command() does: in a new session
 * (so the time limit can kill the whole process group), with a clean
 * environment given by the caller, the message on standard input, and up to
 * 4096 bytes of standard output and standard error kept for the report. The
 * command is run directly when it has no shell syntax, else with /bin/sh -c
 * (or local_command_shell when set). command_time_limit bounds the whole
 * run: at the limit the process group is killed, the pipes are closed and
 * the answer is "Command time limit exceeded", even when offspring left the
 * group (setsid) and still hold the output open.
 *
 * Runs with the rights of whoever the delivery is for: the agent or a
 * worker has already become that user. The command text comes from an
 * alias, a .forward file or mailbox_command.
 */
import type { CommandEnd } from "../command-status.ts";
import { OUTPUT_LIMIT, printableOutput } from "../command-status.ts";
import type { CommandJob } from "./jobs.ts";
import { formatDelivery } from "../message-copy.ts";
import { errnoText } from "./mbox-file.ts";
import { constants as osc } from "node:os";

const SHELL_META = /[\n"#$&'()*;<>?[\\\]^`{|}~]/;
const SHELL_BUILTINS = new Set([
  ".", ":", "break", "cd", "continue", "eval", "exec", "exit", "export", "read", "readonly", "return", "set", "shift", "times", "trap", "umask", "unset", "wait",
  "alias", "bg", "command", "false", "fc", "fg", "getopts", "jobs", "kill", "newgrp", "pwd", "true", "type", "ulimit", "unalias", "[", "test", "echo", "printf",
]);

/** The argument vector for `command`, as Postfix's exec_command() chooses it. */
export function commandArgv(command: string, shell: string[]): string[] {
  if (shell.length > 0) return [...shell, command];
  const words = command.trim().split(/[ \t]+/).filter(Boolean);
  if (SHELL_META.test(command) || words.length === 0 || SHELL_BUILTINS.has(words[0]!)) return ["/bin/sh", "-c", command];
  return words;
}

/** pipe(8)'s eol=: every line feed becomes `eol` (records end with it). */
export function withEol(bytes: Uint8Array, eol: string | undefined): Uint8Array {
  if (eol === undefined || eol === "\n") return bytes;
  const parts = Buffer.from(bytes).toString("latin1").split("\n");
  return Buffer.from(parts.join(eol), "latin1");
}

function signalNumber(name: string | number | null | undefined): number {
  if (typeof name === "number") return name;
  if (!name) return 0;
  return (osc.signals as Record<string, number>)[name] ?? 0;
}

export async function runCommand(job: CommandJob, content: Uint8Array): Promise<{ end: CommandEnd; output: string }> {
  const argv = job.argv && job.argv.length > 0 ? job.argv : commandArgv(job.command, job.shell);
  let proc: ReturnType<typeof Bun.spawn>;
  try {
    proc = Bun.spawn(argv, {
      env: job.env,
      cwd: job.cwd,
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      detached: true,
    });
  } catch (err) {
    // Postfix's child reports a failed exec on its output and exits with status 1
    return { end: { kind: "exit", code: 1 }, output: `execvp ${argv[0]}: ${errnoText(err)}` };
  }
  const killGroup = () => {
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  // One deadline for everything: writing the message, reading the output until EOF, the exit.
  // At the deadline the pipes are closed and the group killed, whatever offspring that left the
  // group (setsid) or keep a pipe open do: this delivery answers, and its worker is free again.
  let timedOut = false;
  let onDeadline!: () => void;
  const deadline = new Promise<"deadline">((resolve) => (onDeadline = () => resolve("deadline")));
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
    onDeadline();
  }, job.timeLimitMs);

  const captured: Uint8Array[] = [];
  let capturedBytes = 0;
  const readers = [proc.stdout, proc.stderr].map((s) => (s as ReadableStream<Uint8Array>).getReader());
  const drain = async (reader: (typeof readers)[number]) => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      if (capturedBytes < OUTPUT_LIMIT) {
        captured.push(value.subarray(0, OUTPUT_LIMIT - capturedBytes));
        capturedBytes += Math.min(value.length, OUTPUT_LIMIT - capturedBytes);
      }
    }
  };
  const outputs = Promise.all(readers.map((r) => drain(r).catch(() => undefined)));
  const sink = proc.stdin as import("bun").FileSink;

  let writeError: string | undefined;
  const feed = (async () => {
    try {
      sink.write(withEol(formatDelivery(job.prefix, content, { quote: job.quote === true, blank: job.blank === true, dot: job.dot === true }), job.eol));
      await sink.flush();
      await sink.end();
    } catch (err) {
      // a command that stops reading early (EPIPE) is not a failure
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "EPIPE" && !/broken pipe|EPIPE/i.test(String((err as Error).message))) writeError = (err as Error).message;
    }
  })();

  await Promise.race([Promise.all([feed, outputs, proc.exited]), deadline]);
  clearTimeout(timer);
  if (timedOut) {
    // stop reading and close every pipe; the group is dead, the direct child is reaped by Bun
    for (const r of readers) void r.cancel().catch(() => undefined);
    try {
      void Promise.resolve(sink.end()).catch(() => undefined);
    } catch {
      // already closed
    }
    await Promise.race([proc.exited, Bun.sleep(1000)]);
    return { end: { kind: "timeout" }, output: printableOutput(Buffer.concat(captured)) };
  }
  const output = printableOutput(Buffer.concat(captured));
  if (proc.signalCode) return { end: { kind: "signal", signal: signalNumber(proc.signalCode as string) }, output };
  if (proc.exitCode !== 0) return { end: { kind: "exit", code: proc.exitCode ?? 1 }, output };
  if (writeError) return { end: { kind: "failed", error: writeError }, output };
  return { end: { kind: "exit", code: 0 }, output };
}
