/**
 * Per-message delivery logs, Postfix's defer/QID, bounce/QID and trace/QID:
 * one line per recipient and attempt, `key=value` pairs %XX-escaped. mailq
 * prints the latest defer reason of each recipient; the bounce role builds
 * reports from them. trace/QID holds what sendmail -bv (verify) and -v
 * (record) reports list: every final address, with the address as first
 * received and the relay.
 *
 *     recipient=<address> [orcpt=<orcpt>] status=4.4.1 action=delayed time=<ms> reason=<text> [original=<address>] [relay=<relay>]
 */
import { closeSync, fsyncSync, openSync, readFileSync, constants as fsc } from "node:fs";
import { appendFully } from "../../util/durable-file.ts";
import { join } from "node:path";
import { escapeValue, unescapeValue } from "./escape.ts";

export type LogQueue = "defer" | "bounce" | "trace";

export interface DeliveryLogEntry {
  recipient: string;
  orcpt?: string;
  /** Enhanced status code, e.g. 4.4.1 */
  status: string;
  /** DSN action: delayed, failed, delivered, relayed, expanded */
  action: string;
  time: number;
  reason: string;
  /** The address as first received (trace/ entries: "(expanded from <...>)" in the report). */
  original?: string;
  /** relay= of the delivery (trace/ entries: "delivery via RELAY: ..." in the report). */
  relay?: string;
}

export function encodeLogEntry(e: DeliveryLogEntry): string {
  const parts = [`recipient=${escapeValue(e.recipient)}`];
  if (e.orcpt !== undefined) parts.push(`orcpt=${escapeValue(e.orcpt)}`);
  parts.push(`status=${escapeValue(e.status)}`, `action=${escapeValue(e.action)}`, `time=${Math.trunc(e.time)}`, `reason=${escapeValue(e.reason)}`);
  if (e.original !== undefined) parts.push(`original=${escapeValue(e.original)}`);
  if (e.relay !== undefined) parts.push(`relay=${escapeValue(e.relay)}`);
  return parts.join(" ") + "\n";
}

export function decodeLogEntries(text: string): DeliveryLogEntry[] {
  const out: DeliveryLogEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const fields: Record<string, string> = {};
    for (const part of line.split(" ")) {
      const eq = part.indexOf("=");
      if (eq > 0) fields[part.slice(0, eq)] = unescapeValue(part.slice(eq + 1));
    }
    if (fields.recipient === undefined || fields.reason === undefined) continue; // a torn line
    out.push({
      recipient: fields.recipient,
      ...(fields.orcpt !== undefined ? { orcpt: fields.orcpt } : {}),
      status: fields.status ?? "",
      action: fields.action ?? "",
      time: Number(fields.time ?? 0),
      reason: fields.reason,
      ...(fields.original !== undefined ? { original: fields.original } : {}),
      ...(fields.relay !== undefined ? { relay: fields.relay } : {}),
    });
  }
  return out;
}

/** Appends entries to defer/ID, bounce/ID or trace/ID and fsyncs them. */
export function appendDeliveryLog(queueDirectory: string, queue: LogQueue, id: string, entries: DeliveryLogEntry[]): void {
  const fd = openSync(join(queueDirectory, queue, id), fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT, 0o600);
  try {
    appendFully(fd, entries.map(encodeLogEntry).join(""));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Entries of defer/ID, bounce/ID or trace/ID; none when the log does not exist. */
export function readDeliveryLog(queueDirectory: string, queue: LogQueue, id: string): DeliveryLogEntry[] {
  try {
    return decodeLogEntries(readFileSync(join(queueDirectory, queue, id), "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "EACCES") return [];
    throw err;
  }
}
