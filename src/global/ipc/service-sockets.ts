/**
 * The internal services' sockets: which role serves which socket, and its
 * mode. The master (root) creates each of them before it starts any
 * process and passes it on to the role (src/master/main.ts), so a client
 * that connects while a service starts or restarts waits in the socket's
 * backlog instead of being refused (Postfix's master does the same).
 *
 * The sockets, their modes and their servers are the service table's
 * (src/global/system/service-table.ts); this file gives them by role. The
 * modes are Postfix's: 0666 for every socket, guarded by its directory:
 * private/ is mail_owner's, 0700; public/ is open to everyone, so a public
 * service checks each peer's credentials itself.
 */
import { join } from "node:path";
import type { Config } from "../config/config.ts";
import { SERVICE_TABLE, servedSocket, type DaemonRole } from "../system/service-table.ts";

export interface ServiceSocket {
  role: "local" | "qmgr" | "showq";
  /** Relative to queue_directory. */
  path: string;
  mode: number;
}

/** Every unix socket a role serves, from the service table. */
export const SERVICE_SOCKETS: readonly ServiceSocket[] = (Object.keys(SERVICE_TABLE) as DaemonRole[]).flatMap((role) => {
  const s = servedSocket(role);
  return s ? [{ role: role as ServiceSocket["role"], path: s.path, mode: s.mode }] : [];
});

export function serviceSocket(role: ServiceSocket["role"]): ServiceSocket {
  return SERVICE_SOCKETS.find((s) => s.role === role)!;
}

export function serviceSocketPath(config: Config, role: ServiceSocket["role"]): string {
  return join(config.str("queue_directory"), serviceSocket(role).path);
}
