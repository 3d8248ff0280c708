/**
 * The listening sockets of the smtpd services, bound by the master so that
 * smtpd can be started on demand, as Postfix's master holds its inet
 * services' sockets: for each enabled service, every address its `listen`
 * names (listenAddresses, the function smtpd itself uses) becomes a TCP
 * socket bound here as root, held for the system's life and passed to the
 * service's smtpd as descriptors 3, 4, ... each time it starts. A client
 * that connects while smtpd is down waits in the socket's backlog until it
 * runs (src/master/on-demand.ts); smtpd leaves after max_idle without a
 * session.
 *
 * A service the master does not hold sockets for binds its own and runs
 * from the system's start, as before: one whose listen names a host
 * instead of an address, or one planned with more than one process.
 *
 * Runs in the master (root). Reads only the configuration, which is trusted.
 * A failure to bind is the start's failure, with the address and the
 * reason, as Postfix's master stops at a port already in use.
 */
import { closeSync } from "node:fs";
import type { Config } from "../global/config/config.ts";
import { listenAddresses } from "../global/config/listen-addresses.ts";
import { smtpdProcessPlan } from "../global/config/services.ts";
import { parseIpAddress } from "../util/net/cidr-match.ts";
import { listenTcpSocket } from "../util/unix-socket.ts";

export interface HeldService {
  name: string;
  /** smtpd processes to run (smtpdProcessPlan: one). */
  processes: number;
  /** The sockets bound here, in the order of listenAddresses; empty: the service binds its own and is not started on demand. */
  fds: number[];
}

/** Binds the enabled smtpd services' addresses that the master holds; on a failure closes what it bound and throws. */
export function bindSmtpdServices(config: Config): HeldService[] {
  const out: HeldService[] = [];
  try {
    for (const svc of config.services().filter((s) => s.enabled && s.role === "smtpd")) {
      const processes = smtpdProcessPlan(svc.processLimit ?? config.int("default_process_limit")).processes;
      const effective = config.withOverrides(svc.overrides);
      const addresses = listenAddresses(effective, svc.listen);
      const ips = addresses.map((a) => parseIpAddress(a.hostname));
      const held: HeldService = { name: svc.name, processes, fds: [] };
      out.push(held);
      if (processes !== 1 || ips.some((ip) => ip === undefined)) continue;
      addresses.forEach((a, i) => {
        try {
          held.fds.push(listenTcpSocket(ips[i]!.bytes, a.port));
        } catch (err) {
          throw new Error(`service ${svc.name}: cannot listen on ${a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname}:${a.port}: ${(err as Error).message}`);
        }
      });
    }
  } catch (err) {
    closeHeldServices(out);
    throw err;
  }
  return out;
}

export function closeHeldServices(services: readonly HeldService[]): void {
  for (const s of services) {
    for (const fd of s.fds.splice(0)) {
      try {
        closeSync(fd);
      } catch {}
    }
  }
}
