/**
 * Asking the running showq service for the queue listing (Postfix's showq),
 * for users who cannot read the queue directories themselves, on
 * public/showq. The service checks authorized_mailq_users again from the
 * peer's credentials.
 */
import type { Config } from "../config/config.ts";
import { requestJsonLine } from "../ipc/json-lines.ts";
import { serviceSocketPath } from "../ipc/service-sockets.ts";
import type { ListedMessage } from "./listing.ts";

export async function requestShowq(config: Config): Promise<{ entries: ListedMessage[]; truncated: boolean }> {
  const response = await requestJsonLine(serviceSocketPath(config, "showq"), { command: "showq" }, 60_000, 256 * 1024 * 1024);
  if (!Array.isArray(response.entries)) throw new Error("showq: malformed response");
  return { entries: response.entries as ListedMessage[], truncated: response.truncated === true };
}
