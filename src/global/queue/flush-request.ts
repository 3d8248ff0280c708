/**
 * Asking the running queue manager to deliver deferred mail now: a request
 * on the public socket `$queue_directory/public/qmgr` (postqueue -f/-s/-i,
 * sendmail -q, postern flush). The queue manager validates every request.
 */
import { join } from "node:path";
import type { Config } from "../config/config.ts";
import { requestJsonLine } from "../ipc/json-lines.ts";

export type FlushRequest = { kind: "all" } | { kind: "site"; site: string } | { kind: "id"; id: string };

export function qmgrSocketPath(config: Config): string {
  return join(config.str("queue_directory"), "public", "qmgr");
}

/** Sends the request; throws IpcError when the queue manager cannot be reached. */
export async function requestFlush(config: Config, request: FlushRequest): Promise<void> {
  await requestJsonLine(qmgrSocketPath(config), { command: "flush", ...request }, 10_000);
}
