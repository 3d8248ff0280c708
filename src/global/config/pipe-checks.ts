/**
 * What pipe(8) refuses when it starts, refused by Config.validate() so that
 * `postern check`, `postfix check`, start and reload stop on it (exit 78)
 * instead of every delivery deferring with "mail system configuration
 * error": a `user=` that names no user or group of this machine, or root
 * (pipe-user.ts), and a `NAME_time_limit` that is not a time of at least
 * one second (Postfix's get_mail_conf_time2 minimum).
 *
 * Runs wherever the configuration is validated (root for check and start,
 * mail_owner for the master's reload); reads the passwd and group files.
 */
import { resolvePipeUser } from "../delivery/pipe-user.ts";
import type { Config } from "./config.ts";
import { pipeServices } from "./services.ts";
import { ConfigError } from "./source.ts";

export function pipeServiceProblems(config: Config): ConfigError[] {
  const problems: ConfigError[] = [];
  const lines = new Map(config.services().map((s) => [s.name, s.line]));
  for (const [name, pipe] of pipeServices(config.services())) {
    const who = resolvePipeUser(pipe.user);
    if ("error" in who) problems.push(new ConfigError(`services.${name}.user = "${pipe.user}": ${who.error}; name an existing user other than root`, config.path, lines.get(name)));
    const param = `${name}_time_limit`;
    if (config.raw(param) === undefined) continue;
    try {
      const seconds = config.time(param);
      if (seconds < 1) problems.push(new ConfigError(`${param} = "${config.raw(param)}": the time limit must be at least 1s`, config.path, config.lineOf(param)));
    } catch (err) {
      if (err instanceof ConfigError) problems.push(err);
      else throw err;
    }
  }
  return problems;
}
