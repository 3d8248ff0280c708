/**
 * Runs a role and turns what it throws into Postfix-style messages and
 * sysexits codes: ExitError carries its own status, a configuration error
 * is EX_CONFIG, anything else is a software error (EX_SOFTWARE).
 */
import { ROLES } from "./roles.ts";
import { ConfigError } from "./global/config/source.ts";
import { log } from "./util/log.ts";
import { EX_CONFIG, EX_SOFTWARE, ExitError } from "./util/sysexits.ts";
import { writeStdout, writeStderr } from "./util/stdio.ts";

export async function runRole(name: string, args: string[]): Promise<number> {
  const entry = ROLES[name]!;
  // Until a role sets up logging from the configuration, messages go to stderr under its name.
  log.configure({ tag: `postfix/${name}`, stderrProgram: name });
  try {
    const { main } = await entry.load();
    return await main(args, name);
  } catch (err) {
    if (err instanceof ExitError) {
      log.fatal(err.message);
      return err.exitCode;
    }
    if (err instanceof ConfigError) {
      log.fatal(err.message);
      return EX_CONFIG;
    }
    log.panic(`${(err as Error)?.stack ?? String(err)}`);
    return EX_SOFTWARE;
  }
}

export function printHelp(): void {
  const rows = Object.entries(ROLES).filter(([, e]) => !e.internal);
  const width = Math.max(...rows.map(([n]) => n.length));
  const lines = [
    "usage: postern [-c CONFIG_DIR] COMMAND [ARGS...]   (or invoke the executable as sendmail, mailq, postconf, ...)",
    "",
    "commands:",
    ...rows.map(([n, e]) => `  ${n.padEnd(width)}  ${e.summary}`),
    `  ${"help".padEnd(width)}  Show this list`,
    `  ${"--version".padEnd(width)}  Print the version`,
  ];
  writeStdout(lines.join("\n") + "\n");
}

export function usage(): void {
  writeStderr("usage: postern [-c CONFIG_DIR] COMMAND [ARGS...]; 'postern help' lists the commands\n");
}
