/**
 * postqueue(1) and mailq: the queue operations for every user.
 *
 *     postqueue [-v] [-c config_dir] -p | -j | -f | -s site | -i queue_id
 *     mailq [-v] [-C config_dir]
 *
 * Exactly one mode, as with Postfix; a second mode or an operand is a usage
 * error (EX_USAGE, where Postfix 3.7 exits 69 for every fatal error).
 * Listing reads the queue directly (list.ts); flushing asks the running
 * queue manager (flush.ts). Runs as the invoking user, never set-gid.
 */
import { getopt, GetoptError } from "../../util/getopt.ts";
import { writeStderr } from "../../util/stdio.ts";
import { log } from "../../util/log.ts";
import { ExitError, EX_USAGE } from "../../util/sysexits.ts";
import { loadConfig } from "../../global/config/config.ts";
import { setupLog } from "../../global/system/log-setup.ts";
import { listQueueCommand } from "./list.ts";
import { flushCommand, type FlushRequest } from "./flush.ts";

const USAGE = "usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p | postqueue -s site";

type Mode = { kind: "list"; json: boolean } | { kind: "flush"; request: FlushRequest };

function usageError(getoptMessage?: string): ExitError {
  // getopt's complaint goes to stderr only, as the C library's does
  if (getoptMessage) writeStderr(`postqueue: ${getoptMessage}\n`);
  return new ExitError(EX_USAGE, USAGE);
}

function parsePostqueue(args: string[]): { configDir?: string; mode: Mode } {
  let parsed;
  try {
    parsed = getopt(args, "c:fi:jps:v");
  } catch (err) {
    if (err instanceof GetoptError) throw usageError(err.message);
    throw err;
  }
  let configDir: string | undefined;
  let mode: Mode | undefined;
  const set = (m: Mode) => {
    if (mode) throw usageError();
    mode = m;
  };
  for (const [opt, arg] of parsed.options) {
    switch (opt) {
      case "c": configDir = arg; break;
      case "f": set({ kind: "flush", request: { kind: "all" } }); break;
      case "i": set({ kind: "flush", request: { kind: "id", id: arg! } }); break;
      case "s": set({ kind: "flush", request: { kind: "site", site: arg! } }); break;
      case "j": set({ kind: "list", json: true }); break;
      case "p": set({ kind: "list", json: false }); break;
      case "v": break;
    }
  }
  if (!mode || parsed.operands.length) throw usageError();
  return { configDir, mode };
}

function parseMailq(args: string[]): string | undefined {
  let parsed;
  try {
    parsed = getopt(args, "C:c:v");
  } catch (err) {
    if (err instanceof GetoptError) throw new ExitError(EX_USAGE, `${err.message}; usage: mailq [-v] [-C config_dir]`);
    throw err;
  }
  if (parsed.operands.length) throw new ExitError(EX_USAGE, "usage: mailq [-v] [-C config_dir]");
  let configDir: string | undefined;
  for (const [opt, arg] of parsed.options) if (opt === "C" || opt === "c") configDir = arg;
  return configDir;
}

export async function main(args: string[], invokedAs: string): Promise<number> {
  // Postfix's mailq hands over to postqueue, whose name its messages carry.
  log.configure({ tag: "postfix/postqueue", stderrProgram: "postqueue" });
  const { configDir, mode } = invokedAs === "mailq" ? { configDir: parseMailq(args), mode: { kind: "list", json: false } as Mode } : parsePostqueue(args);
  const config = loadConfig(configDir);
  await setupLog(config, { role: "postqueue", stderrProgram: "postqueue" });
  return mode.kind === "list" ? listQueueCommand(config, mode.json) : flushCommand(config, mode.request);
}
