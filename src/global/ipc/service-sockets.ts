/**
 * The internal services' sockets: which role serves which socket, and its
 * mode. The master (root) creates each of them before it starts any
 * process and passes it on to the role (src/master/main.ts), so a client
 * that connects while a service starts or restarts waits in the socket's
 * backlog instead of being refused (Postfix's master does the same).
 *
 * The modes are Postfix's: 0666 for every socket, guarded by its
 * directory: private/ is mail_owner's, 0700; public/ is open to everyone,
 * so a public service checks each peer's credentials itself.
 */
import { join } from "node:path";
import type { Config } from "../config/config.ts";

export interface ServiceSocket {
  role: "local" | "qmgr" | "showq";
  /** Relative to queue_directory. */
  path: string;
  mode: number;
}

export const SERVICE_SOCKETS: readonly ServiceSocket[] = [
  { role: "local", path: "private/local", mode: 0o666 },
  { role: "qmgr", path: "public/qmgr", mode: 0o666 },
  { role: "showq", path: "public/showq", mode: 0o666 },
];

export function serviceSocket(role: ServiceSocket["role"]): ServiceSocket {
  return SERVICE_SOCKETS.find((s) => s.role === role)!;
}

export function serviceSocketPath(config: Config, role: ServiceSocket["role"]): string {
  return join(config.str("queue_directory"), serviceSocket(role).path);
}
