/**
 * smtp_header_checks, smtp_mime_header_checks, smtp_nested_header_checks and
 * smtp_body_checks (lmtp_* for LMTP) in the SMTP/LMTP client, applied to the
 * message on its way out as Postfix's smtp(8) applies them through
 * header_body_checks.c. The actions are the ones Postfix supports there:
 * REPLACE, PREPEND, STRIP (dropped and logged), IGNORE (dropped), WARN,
 * INFO (logged), DUNNO and OK; any other is logged as unsupported and the
 * line goes out as it is. Logged as Postfix's smtp does:
 *   QUEUEID: replace: header Subject: old: Subject: new
 *
 * Runs in the queue manager's process (the in-process SMTP client) as
 * mail_owner; the queue file's content is untrusted, the tables are the
 * administrator's. A table that cannot be read throws its TableError and the
 * delivery is deferred: nothing leaves unchecked.
 */
import type { Config } from "../global/config/config.ts";
import { commonLineAction, openCheckTables, runContentChecks, splitAction, type CheckTables, type LineFate } from "../global/checks/content-checks.ts";

export function clientCheckTables(config: Config, lmtp: boolean): CheckTables | undefined {
  return openCheckTables(config, lmtp ? "lmtp" : "smtp");
}

export interface ClientChecksOutcome {
  content: Uint8Array;
  /** Info lines (without the queue ID) and warnings about the tables. */
  logs: string[];
  warnings: string[];
}

export async function runClientChecks(content: Uint8Array, tables: CheckTables): Promise<ClientChecksOutcome> {
  const logs: string[] = [];
  const warnings: string[] = [];
  const log = (action: string, where: string, line: string, text: string) => logs.push(`${action}: ${where} ${line.slice(0, 200)}${text ? `: ${text}` : ""}`);
  const actor = {
    active: true,
    act(where: "header" | "body", line: string, value: string, mapClass: string, prepend: (text: string) => void): LineFate {
      const { command, text } = splitAction(value);
      const common = commonLineAction(command, text, { where, line, mapClass, log, warn: (t) => warnings.push(t), prepend });
      if (common !== undefined) return common;
      warnings.push(`unsupported command in ${mapClass} map: ${value}`);
      return "keep";
    },
  };
  const checked = await runContentChecks(content, tables, actor);
  return { content: checked.content, logs, warnings };
}
