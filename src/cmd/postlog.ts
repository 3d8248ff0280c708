/**
 * postlog: write lines to the mail log with Postfix's tag and severity
 * prefixes, as scripts and cron jobs do with Postfix's postlog(1).
 * `postlog [-iv] [-c config_dir] [-p priority] [-t tag] [text...]`; without
 * text, each line of standard input is logged.
 */
import { isatty } from "node:tty";
import { getopt, GetoptError } from "../util/getopt.ts";
import { log, type Severity } from "../util/log.ts";
import { ExitError, EX_USAGE } from "../util/sysexits.ts";
import { loadConfig } from "../global/config/config.ts";
import { setupLog } from "../global/system/log-setup.ts";

const PRIORITIES: Record<string, Severity> = {
  info: "info", notice: "info", warn: "warning", warning: "warning", err: "error", error: "error",
  crit: "fatal", fatal: "fatal", panic: "panic",
};

export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = getopt(args, "c:ip:t:v");
  } catch (err) {
    if (err instanceof GetoptError) throw new ExitError(EX_USAGE, `${err.message}; usage: postlog [-iv] [-c config_dir] [-p priority] [-t tag] [text...]`);
    throw err;
  }
  let configDir: string | undefined;
  let severity: Severity = "info";
  let tag: string | undefined;
  for (const [opt, arg] of parsed.options) {
    if (opt === "c") configDir = arg;
    else if (opt === "p") {
      const s = PRIORITIES[arg!.toLowerCase()];
      if (!s) throw new ExitError(EX_USAGE, `unknown priority value: "${arg}"`);
      severity = s;
    } else if (opt === "t") tag = arg;
  }
  const config = loadConfig(configDir);
  await setupLog(config, { role: "postlog", tag, stderrProgram: isatty(2) ? "postlog" : undefined });
  const texts = parsed.operands.length ? [parsed.operands.join(" ")] : (await new Response(Bun.stdin.stream()).text()).split("\n").filter((l) => l !== "");
  for (const text of texts) log.write(severity, text);
  log.close();
  return severity === "fatal" || severity === "panic" ? 1 : 0;
}
