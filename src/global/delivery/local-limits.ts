/**
 * How long a local delivery may take, computed once for both sides of
 * private/local so they cannot disagree: the local service enforces the
 * first two, the queue manager waits for the third.
 *
 * - a job (one command, one mailbox write) in a worker: command_time_limit
 *   (or the longest <name>_time_limit of a pipe service), plus the time the mailbox locks may be retried, plus a margin; a worker
 *   that overruns it (a user stopped it with SIGSTOP) is killed;
 * - a request: no new job starts after daemon_timeout (Postfix's watchdog
 *   for one request of a delivery agent);
 * - the queue manager: the request limit plus one job plus a margin, so a
 *   slow command that succeeds is recorded as delivered, never given up on
 *   while it still runs (which delivered it twice: the 15-minute wait was
 *   shorter than the 1000 s command_time_limit).
 *
 * Read by the local delivery agent (root) and the queue manager
 * (mail_owner); the values come from the configuration.
 */
import type { Config } from "../config/config.ts";
import { pipeServices } from "../config/services.ts";

/** What a worker may take beyond the job's own limits before it is killed. */
export const LOCAL_JOB_MARGIN_MS = 5_000;
/** What the queue manager waits beyond the local service's own limits. */
export const LOCAL_SERVICE_MARGIN_MS = 60_000;

export interface LocalDeliveryLimits {
  /** One job in a worker. */
  jobMs: number;
  /** No new job of a request starts after this. */
  requestMs: number;
  /** The queue manager's wait for the answer to one request. */
  serviceWaitMs: number;
}

/**
 * pipe(8)'s transport_time_limit: `<name>_time_limit` for the pipe service
 * `name`, in seconds; by default $command_time_limit.
 */
export function pipeTimeLimit(config: Config, name: string): number {
  const param = `${name}_time_limit`;
  return config.raw(param) !== undefined ? config.time(param) : config.time("command_time_limit");
}

export function localDeliveryLimits(config: Config): LocalDeliveryLimits {
  // the local service runs the pipe services' commands too: a job may take the longest of their limits
  let commandSeconds = config.time("command_time_limit");
  for (const name of pipeServices(config.services()).keys()) commandSeconds = Math.max(commandSeconds, pipeTimeLimit(config, name));
  const commandMs = commandSeconds * 1000;
  const lockMs = Math.max(1, config.int("deliver_lock_attempts")) * config.time("deliver_lock_delay") * 1000;
  const jobMs = commandMs + lockMs + LOCAL_JOB_MARGIN_MS;
  const requestMs = config.time("daemon_timeout") * 1000;
  return { jobMs, requestMs, serviceWaitMs: requestMs + jobMs + LOCAL_SERVICE_MARGIN_MS };
}
