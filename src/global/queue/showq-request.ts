/**
 * Asking the running queue manager for the queue listing (Postfix's showq),
 * for users who cannot read the queue directories themselves.
 */
import type { Config } from "../config/config.ts";
import { requestJsonLine } from "../ipc/json-lines.ts";
import { qmgrSocketPath } from "./flush-request.ts";
import type { ListedMessage } from "./listing.ts";

export async function requestShowq(config: Config): Promise<{ entries: ListedMessage[]; truncated: boolean }> {
  const response = await requestJsonLine(qmgrSocketPath(config), { command: "showq" }, 60_000, 256 * 1024 * 1024);
  if (!Array.isArray(response.entries)) throw new Error("showq: malformed response");
  return { entries: response.entries as ListedMessage[], truncated: response.truncated === true };
}
