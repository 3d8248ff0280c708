/**
 * Points the process logger at the destination the configuration names:
 * maillog_file, else syslog through syslog_socket_path, else stderr (with one
 * warning). Commands also echo their messages to stderr as Postfix's do.
 */
import { existsSync } from "node:fs";
import { log } from "../../util/log.ts";
import type { Config } from "../config/config.ts";

const FACILITIES: Record<string, number> = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

export interface LogSetupOptions {
  /** The role or command name after the slash: `postfix/ROLE`. */
  role: string;
  /** Echo to stderr under this program name (commands); daemons leave it out. */
  stderrProgram?: string;
  /** A full tag that replaces `$syslog_name/role` (postlog -t). */
  tag?: string;
  /** With maillog_file unset, log to stdout instead of syslog (start-fg; children see POSTERN_LOG_STDOUT=1). */
  foreground?: boolean;
}

/** Sets up logging; never throws for a bad destination (falls back to stderr with a warning). */
export async function setupLog(config: Config, opts: LogSetupOptions): Promise<void> {
  let syslogName = "postfix";
  let file = "";
  let facilityName = "mail";
  let socketPath = "/dev/log";
  let host: string | undefined;
  let utf8 = true;
  try {
    syslogName = config.str("syslog_name");
    file = config.str("maillog_file");
    facilityName = config.str("syslog_facility").toLowerCase();
    socketPath = config.str("syslog_socket_path");
    host = config.str("myhostname").split(".")[0];
    utf8 = config.bool("smtputf8_enable");
  } catch (err) {
    log.configure({ tag: `postfix/${opts.role}`, stderrProgram: opts.stderrProgram ?? opts.role });
    log.warn(`${(err as Error).message}; logging to stderr`);
    return;
  }
  const tag = opts.tag ?? `${syslogName}/${opts.role}`;
  if (!file && (opts.foreground || process.env.POSTERN_LOG_STDOUT === "1")) file = "/dev/stdout";
  if (file) {
    try {
      log.configure({ tag, host, utf8, file, stderrProgram: opts.stderrProgram });
      return;
    } catch (err) {
      log.configure({ tag, host, utf8, stderrProgram: opts.stderrProgram ?? opts.role });
      // A user's command may not write the system's log (Postfix hands such lines to postlogd);
      // it still says everything on stderr, so only a daemon needs the warning.
      if (!opts.stderrProgram || (err as NodeJS.ErrnoException).code !== "EACCES") log.warn(`cannot open maillog_file "${file}": ${(err as Error).message}; logging to stderr`);
      return;
    }
  }
  const facility = FACILITIES[facilityName];
  if (existsSync(socketPath) && facility !== undefined) {
    const { openSyslogSocket } = await import("../../util/syslog-socket.ts");
    const sender = openSyslogSocket(socketPath);
    if (sender) {
      log.configure({ tag, host, utf8, syslog: { sender, facility }, stderrProgram: opts.stderrProgram });
      return;
    }
  }
  // No usable destination: daemons log to stderr, commands already echo there.
  log.configure({ tag, host, utf8, file: opts.stderrProgram ? undefined : "/dev/stderr", stderrProgram: opts.stderrProgram });
  if (!opts.stderrProgram) {
    log.warn(
      facility === undefined
        ? `unknown syslog_facility "${facilityName}"; logging to stderr`
        : `no syslog socket at ${socketPath} and maillog_file is empty; logging to stderr`,
    );
  }
}
