/**
 * Entry point of the postern executable: picks the role by the name it was
 * invoked as (sendmail, mailq, postconf, ...) or by `postern COMMAND`, and
 * runs it. Nothing else happens here; every role is imported lazily.
 */
import { basename, resolve } from "node:path";
import { ROLES } from "./roles.ts";
import { runRole, printHelp, usage } from "./dispatch.ts";
import { VERSION } from "./version.ts";
import { EX_USAGE } from "./util/sysexits.ts";
import { writeStdout, writeStderr } from "./util/stdio.ts";

const invoked = basename(process.argv0);
const args = process.argv.slice(2);
// Own keys only: "constructor" or "__proto__" must not reach Object.prototype.
const isRole = (name: string) => Object.hasOwn(ROLES, name);

let status: number;
if (invoked !== "postern" && isRole(invoked) && ROLES[invoked]!.symlink) {
  status = await runRole(invoked, args);
} else {
  let command = args.shift();
  // `postern -c DIR COMMAND`: the configuration directory for whatever command follows, as
  // `postern COMMAND -c DIR` gives it; passed as MAIL_CONFIG, which every command (and each
  // process it starts) reads when it gets no -c of its own.
  if (command === "-c" || (command?.startsWith("-c") && command.length > 2)) {
    const dir = command === "-c" ? args.shift() : command.slice(2);
    if (dir === undefined || dir === "") {
      writeStderr("postern: option -c needs a configuration directory\n");
      process.exit(EX_USAGE);
    }
    process.env.MAIL_CONFIG = resolve(dir);
    command = args.shift();
  }
  if (command === undefined) {
    usage();
    status = EX_USAGE;
  } else if (command === "help" || command === "--help" || command === "-h") {
    printHelp();
    status = 0;
  } else if (command === "--version" || command === "version" || command === "-V") {
    writeStdout(`postern ${VERSION}\n`);
    status = 0;
  } else if (isRole(command)) {
    status = await runRole(command, args);
  } else {
    writeStderr(`postern: unknown command "${command}"\n`);
    usage();
    status = EX_USAGE;
  }
}
process.exit(status);
