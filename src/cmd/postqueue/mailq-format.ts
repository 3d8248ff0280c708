/**
 * Postfix's two queue listing formats, byte for byte, because scripts and
 * monitoring parse them: the Sendmail-style `mailq` text (`postqueue -p`)
 * and one JSON object a line (`postqueue -j`).
 *
 * Text: a heading, then per message `ID[*!#]  size  arrival  sender`, each
 * open recipient on its own line, a reason line in parentheses (right
 * aligned at column 78, never wrapped) before a recipient whose reason
 * differs from the previous one's, a blank line between messages, and
 * `-- N Kbytes in N Request(s).` or `Mail queue is empty`.
 *
 * Input is a listing of queue files, which users can influence (addresses,
 * remote servers' reply text): control characters print as "?", as with
 * Postfix's printable(), so nothing can forge a line of its own.
 */
import { asctime } from "../../util/asctime.ts";
import { printable as printableText } from "../../util/printable.ts";
import type { ListedMessage } from "../../global/queue/listing.ts";

export const MAILQ_HEADING = "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n";
export const MAILQ_EMPTY = "Mail queue is empty\n";

/** Control characters, DEL and undecodable bytes become "?"; other UTF-8 text passes (util/printable.ts). */
export function printable(text: string): string {
  return printableText(text, true);
}

const ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\uffff]+$/;

/** Quotes the local part when it is not a dot-atom (RFC 5322), as Postfix shows addresses: `"odd user"@example.com`. */
export function quoteAddress(address: string): string {
  const at = address.lastIndexOf("@");
  const local = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? "" : address.slice(at);
  if (local === "" || (local.length >= 2 && local.startsWith('"') && local.endsWith('"'))) return address;
  if (local.split(".").every((part) => ATOM.test(part))) return address;
  return `"${local.replace(/["\\]/g, "\\$&")}"${domain}`;
}

/** How a sender or recipient is shown: the null sender by name, the local part quoted, control characters replaced. */
export function shownAddress(address: string, emptyAddress: string): string {
  return printable(quoteAddress(address === "" ? emptyAddress : address));
}

function idWithStatus(m: ListedMessage): string {
  let id = m.queueId;
  if (m.queueName === "active") id += "*";
  else if (m.queueName === "hold") id += "!";
  if (m.forcedExpire) id += "#";
  return id;
}

const RECIPIENT_INDENT = " ".repeat(41);

/** One message in `mailq` text, without the blank line that separates messages. */
export function formatMailqEntry(m: ListedMessage, emptyAddress: string): string {
  const arrival = asctime(m.arrivalTime).slice(0, 20);
  let out = `${idWithStatus(m).padEnd(11)} ${String(m.messageSize).padStart(7)} ${arrival} ${shownAddress(m.sender, emptyAddress)}\n`;
  let previousReason = "";
  for (const r of m.recipients) {
    const reason = printable(r.reason);
    if (reason !== previousReason) {
      previousReason = reason;
      const shown = reason === "" ? "reason unavailable" : reason;
      out += " ".repeat(Math.max(0, 76 - Buffer.byteLength(shown))) + `(${shown})\n`;
    }
    out += RECIPIENT_INDENT + shownAddress(r.address, emptyAddress) + "\n";
  }
  return out;
}

/** The closing line after the last message. */
export function mailqSummary(requests: number, totalSize: number): string {
  return `\n-- ${Math.floor(totalSize / 1024)} Kbytes in ${requests} Request${requests === 1 ? "" : "s"}.\n`;
}

function jsonString(text: string): string {
  return `"${printable(text).replace(/["\\]/g, "\\$&")}"`;
}

/** One message as `postqueue -j` prints it: Postfix's members, in Postfix's order and spacing. */
export function formatJsonEntry(m: ListedMessage, emptyAddress: string): string {
  const recipients = m.recipients.map((r) => {
    let member = `{"address": ${jsonString(quoteAddress(r.address === "" ? emptyAddress : r.address))}`;
    if (r.reason !== "") member += `, "delay_reason": ${jsonString(r.reason)}`;
    return member + "}";
  });
  return (
    `{"queue_name": ${jsonString(m.queueName)}, "queue_id": ${jsonString(m.queueId)}, ` +
    `"arrival_time": ${m.arrivalTime}, "message_size": ${m.messageSize}, "forced_expire": ${m.forcedExpire}, ` +
    `"sender": ${jsonString(quoteAddress(m.sender === "" ? emptyAddress : m.sender))}, ` +
    `"recipients": [${recipients.join(", ")}]}\n`
  );
}
