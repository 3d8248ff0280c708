/**
 * Mail system control: `postern start|stop|reload|status|check|...` and
 * `postfix [-c dir] COMMAND`. `check` and `set-permissions` validate the
 * configuration and create or repair the queue directories; the daemon
 * arrives with its own issue, and until then the
 * daemon commands validate the configuration and then say they are not
 * available rather than pretend.
 */
import { getopt, GetoptError } from "../../util/getopt.ts";
import { log } from "../../util/log.ts";
import { ExitError, EX_CANTCREAT, EX_CONFIG, EX_UNAVAILABLE, EX_USAGE } from "../../util/sysexits.ts";
import { loadConfig, type Config } from "../../global/config/config.ts";
import { ensureQueueDirectories } from "../../global/queue/directories.ts";
import { queueOwner } from "../../global/mail-owner.ts";

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
  if (command === "check" || command === "set-permissions") {
    if (problems.length) return EX_CONFIG;
    prepareQueue(config);
    return 0;
  }
  if (problems.length) throw new ExitError(EX_CONFIG, `refusing to ${command}: fix the configuration errors above`);
  throw new ExitError(EX_UNAVAILABLE, `${command}: the mail system daemon is not implemented yet`);
}

/** Creates missing queue directories and repairs owners and modes, logging each change. */
function prepareQueue(config: Config): void {
  const queueDirectory = config.str("queue_directory");
  try {
    for (const change of ensureQueueDirectories(queueDirectory, queueOwner(config))) log.info(`${queueDirectory}: ${change}`);
  } catch (err) {
    throw new ExitError(EX_CANTCREAT, `cannot prepare the queue directory ${queueDirectory}: ${(err as Error).message}`);
  }
}
