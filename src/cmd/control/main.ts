/**
 * Mail system control: `postern start|stop|reload|status|check|...` and
 * `postfix [-c dir] COMMAND`. This scope is `check` (configuration
 * validation); the daemon arrives with its own issue, and until then the
 * daemon commands validate the configuration and then say they are not
 * available rather than pretend.
 */
import { getopt, GetoptError } from "../../util/getopt.ts";
import { log } from "../../util/log.ts";
import { ExitError, EX_CONFIG, EX_UNAVAILABLE, EX_USAGE } from "../../util/sysexits.ts";
import { loadConfig } from "../../global/config/config.ts";

const COMMANDS = ["start", "start-fg", "stop", "abort", "reload", "status", "flush", "check", "set-permissions"];

export async function main(args: string[], invokedAs: string): Promise<number> {
  let parsed;
  try {
    parsed = getopt(args, "c:Dv");
  } catch (err) {
    if (err instanceof GetoptError) throw new ExitError(EX_USAGE, `${err.message}; usage: ${invokedAs} [-c config_dir] COMMAND`);
    throw err;
  }
  const configDir = parsed.options.find(([o]) => o === "c")?.[1];
  const command = invokedAs === "postfix" ? parsed.operands[0] : invokedAs;
  if (!command || !COMMANDS.includes(command)) {
    throw new ExitError(EX_USAGE, `usage: ${invokedAs === "postfix" ? "postfix [-c config_dir]" : "postern"} ${COMMANDS.join("|")}`);
  }
  const config = loadConfig(configDir);
  if (command === "status") {
    log.info("the mail system is not running");
    return 1;
  }
  const problems = config.validate();
  for (const name of config.unknownNames()) log.warn(`${config.path}: unknown parameter: ${name}`);
  for (const p of problems) log.error(p.message);
  if (command === "check") return problems.length ? EX_CONFIG : 0;
  if (problems.length) throw new ExitError(EX_CONFIG, `refusing to ${command}: fix the configuration errors above`);
  throw new ExitError(EX_UNAVAILABLE, `${command}: the mail system daemon is not implemented yet`);
}
